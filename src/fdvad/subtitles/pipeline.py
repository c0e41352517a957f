"""Video or audio -> subtitles: audio extraction -> enhancement -> VAD -> ASR chunks -> ASR -> post-correction ->
cue layout. `subtitle_file(path, options)` returns the cues and what each stage produced; `fdvad subtitle`
writes them.

Times never leave the original timeline: the ASR sees spans of the original audio (chunks.py) and its word times
are shifted by each span's start. Words whose middle lies more than `speech_tolerance_s` outside every VAD speech
segment are dropped (text the ASR made up in what the VAD called non-speech). The cues (with their words) alone
are then moved onto the picture's timeline: in a video whose audio track starts later than its picture
(`AudioInfo.start_s`), sample 0 of the audio is shown at that time, and a cue at audio time t must be too.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..vad.segment import Segment
from .asr import SAMPLE_RATE, ASREngine, make_asr
from .chunks import Chunk, asr_chunks, fixed_chunks
from .correct import CorrectionOptions, correct
from .enhance import METHODS, enhance
from .layout import Cue, LayoutRules, Word, layout

VAD_CHOICES = ("default", "silero", "webrtc", "none")  # or a path to an fdvad .safetensors / NeMo .nemo
STAGES = ("audio", "enhance", "vad", "asr", "correct", "layout")

Progress = Callable[[str, float, float], None]  # (stage, done, total)


@dataclass
class SubtitleOptions:
    vad: str = "default"
    vad_threshold: float | None = None  # fdvad models: onset instead of the model's own (offset = onset - 0.15)
    asr: str = "pocketsphinx"
    asr_model: str | None = None
    language: str | None = None
    enhance: str = "none"
    max_chunk_s: float = 30.0
    chunk_pad_s: float = 0.2
    speech_tolerance_s: float = 0.3
    correction: CorrectionOptions = field(default_factory=CorrectionOptions)
    layout: LayoutRules = field(default_factory=LayoutRules)

    def validate(self) -> SubtitleOptions:
        from ..vad.detector import shipped_models

        if self.vad not in VAD_CHOICES and self.vad not in shipped_models() \
                and Path(self.vad).suffix not in (".safetensors", ".nemo"):
            raise ConfigError(f"--vad {self.vad!r}: choose {', '.join(VAD_CHOICES)}, a shipped model "
                              f"({', '.join(shipped_models())}) or give an fdvad .safetensors or a NeMo .nemo file")
        if self.vad_threshold is not None and not 0 < self.vad_threshold < 1:
            raise ConfigError(f"--vad-threshold must be between 0 and 1, got {self.vad_threshold}")
        if self.enhance not in METHODS:
            raise ConfigError(f"unknown enhancement {self.enhance!r}; choose one of {', '.join(METHODS)}")
        self.layout.validate()
        return self


@dataclass
class SubtitleResult:
    cues: list[Cue]
    words: list[Word]  # after correction, on the original timeline
    raw_words: list[Word]  # as the ASR gave them (shifted to the original timeline), before any filtering
    segments: list[Segment]  # VAD speech (the chunks themselves when --vad none)
    chunks: list[Chunk]
    duration_s: float
    seconds: dict[str, float]  # wall time per stage
    audio_start_s: float = 0.0  # added to the cues' times (the audio track's start against the video's)


class Pipeline:
    """The models, loaded once and reused for every file."""

    def __init__(self, options: SubtitleOptions | None = None):
        self.options = (options or SubtitleOptions()).validate()
        self._vad = self._load_vad()
        self.asr: ASREngine = make_asr(self.options.asr, self.options.asr_model, self.options.language)

    def _load_vad(self):
        o = self.options
        if o.vad == "none":
            return None
        if o.vad in ("silero", "webrtc"):
            from ..eval.systems import make_system

            return make_system(o.vad)
        from ..vad.detector import load_vad

        return load_vad(o.vad)

    def speech(self, audio: np.ndarray) -> tuple[list[Segment], np.ndarray, float]:
        """(VAD segments, speech probabilities, seconds per probability)."""
        o, duration = self.options, len(audio) / SAMPLE_RATE
        if hasattr(self._vad, "speech_probs"):  # an fdvad VAD
            probs, hop = self._vad.speech_probs(audio, SAMPLE_RATE)
            extra = {"onset": o.vad_threshold} if o.vad_threshold is not None else {}
            return self._vad.segments_from_probs(probs, duration, **extra), np.asarray(probs), hop
        out = self._vad(audio)  # another system: 10 ms probabilities
        return out.segments, out.probs, 0.01

    def __call__(self, path: str, progress: Progress | None = None, keep_dir: str | None = None) -> SubtitleResult:
        from ..audio import audio_info, load_audio

        o = self.options
        tick = progress or (lambda stage, done, total: None)
        seconds: dict[str, float] = {}
        t = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal t
            now = time.perf_counter()
            seconds[stage] = seconds.get(stage, 0.0) + now - t
            t = now

        tick("audio", 0, 1)
        audio = load_audio(path, SAMPLE_RATE)
        if len(audio) == 0:
            raise ConfigError(f"{path}: no audio samples")
        duration = len(audio) / SAMPLE_RATE
        audio_start = audio_info(path).start_s
        lap("audio")
        tick("enhance", 0, 1)
        audio = enhance(audio, SAMPLE_RATE, o.enhance)
        lap("enhance")
        tick("vad", 0, 1)
        if self._vad is None:
            chunks = fixed_chunks(duration, o.max_chunk_s)
            segments = [Segment(c.start, c.end) for c in chunks]
        else:
            segments, probs, hop = self.speech(audio)
            chunks = asr_chunks(segments, probs, hop, duration, o.max_chunk_s, o.chunk_pad_s)
        lap("vad")
        raw: list[Word] = []
        for k, chunk in enumerate(chunks):
            tick("asr", chunk.start, duration)
            for w in self.asr.transcribe(chunk.samples(audio, SAMPLE_RATE)):
                raw.append(Word(w.text, chunk.start + w.start, chunk.start + w.end))
        tick("asr", duration, duration)
        lap("asr")
        tick("correct", 0, 1)
        words = raw if self._vad is None else in_speech(raw, segments, o.speech_tolerance_s)
        words = correct(words, o.correction)
        lap("correct")
        tick("layout", 0, 1)
        cues = on_picture_timeline(layout(words, o.layout), audio_start)
        lap("layout")
        result = SubtitleResult(cues, words, raw, segments, chunks, duration, seconds, audio_start)
        if keep_dir:
            keep_intermediate(result, audio, Path(keep_dir), Path(path).stem)
        return result


def on_picture_timeline(cues: list[Cue], audio_start_s: float) -> list[Cue]:
    """The cues, and the word times they carry (JSON output), moved by the audio track's start against the
    video's; a time the move would put before 0 is 0."""
    if not audio_start_s:
        return cues

    def moved(x):
        return replace(x, start=max(0.0, x.start + audio_start_s), end=max(0.0, x.end + audio_start_s))

    return [replace(moved(c), words=[moved(w) for w in c.words]) for c in cues]


def in_speech(words: list[Word], segments: list[Segment], tolerance_s: float) -> list[Word]:
    """The words whose middle lies within `tolerance_s` of a speech segment."""
    spans = sorted((s.start - tolerance_s, s.end + tolerance_s) for s in segments)
    starts = np.array([s for s, _ in spans]) if spans else np.zeros(0)
    kept = []
    for w in words:
        mid = (w.start + w.end) / 2
        k = int(np.searchsorted(starts, mid, side="right")) - 1
        if k >= 0 and mid <= spans[k][1]:
            kept.append(w)
    return kept


def keep_intermediate(result: SubtitleResult, audio: np.ndarray, folder: Path, stem: str) -> None:
    """The audio the VAD and ASR saw (WAV), the VAD segments (RTTM) and the raw ASR words (JSON)."""
    import soundfile as sf

    from ..fileio import atomic_write, atomic_write_text
    from ..vad.formats import format_segments

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--keep-intermediate {folder}: {e.strerror or e}") from None
    atomic_write(folder / f"{stem}.wav", lambda tmp: sf.write(str(tmp), audio, SAMPLE_RATE, format="WAV"))
    atomic_write_text(folder / f"{stem}.rttm", format_segments(result.segments, "rttm", stem))
    raw = {"chunks": [{"start": round(c.start, 3), "end": round(c.end, 3)} for c in result.chunks],
           "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in result.raw_words],
           "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
    atomic_write_text(folder / f"{stem}.asr.json", json.dumps(raw, indent=1, ensure_ascii=False) + "\n")


def subtitle_file(path: str, options: SubtitleOptions | None = None, progress: Progress | None = None,
                  keep_dir: str | None = None) -> SubtitleResult:
    """One file to subtitles with a fresh pipeline (build a `Pipeline` once for many files)."""
    return Pipeline(options)(path, progress, keep_dir)
