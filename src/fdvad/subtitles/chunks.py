"""ASR chunks from VAD segments, on the original timeline.

An ASR engine wants pieces of audio of bounded length with speech in them; a viewer wants times that match the
video. So chunks are spans of the *original* audio (never audio with the silences cut out): every word time
the ASR gives inside a chunk is shifted by the chunk's start and lands where it was spoken, however much
silence was skipped.

  1. a VAD segment longer than the budget (`max_chunk_s` less both pads) is split at its least speech-like
     frame (`vad.postprocess.split_long`: each piece between half the budget and the budget);
  2. consecutive segments are merged while the merged span (silence between them included) stays within the
     budget (as WhisperX merges VAD segments into ~30 s chunks);
  3. each chunk is padded by `pad_s` on both sides, never past the audio or past the middle of the silence to
     its neighbour, so no audio is given to the ASR twice.
Without VAD, `fixed_chunks` cuts the audio into consecutive `max_chunk_s` windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..vad.postprocess import split_long
from ..vad.segment import Segment


@dataclass
class Chunk:
    start: float  # seconds on the original timeline
    end: float
    speech: list[Segment] = field(default_factory=list)  # the VAD segments inside, for filtering words

    @property
    def duration(self) -> float:
        return self.end - self.start

    def samples(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return audio[int(round(self.start * sample_rate)): int(round(self.end * sample_rate))]


def asr_chunks(segments: list[Segment], probs: np.ndarray, hop_s: float, duration_s: float,
               max_chunk_s: float = 30.0, pad_s: float = 0.2) -> list[Chunk]:
    """Chunks of at most `max_chunk_s` seconds covering every VAD segment (see the module docstring)."""
    if not max_chunk_s > 2 * pad_s + hop_s:
        raise ConfigError(f"max_chunk_s ({max_chunk_s}) must exceed twice the padding ({pad_s} s) plus a frame")
    if pad_s < 0:
        raise ConfigError(f"pad_s must be >= 0, got {pad_s}")
    budget = max_chunk_s - 2 * pad_s
    pieces = split_long([s for s in segments if s.end > s.start], probs, hop_s, budget)
    merged: list[list[Segment]] = []
    for seg in pieces:
        if merged and seg.end - merged[-1][0].start <= budget + 1e-9:
            merged[-1].append(seg)
        else:
            merged.append([seg])
    chunks = [Chunk(group[0].start, group[-1].end, group) for group in merged]
    for k, c in enumerate(chunks):
        left = 0.0 if k == 0 else (chunks[k - 1].speech[-1].end + c.speech[0].start) / 2
        right = duration_s if k + 1 == len(chunks) else (c.speech[-1].end + chunks[k + 1].speech[0].start) / 2
        c.start = max(left, c.speech[0].start - pad_s, 0.0)
        c.end = min(right, c.speech[-1].end + pad_s, duration_s)
    return chunks


def fixed_chunks(duration_s: float, max_chunk_s: float = 30.0) -> list[Chunk]:
    """The whole audio in consecutive windows of `max_chunk_s` (no VAD); each counts as all speech."""
    if not max_chunk_s > 0:
        raise ConfigError(f"max_chunk_s must be > 0, got {max_chunk_s}")
    n = max(1, math.ceil(duration_s / max_chunk_s - 1e-9))
    out = []
    for k in range(n):
        start, end = k * max_chunk_s, min(duration_s, (k + 1) * max_chunk_s)
        if end > start:
            out.append(Chunk(start, end, [Segment(start, end)]))
    return out
