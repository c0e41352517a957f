"""On-the-fly waveform augmentation of training crops (numpy, in the data loader workers).

NeMo's VAD recipes: white noise at -90..-46 dB on every example, a random gain, and background noise from a
noise manifest at a random SNR. Levels are dB relative to full scale (white noise, gain) or to the crop's
power (SNR); a crop without signal gets no SNR-mixed noise (its SNR is undefined).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..audio import load_audio
from ..data.corpora import LabelledAudio, read_corpus
from ..errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".mp4", ".mkv")


def noise_files(path: str) -> list[str]:
    """Audio files of a noise folder (recursively), or of a corpus's items (labels ignored)."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir() and not any(p.glob("*.rttm")) and not (p / "rttm").is_dir() and not (p / "train").is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
    else:
        items: list[LabelledAudio] = read_corpus(p)
        files = sorted({i.audio_filepath for i in items})
    if not files:
        raise ConfigError(f"no noise audio in {path}")
    return files


@dataclass
class Augmenter:
    noise: list[str] | None = None
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-10.0, 10.0)
    white_noise_prob: float = 1.0
    white_noise_db: tuple[float, float] = (-90.0, -46.0)
    sample_rate: int = 16000

    def __post_init__(self):
        self._cache: dict[str, np.ndarray] = {}

    def _noise_excerpt(self, n: int, rng: np.random.Generator) -> np.ndarray:
        path = self.noise[int(rng.integers(len(self.noise)))]
        if path not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[path] = load_audio(path, self.sample_rate)
        x = self._cache[path]
        if len(x) == 0:
            return np.zeros(n, np.float32)
        if len(x) < n:
            x = np.tile(x, -(-n // len(x)))
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start:start + n]

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = audio.astype(np.float32, copy=True)
        if self.noise and rng.random() < self.noise_prob:
            p_signal = float(np.mean(x.astype(np.float64) ** 2))
            if p_signal > 0:
                noise = self._noise_excerpt(len(x), rng).astype(np.float64)
                p_noise = float(np.mean(noise ** 2))
                if p_noise > 0:
                    snr = rng.uniform(*self.snr_db)
                    x += (noise * math.sqrt(p_signal / (p_noise * 10 ** (snr / 10)))).astype(np.float32)
        if rng.random() < self.gain_prob:
            x *= np.float32(10 ** (rng.uniform(*self.gain_db) / 20))
        if rng.random() < self.white_noise_prob:
            x += (rng.standard_normal(len(x)) * 10 ** (rng.uniform(*self.white_noise_db) / 20)).astype(np.float32)
        return np.clip(x, -1.0, 1.0)
