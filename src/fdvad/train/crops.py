"""Random fixed-length crops of a labelled corpus, with 10 ms frame labels: the batches of frame-level training.

Any corpus reader's items work (`fdvad.data.corpora.read_corpus`). Items are drawn in proportion to their
length, so every second of audio is equally likely; a crop longer than its item is zero-padded (the padding
is non-speech). 16 kHz WAV/FLAC files are read by seeking (only the crop is decoded); anything else is decoded
whole once and kept in a small cache.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import soundfile as sf
import torch

from ..audio import load_audio
from ..data.corpora import LabelledAudio, frame_labels, item_duration
from ..errors import ConfigError

FRAME_S = 0.01


class CropSampler:
    def __init__(self, items: list[LabelledAudio], crop_s: float = 4.0, sample_rate: int = 16000,
                 cache_files: int = 16):
        if not items:
            raise ConfigError("the corpus has no items to train on")
        if not crop_s > 0:
            raise ConfigError(f"crop_s must be > 0, got {crop_s}")
        self.items = list(items)
        self.sample_rate = sample_rate
        self.hop = int(round(sample_rate * FRAME_S))
        self.crop_frames = int(round(crop_s / FRAME_S))
        self.durations = np.array([item_duration(i) for i in self.items])
        self.frames = [frame_labels(i, FRAME_S, d) for i, d in zip(self.items, self.durations)]
        self.weights = self.durations / self.durations.sum()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_files = cache_files

    @property
    def hours(self) -> float:
        return float(self.durations.sum() / 3600)

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio (B, crop samples) float32, frame labels (B, crop frames) float32 0/1)."""
        n = self.crop_frames
        audio = np.zeros((batch_size, n * self.hop), np.float32)
        labels = np.zeros((batch_size, n), np.float32)
        for b, i in enumerate(rng.choice(len(self.items), size=batch_size, p=self.weights)):
            fr = self.frames[i]
            first = int(rng.integers(0, max(1, len(fr) - n + 1)))
            m = min(n, len(fr) - first)
            labels[b, :m] = fr[first:first + m]
            clip = self._read(self.items[i], first * self.hop, m * self.hop)
            audio[b, :len(clip)] = clip
        return torch.from_numpy(audio), torch.from_numpy(labels)

    def _read(self, item: LabelledAudio, start: int, length: int) -> np.ndarray:
        first = int(round(item.offset * self.sample_rate)) + start
        path = item.audio_filepath
        if path not in self._cache:
            try:
                info = sf.info(path)
                if info.samplerate == self.sample_rate:
                    data = sf.read(path, frames=length, start=first, dtype="float32", always_2d=True)[0]
                    return data.mean(axis=1)
            except (sf.LibsndfileError, RuntimeError):
                pass
            self._cache[path] = load_audio(path, self.sample_rate)
            while len(self._cache) > self.cache_files:
                self._cache.popitem(last=False)
        self._cache.move_to_end(path)
        return self._cache[path][first:first + length]
