"""Whole-item feature maps of a streaming waveform teacher (Silero VAD), sliced per training crop.

Why whole items: Silero's LSTM carries state from the start of the file. Run on a 3.2 s crop alone (state
from zero) its features differ from those it gives inside the whole recording — measured on codec2's
`all.wav` (real speech), mean |difference| of the 128 LSTM outputs 0.10 with no warm-up, 0.037 after 2.56 s
and still 0.028 after 5.12 s of preceding audio (max 0.48): the cell state has a long memory. So the teacher
runs once over each whole item (its "file"), and every crop takes the slice of that map it covers: exactly the
features the teacher produces on the full item, at the cost of one batched pass per item (about 1,400x
real time on 2 threads for Silero).

Crops must then start on the teacher's frame grid (a multiple of 512 samples into the item: `CropSampler`'s
`start_grid`), and the item is followed by `pad_s` of zeros so a crop that runs past its item's end (zero
padded by the sampler) gets the teacher's features of that silence too.

Maps are kept as float16 in memory (Silero's LSTM outputs lie in [-1, 1]; float16 keeps them within 5e-4) and,
with a `folder`, saved there as one .npy per item, named by a hash of the teacher key, the file's path, size
and modification time, and the item's offset and duration — a second run (another seed, the fine-tuning
comparison) reads them instead of running the teacher again.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..train.crops import CropSampler


class TeacherFeatureStore:
    def __init__(self, teacher: torch.nn.Module, sampler: CropSampler, key: str, frame_samples: int,
                 pad_s: float = 0.0, folder: str | os.PathLike | None = None, memory_items: int | None = None):
        self.teacher = teacher.eval()
        self.sampler = sampler
        self.key = key
        self.frame_samples = frame_samples
        self.pad = int(round(pad_s * sampler.sample_rate))
        self.folder = Path(folder) if folder else None
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"distill.teacher_cache: cannot create {self.folder} ({e.strerror})") from None
        self.memory_items = memory_items
        self._maps: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.computed = 0  # items the teacher ran on (the rest came from memory or disk)

    def _file_name(self, index: int) -> str:
        item = self.sampler.items[index]
        try:
            st = os.stat(item.audio_filepath)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "?"
        text = "|".join([self.key, str(Path(item.audio_filepath).resolve()), stamp, f"{item.offset:.6f}",
                         f"{self.sampler.durations[index]:.6f}", str(self.pad)])
        return hashlib.sha1(text.encode()).hexdigest() + ".npy"

    def item_map(self, index: int) -> torch.Tensor:
        """The teacher's (C, K) map of whole item `index` (followed by the zero padding), float16."""
        if index in self._maps:
            self._maps.move_to_end(index)
            return self._maps[index]
        path = self.folder / self._file_name(index) if self.folder is not None else None
        data = None
        if path is not None and path.is_file():
            try:
                loaded = np.load(path, allow_pickle=False)
                if loaded.ndim == 2 and loaded.dtype == np.float16:
                    data = torch.from_numpy(loaded)
            except (OSError, ValueError, EOFError):
                pass  # a damaged cache file is recomputed and rewritten
        if data is None:
            data = self._compute(index)
            if path is not None:
                self._save(path, data)
        self._maps[index] = data
        if self.memory_items is not None:
            while len(self._maps) > self.memory_items:
                self._maps.popitem(last=False)
        return data

    @staticmethod
    def _save(path: Path, data: torch.Tensor) -> None:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")  # several runs may share one cache folder
        try:
            with open(tmp, "wb") as f:
                np.save(f, data.numpy(), allow_pickle=False)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"distill.teacher_cache: cannot write {path.parent} ({e.strerror})") from None

    def _compute(self, index: int) -> torch.Tensor:
        n = int(round(self.sampler.durations[index] * self.sampler.sample_rate))
        audio = self.sampler._read(self.sampler.items[index], 0, n)
        audio = np.concatenate([audio, np.zeros(self.pad, np.float32)])
        with torch.no_grad():
            features = self.teacher.forward_features(torch.from_numpy(audio).float()[None])[0]
        self.computed += 1
        return features.to(torch.float16).contiguous()

    def crop_map(self, index: int, start_sample: int, num_samples: int) -> torch.Tensor:
        """(C, num_samples // frame_samples) float32: the teacher frames of the crop that starts
        `start_sample` samples into item `index` (a multiple of frame_samples)."""
        if start_sample % self.frame_samples or num_samples % self.frame_samples:
            raise ValueError(f"crops must start and end on the teacher's {self.frame_samples}-sample grid "
                             f"(start {start_sample}, length {num_samples})")
        full = self.item_map(index)
        first, count = start_sample // self.frame_samples, num_samples // self.frame_samples
        part = full[:, first:first + count].float()
        if part.shape[1] < count:  # past the padding as well (only for crops longer than pad_s): the last frame
            part = torch.cat([part, part[:, -1:].expand(-1, count - part.shape[1])], dim=1)
        return part
