"""Random fixed-length crops of a labelled corpus, with 10 ms frame labels: the batches of frame-level training.

Any corpus reader's items work (`fdvad.data.corpora.read_corpus`). Items are drawn in proportion to their
length, so every second of audio is equally likely; a crop longer than its item is zero-padded (the padding
is non-speech). 16 kHz WAV/FLAC files are read by seeking (only the crop is decoded); anything else is decoded
whole once and kept in a small cache.

With `start_grid=g` crops start only on multiples of g frames into their item (a streaming teacher's frame
grid: 16 frames = 2,560 samples = 5 Silero chunks), and `CropDataset(teacher=...)` adds to each crop the slice
of the teacher's whole-item feature map it covers (`fdvad.distill.teacher_cache`).

`CropSampler.sample(rng, batch)` serves hand-written loops (recipes/corpus_model.py); `CropDataset` is the same
as a map-style dataset for DataLoaders and Lightning: crop i of epoch e is drawn from its own generator
seeded by (seed, e, i), so runs are reproducible whatever the number of workers or processes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from ..audio import load_audio
from ..data.corpora import LabelledAudio, frame_labels, item_duration
from ..errors import ConfigError

FRAME_S = 0.01


class CropSampler:
    def __init__(self, items: list[LabelledAudio], crop_s: float = 4.0, sample_rate: int = 16000,
                 cache_files: int = 16, start_grid: int = 1):
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
        if start_grid < 1:
            raise ConfigError(f"start_grid must be >= 1 frame, got {start_grid}")
        self.start_grid = start_grid

    @property
    def hours(self) -> float:
        return float(self.durations.sum() / 3600)

    def crop(self, rng: np.random.Generator, max_shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """One crop: (audio float32 (crop samples,), labels float32 0/1 (crop frames,)). With max_shift > 0 the
        audio is read up to that many samples earlier or later than its labels say (NeMo's time shift)."""
        audio, labels, _, _ = self.crop_with_origin(rng, max_shift)
        return audio, labels

    def crop_with_origin(self, rng: np.random.Generator, max_shift: int = 0
                         ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """`crop` plus where its audio comes from: (audio, labels, item index, first sample into the item)."""
        n = self.crop_frames
        audio = np.zeros(n * self.hop, np.float32)
        labels = np.zeros(n, np.float32)
        i = int(rng.choice(len(self.items), p=self.weights))
        fr = self.frames[i]
        g = self.start_grid
        first = int(rng.integers(0, max(1, (len(fr) - n) // g + 1))) * g
        m = min(n, len(fr) - first)
        labels[:m] = fr[first:first + m]
        shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift > 0 else 0
        start = max(0, first * self.hop + shift)
        # never past the item's end: an item cut from a longer file must not hear what follows it (its labels,
        # and a teacher's whole-item map, end there)
        item_samples = int(round(self.durations[i] * self.sample_rate))
        clip = self._read(self.items[i], start, max(0, min(m * self.hop, item_samples - start)))
        audio[:len(clip)] = clip
        return audio, labels, i, start

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio (B, crop samples) float32, frame labels (B, crop frames) float32 0/1)."""
        pairs = [self.crop(rng) for _ in range(batch_size)]
        return (torch.from_numpy(np.stack([a for a, _ in pairs])), torch.from_numpy(np.stack([f for _, f in pairs])))

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


class CropDataset(torch.utils.data.Dataset):
    """`length` random crops per epoch; item i of epoch e is the same crop in every run with the same seed.
    Items are (audio, labels), or (audio, labels, teacher map (C, K)) with a `teacher` feature store."""

    def __init__(self, sampler: CropSampler, length: int, seed: int = 0,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                 max_shift: int = 0, teacher=None):
        if teacher is not None and max_shift:
            raise ConfigError("crops with teacher features must not be time-shifted (max_shift 0)")
        self.sampler = sampler
        self.teacher = teacher
        self.length = length
        self.seed = seed
        self.augment = augment
        self.max_shift = max_shift
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        audio, labels, item, start = self.sampler.crop_with_origin(rng, self.max_shift)
        teacher_map = self.teacher.crop_map(item, start, len(audio)) if self.teacher is not None else None
        if self.augment is not None:
            audio = self.augment(audio, rng)
        if teacher_map is None:
            return torch.from_numpy(audio), torch.from_numpy(labels)
        return torch.from_numpy(audio), torch.from_numpy(labels), teacher_map
