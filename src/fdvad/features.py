"""Audio features in plain torch, with NeMo's parameters: 80-band log-mel, or the 64-coefficient MFCC
of NeMo's segment-VAD config, so that both our models and NeMo checkpoints see what they were trained on.

Frame t of the output is centred on sample t * hop_length (STFT with center=True), so a waveform of
N samples gives N // hop_length + 1 frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from .errors import ConfigError


@dataclass
class FeatureConfig:
    """Front-end settings. Defaults are NeMo's frame-VAD log-mel (AudioToMelSpectrogramPreprocessor)."""

    kind: str = "logmel"  # "logmel" | "mfcc"
    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_mels: int = 80
    n_mfcc: int = 64  # used when kind == "mfcc"
    preemph: float = 0.97  # 0 disables
    dither: float = 1e-5  # added only in training mode
    log_guard: float = 2.0**-24  # log(x + log_guard)
    window_periodic: bool = False  # NeMo's FilterbankFeatures uses a symmetric Hann window
    pad_mode: str = "constant"  # STFT padding at the edges
    mel_scale: str = "slaney"  # "slaney" (librosa default) | "htk" (torchaudio default)
    mel_norm: str | None = "slaney"  # "slaney" area normalisation, or None

    @classmethod
    def nemo_mfcc(cls) -> "FeatureConfig":
        """NeMo's segment-VAD front end (AudioToMFCCPreprocessor = torchaudio MFCC defaults)."""
        return cls(kind="mfcc", n_mels=64, n_mfcc=64, preemph=0.0, dither=0.0, log_guard=1e-6,
                   window_periodic=True, pad_mode="reflect", mel_scale="htk", mel_norm=None)

    @property
    def num_features(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown feature settings {sorted(unknown)}; valid: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.kind not in ("logmel", "mfcc"):
            raise ConfigError(f"feature kind must be 'logmel' or 'mfcc', not {self.kind!r}")
        if self.mel_scale not in ("slaney", "htk"):
            raise ConfigError(f"mel_scale must be 'slaney' or 'htk', not {self.mel_scale!r}")
        if not (0 < self.win_length <= self.n_fft) or self.hop_length <= 0:
            raise ConfigError("need 0 < win_length <= n_fft and hop_length > 0")


def hz_to_mel(hz: np.ndarray, scale: str = "slaney") -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above.
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def mel_to_hz(mel: np.ndarray, scale: str = "slaney") -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                   scale: str = "slaney", norm: str | None = "slaney") -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1); equal to librosa.filters.mel for the same
    arguments (scale "slaney" = htk=False), and to torchaudio's melscale_fbanks for scale "htk", norm None."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2)
    band_hz = mel_to_hz(mel_pts, scale)
    widths = np.diff(band_hz)
    ramps = band_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (band_hz[2:] - band_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II as torchaudio.functional.create_dct(norm='ortho'), shape (n_mels, n_mfcc)."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    dct = np.cos(math.pi / n_mels * (n + 0.5) * k)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / n_mels)
    return dct.T.astype(np.float32)


class FeatureExtractor(nn.Module):
    """Waveform (B, N) or (N,) float at `sample_rate` -> features (B, F, T), T = N // hop_length + 1."""

    def __init__(self, config: FeatureConfig | None = None):
        super().__init__()
        self.config = config or FeatureConfig()
        self.config.validate()
        c = self.config
        window = torch.hann_window(c.win_length, periodic=c.window_periodic)
        self.register_buffer("window", window, persistent=False)
        fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, scale=c.mel_scale, norm=c.mel_norm)
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        if c.kind == "mfcc":
            self.register_buffer("dct", torch.from_numpy(dct_matrix(c.n_mfcc, c.n_mels)), persistent=False)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.config.hop_length + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        x = wave.float()
        if self.training and c.dither > 0:
            x = x + c.dither * torch.randn_like(x)
        if c.preemph:
            y = x.clone()
            y[:, 1:].sub_(x[:, :-1], alpha=c.preemph)
            x = y
        spec = torch.stft(x, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=True, pad_mode=c.pad_mode, return_complex=True)
        # |X|^2 without a sqrt and a square, from the real and imaginary parts (4x faster than via view_as_real)
        power = torch.addcmul(spec.real.square(), spec.imag, spec.imag)
        mel = torch.matmul(self.mel_fb, power)
        feats = mel.add_(c.log_guard).log_()
        if c.kind == "mfcc":
            feats = torch.matmul(feats.transpose(1, 2), self.dct).transpose(1, 2)
        return feats
