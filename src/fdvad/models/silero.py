"""Silero VAD v6 (16 kHz) as a plain PyTorch module, with the weights of the packaged model (MIT licence).

The network, as read from the packaged TorchScript (docs/research/silero_v6.md): every 512 new samples (32 ms)
form a window with the 64 samples before them (zeros before the file); the window is reflect-padded by 64 on
the right, turned into a 129-bin STFT magnitude (a fixed Hann-windowed Fourier basis as a conv, 256 taps,
hop 128: 4 frames), then four conv + ReLU blocks (129 -> 128 -> 64 -> 64 -> 128 channels, kernel 3, strides
1, 2, 2, 1) reduce it to one 128-vector; an LSTM cell carries state from window to window; ReLU, a 1x1 conv
and a sigmoid give the speech probability.

Unlike the packaged model, which takes one 512-sample chunk per call, this one runs a whole file (or a batch of
files) at once: every window's front end and encoder in one batch, the LSTM over the sequence, the head in one
batch. `forward_features` returns the LSTM's output per 32 ms frame (B, 128, K) — the feature map a student can
learn — and `forward_encoder` the per-window encoder output before the LSTM.

Weights: `load_silero_v6()` reads the tensors of the JIT file shipped in the `silero-vad` package
(`torch.jit.load(...).state_dict()`; the scripted code is never called), not the package's
`silero_vad_16k.safetensors`, which holds other weights.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

SAMPLE_RATE = 16000
CHUNK = 512  # new samples per probability (32 ms)
CONTEXT = 64  # samples of the previous chunk each window starts with
WINDOW = CHUNK + CONTEXT
N_FFT, HOP = 256, 128
FRAME_S = CHUNK / SAMPLE_RATE


class SileroV6(nn.Module):
    """Input: waveform (B, N) at 16 kHz. Output of `forward`: speech probability per 32 ms chunk, (B, ceil(N / 512))."""

    arch = "silero_v6"

    def __init__(self):
        super().__init__()
        self.register_buffer("stft_basis", torch.zeros(2 * (N_FFT // 2 + 1), 1, N_FFT))
        channels = [(N_FFT // 2 + 1, 128, 1), (128, 64, 2), (64, 64, 2), (64, 128, 1)]
        self.encoder = nn.ModuleList(nn.Conv1d(i, o, 3, stride=s, padding=1) for i, o, s in channels)
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.head = nn.Conv1d(128, 1, 1)
        self.num_features = 128

    @staticmethod
    def num_chunks(num_samples: int) -> int:
        return -(-num_samples // CHUNK)

    def windows(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, K, 576): chunk k's 512 samples with the 64 before them; zeros before the start and
        after the end (the last chunk zero-padded, as `get_speech_timestamps` does)."""
        k = self.num_chunks(wave.shape[-1])
        padded = F.pad(wave, (CONTEXT, k * CHUNK - wave.shape[-1]))
        return padded.unfold(-1, WINDOW, CHUNK)

    def forward_encoder(self, wave: torch.Tensor) -> torch.Tensor:
        """Per-window encoder output before the LSTM, (B, 128, K)."""
        b = wave.shape[0]
        win = self.windows(wave).reshape(-1, WINDOW)
        x = F.pad(win, (0, CONTEXT), mode="reflect").unsqueeze(1)  # each window on its own, as the model does
        spec = F.conv1d(x, self.stft_basis, stride=HOP)
        bins = N_FFT // 2 + 1
        x = torch.sqrt(spec[:, :bins] ** 2 + spec[:, bins:] ** 2)
        for conv in self.encoder:
            x = F.relu(conv(x))
        return x.squeeze(-1).reshape(b, -1, self.num_features).transpose(1, 2)

    def forward_features(self, wave: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                         ) -> torch.Tensor:
        """The LSTM output (its hidden state) per 32 ms chunk, (B, 128, K), from zero state unless `state` is
        given ((h, c), each (1, B, 128))."""
        encoded = self.forward_encoder(wave).transpose(1, 2)
        hidden, _ = self.lstm(encoded, state)
        return hidden.transpose(1, 2)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 128, K) -> speech probability (B, K)."""
        return torch.sigmoid(self.head(F.relu(features))).squeeze(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(wave))


def packaged_jit_path():
    try:
        from importlib import resources

        return resources.files("silero_vad") / "data" / "silero_vad.jit"
    except ModuleNotFoundError:
        raise CheckpointError("Silero VAD's weights come from its package: pip install silero-vad") from None


def load_silero_v6(path=None) -> SileroV6:
    """SileroV6 in eval mode with the packaged model's 16 kHz weights (or those of the JIT file at `path`)."""
    path = path or packaged_jit_path()
    try:
        with warnings.catch_warnings():  # torch 2.13 marks torch.jit.load deprecated; it still reads the file
            warnings.simplefilter("ignore", DeprecationWarning)
            source = torch.jit.load(str(path), map_location="cpu").state_dict()
    except (RuntimeError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read Silero's TorchScript file {path}: {str(e).splitlines()[0]}") from None
    names = {"stft_basis": "_model.stft.forward_basis_buffer", "head.weight": "_model.decoder.decoder.2.weight",
             "head.bias": "_model.decoder.decoder.2.bias"}
    for i in range(4):
        for p in ("weight", "bias"):
            names[f"encoder.{i}.{p}"] = f"_model.encoder.{i}.reparam_conv.{p}"
    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        names[f"lstm.{p}_l0"] = f"_model.decoder.rnn.{p}"
    missing = [theirs for theirs in names.values() if theirs not in source]
    if missing:
        raise CheckpointError(f"{path} is not a Silero VAD v6 model (no {missing[0]})")
    model = SileroV6()
    try:
        model.load_state_dict({ours: source[theirs] for ours, theirs in names.items()})
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its tensors do not fit Silero VAD v6 ({str(e).splitlines()[0]})") from None
    return model.eval()
