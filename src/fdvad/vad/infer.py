"""Speech probability per 0.08 s step from a window classifier such as MarbleNet, or per encoder frame
from a frame classifier (NeMo's 20 ms frame-VAD MarbleNet): `make_scorer` picks the scorer a checkpoint
config asks for ("window" or "frame").

Probability k describes the interval [k * shift_s, (k + 1) * shift_s) of the input: its 0.63 s window is
centred on the middle of that interval. (NeMo centres window k on k * shift_s instead; we shift by half a hop
so that probabilities and time intervals line up without a correction downstream.)

Two modes, both over features computed once per block of audio, never per window:
  exact  every window is classified on its own, as NeMo does: 64 feature frames of which the last is masked
         (NeMo's seq_len = 10080 // 160 = 63), the encoder sees nothing outside the window.
  fast   the encoder runs once over the whole feature sequence; a window's logit is the mean of the per-frame
         head outputs over its 63 frames, which equals the head applied to the pooled encoder output because
         the head is linear. About 8x fewer network operations (windows overlap 8-fold); the shared
         front end makes the whole call about 4x faster (bench/vad_speed.py). Only for models with
         `frame_logits` (MarbleNet); others (the audio transformer) are always scored in exact mode.

Long audio is processed in blocks of `block_windows` windows with enough context on both sides that the
result does not depend on the block size, so memory stays flat however long the file is.

FrameScorer: probability t covers [t * frame_s, (t + 1) * frame_s), frame_s = hop * output_stride; a file of
N samples gives ceil(N / (hop_length * output_stride)) probabilities. The encoder sees the ceil(N / hop_length)
feature frames whose centre lies inside the audio, with zeros beyond both ends (NeMo's padding and masking),
so the result equals one pass over the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch

from ..errors import ConfigError
from ..features import FeatureExtractor

MODES = ("fast", "exact")


def inference_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model in eval mode, with BatchNorm folded into the convs when the model can do that."""
    fuse = getattr(model, "fused_for_inference", None)
    return fuse() if callable(fuse) else model.eval()


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry on the feature grid (hop_length samples per frame)."""

    window_s: float = 0.63
    shift_s: float = 0.08
    sample_rate: int = 16000
    hop_length: int = 160

    @property
    def shift_frames(self) -> int:
        return int(round(self.shift_s * self.sample_rate / self.hop_length))

    @property
    def window_frames(self) -> int:
        """Frames a window is classified on; NeMo: int(0.63 * 16000) // 160 = 63."""
        return int(self.window_s * self.sample_rate) // self.hop_length

    @property
    def shift_samples(self) -> int:
        return self.shift_frames * self.hop_length

    @property
    def lead_frames(self) -> int:
        """How many frames window 0 starts before frame 0, so that its centre is the centre of [0, shift)."""
        return (self.window_frames - 1) // 2 - self.shift_frames // 2

    def validate(self) -> None:
        if self.shift_frames < 1 or self.window_frames < self.shift_frames:
            raise ConfigError(f"need window_s >= shift_s >= {self.hop_length / self.sample_rate:g} s, "
                              f"got window_s={self.window_s}, shift_s={self.shift_s}")
        if abs(self.shift_frames * self.hop_length - self.shift_s * self.sample_rate) > 1e-6:
            raise ConfigError(f"shift_s must be a multiple of {self.hop_length / self.sample_rate:g} s")


def num_windows(num_samples: int, spec: WindowSpec) -> int:
    return -(-num_samples // spec.shift_samples)


def stream_blocks(blocks: Iterable[np.ndarray], block_size: int, chunk_end, num_outputs, score,
                  lead_samples: int = 0) -> Iterator[np.ndarray]:
    """Drive a block scorer over audio that arrives in pieces, keeping only the samples still needed.

    Outputs [i, i + block_size) are scored as soon as the audio reaches `chunk_end(i + block_size, None)`
    (a sample index); when the input ends, the rest is scored in blocks with the total length known.
    `score(i0, i1, buffer, buffer_start, total)` returns (probabilities, remaining buffer, its start sample).
    `lead_samples` zeros are put before the audio.
    """
    buffer = np.zeros(lead_samples, np.float32)
    buffer_start = -lead_samples  # sample index (in the input) of buffer[0]
    done = total = 0
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        total += len(block)
        buffer = np.concatenate([buffer, block])
        while buffer_start + len(buffer) >= chunk_end(done + block_size, None):
            probs, buffer, buffer_start = score(done, done + block_size, buffer, buffer_start, None)
            done += block_size
            yield probs
    n = num_outputs(total)
    while done < n:
        end = min(done + block_size, n)
        probs, buffer, buffer_start = score(done, end, buffer, buffer_start, total)
        done = end
        yield probs


class WindowScorer:
    """Turns audio (an array or an iterator of consecutive blocks) into speech probabilities."""

    def __init__(self, model: torch.nn.Module, features: FeatureExtractor, spec: WindowSpec | None = None,
                 mode: str = "fast", block_windows: int = 4096, batch_windows: int = 512):
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, not {mode!r}")
        self.model = inference_model(model)
        self.features = features.eval()
        self.spec = spec or WindowSpec(sample_rate=features.config.sample_rate, hop_length=features.hop_length)
        self.spec.validate()
        # A model without per-frame logits (a transformer attends to its whole input) has no fast mode.
        self.mode = mode if hasattr(model, "frame_logits") else "exact"
        self.block_windows = block_windows
        self.batch_windows = batch_windows
        # Input frames that influence an encoder output frame on either side, plus the STFT's own reach.
        rf = getattr(model, "receptive_field", 301)
        self.margin_frames = rf // 2 + features.config.n_fft // (2 * features.hop_length) + 2

    # -- public --------------------------------------------------------------------------------------
    @property
    def hop_s(self) -> float:
        """Seconds per probability."""
        return self.spec.shift_s

    def __call__(self, audio: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            audio = [audio]
        return np.concatenate(list(self.iter_probs(audio)) or [np.zeros(0, np.float32)])

    def iter_probs(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield consecutive arrays of window probabilities as audio blocks arrive."""
        hop = self.spec.hop_length
        return stream_blocks(
            blocks, self.block_windows,
            chunk_end=lambda k1, total: (self._window_frame_end(k1 - 1) + self.margin_frames) * hop,
            num_outputs=lambda total: num_windows(total, self.spec), score=self._score_block,
            lead_samples=self.spec.lead_frames * hop)  # zeros before the audio, as NeMo pads by half a window

    # -- internals -----------------------------------------------------------------------------------
    def _window_frame_start(self, k: int) -> int:
        """Feature frame (0 = centred on sample 0) where window k begins."""
        return k * self.spec.shift_frames - self.spec.lead_frames

    def _window_frame_end(self, k: int) -> int:
        return self._window_frame_start(k) + self.spec.window_frames + 1  # + the masked frame of exact mode

    def _score_block(self, k0: int, k1: int, buffer: np.ndarray, buffer_start: int, total: int | None):
        spec, hop, margin = self.spec, self.spec.hop_length, self.margin_frames
        f0 = self._window_frame_start(k0) - margin
        f1 = self._window_frame_end(k1 - 1) + margin
        missing = f1 * hop - (buffer_start + len(buffer))
        if missing > 0:  # only at the end of the input (total is known): the end is padded with zeros
            buffer = np.concatenate([buffer, np.zeros(missing, np.float32)])
        # Audio before the file start is zeros (NeMo's padding), so a negative f0 is filled in.
        s0 = f0 * hop - buffer_start
        pre = max(0, -s0)
        chunk = buffer[max(0, s0): f1 * hop - buffer_start]
        if pre:
            chunk = np.concatenate([np.zeros(pre, np.float32), chunk])
        with torch.inference_mode():
            feats = self.features(torch.from_numpy(chunk))[:, :, : f1 - f0]  # frames f0 .. f1-1
            starts = torch.arange(k0, k1) * spec.shift_frames - spec.lead_frames - f0
            if self.mode == "fast":
                logits = self._fast(feats, starts)
            else:
                logits = self._exact(feats, starts)
        probs = torch.sigmoid(logits).numpy().astype(np.float32)
        # Keep only what the next block needs: from its first frame minus the margin.
        keep_from = (self._window_frame_start(k1) - margin) * hop - buffer_start
        keep_from = max(0, min(keep_from, len(buffer)))
        return probs, buffer[keep_from:], buffer_start + keep_from

    def _fast(self, feats: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        enc = self.model.forward_features(feats)  # (1, C, T)
        frame_logits = self.model.frame_logits(enc)[0]  # (T, 2)
        diff = (frame_logits[:, 1] - frame_logits[:, 0]).double()
        csum = torch.cat([diff.new_zeros(1), diff.cumsum(0)])
        w = self.spec.window_frames
        return ((csum[starts + w] - csum[starts]) / w).float()

    def _exact(self, feats: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        # Windows of 63 frames plus NeMo's masked 64th frame, cut from the block's features.
        w = self.spec.window_frames + 1
        first = int(starts[0])
        windows = feats[0, :, first:].unfold(1, w, self.spec.shift_frames)[:, : len(starts)].permute(1, 0, 2)
        lengths = torch.full((self.batch_windows,), self.spec.window_frames)
        out = []
        for i in range(0, len(windows), self.batch_windows):
            batch = windows[i: i + self.batch_windows]
            logits = self.model(batch, lengths[: len(batch)])
            out.append(logits[:, 1] - logits[:, 0])
        return torch.cat(out)


class FrameScorer:
    """Speech probability per encoder frame of a frame classifier: sigmoid(logit_speech - logit_other) of
    `model.frame_logits(model.forward_features(features))`. Same interface as WindowScorer."""

    def __init__(self, model: torch.nn.Module, features: FeatureExtractor, frame_s: float | None = None,
                 block_frames: int = 4096):
        self.model = inference_model(model)
        self.features = features.eval()
        self.stride = int(getattr(model, "output_stride", 1))
        self.hop_length = features.hop_length
        self.hop_s = self.hop_length * self.stride / features.config.sample_rate
        if frame_s is not None and abs(frame_s - self.hop_s) > 1e-6:
            raise ConfigError(f"frame_s {frame_s} does not match the model: {self.stride} x "
                              f"{self.hop_length} samples = {self.hop_s:g} s")
        if block_frames < 1:
            raise ConfigError(f"block_frames must be at least 1, got {block_frames}")
        self.block_frames = block_frames
        # Feature frames either side of a frame's centre that influence it, rounded up to whole encoder steps
        # so that every block starts on the encoder's frame grid.
        reach = getattr(model, "receptive_field", 301) // 2
        self.margin_frames = self.stride * -(-reach // self.stride)
        # Feature frames at a chunk's edge that the STFT's padding (and pre-emphasis) touch.
        self.edge_frames = features.config.n_fft // 2 // self.hop_length + 1

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // (self.hop_length * self.stride))

    def __call__(self, audio: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            audio = [audio]
        return np.concatenate(list(self.iter_probs(audio)) or [np.zeros(0, np.float32)])

    def iter_probs(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield consecutive arrays of frame probabilities as audio blocks arrive."""
        return stream_blocks(blocks, self.block_frames, chunk_end=self._chunk_end, num_outputs=self.num_frames,
                             score=self._score_block)

    # -- internals -----------------------------------------------------------------------------------
    def _feature_span(self, t0: int, t1: int, total: int | None) -> tuple[int, int]:
        """Feature frames [g0, g1) that encoder frames [t0, t1) need; g0 is on the encoder's grid."""
        g0 = max(0, self.stride * t0 - self.margin_frames)
        g1 = self.stride * (t1 - 1) + self.margin_frames + 1
        if total is not None:
            g1 = min(g1, -(-total // self.hop_length))  # frames centred inside the audio
        return g0, g1

    def _chunk_end(self, t1: int, total: int | None) -> int:
        """Sample where the audio for encoder frames before t1 may stop."""
        _, g1 = self._feature_span(t1 - 1, t1, total)
        end = (g1 - 1 + self.edge_frames) * self.hop_length + 1
        return end if total is None else min(end, total)

    def _score_block(self, t0: int, t1: int, buffer: np.ndarray, buffer_start: int, total: int | None):
        hop = self.hop_length
        g0, g1 = self._feature_span(t0, t1, total)
        first = max(0, g0 - self.edge_frames)  # feature frame the audio chunk starts on
        chunk = buffer[first * hop - buffer_start: self._chunk_end(t1, total) - buffer_start]
        with torch.inference_mode():
            feats = self.features(torch.from_numpy(chunk))[:, :, g0 - first: g1 - first]
            logits = self.model.frame_logits(self.model.forward_features(feats))[0]  # (T, classes)
            offset = g0 // self.stride
            diff = logits[t0 - offset: t1 - offset, 1] - logits[t0 - offset: t1 - offset, 0]
        probs = torch.sigmoid(diff).numpy().astype(np.float32)
        keep_from = max(0, self.stride * t1 - self.margin_frames - self.edge_frames) * hop - buffer_start
        keep_from = max(0, min(keep_from, len(buffer)))
        return probs, buffer[keep_from:], buffer_start + keep_from


def make_scorer(model: torch.nn.Module, features: FeatureExtractor, config: dict,
                mode: str = "fast") -> WindowScorer | FrameScorer:
    """The scorer a checkpoint config asks for: FrameScorer when it has "frame" (frame classifiers), else a
    WindowScorer over config["window"] (window_s, shift_s; NeMo's 0.63 / 0.08 s when absent). `mode`
    ("fast" or "exact") only matters for window classifiers."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, not {mode!r}")
    if config.get("frame") is not None:
        return FrameScorer(model, features, frame_s=(config["frame"] or {}).get("frame_s"))
    if getattr(model, "output_stride", 1) != 1:
        raise ConfigError("a model with a strided encoder scores frames: its config needs a 'frame' entry")
    window = config.get("window") or {}
    spec = WindowSpec(window_s=float(window.get("window_s", WindowSpec.window_s)),
                      shift_s=float(window.get("shift_s", WindowSpec.shift_s)),
                      sample_rate=features.config.sample_rate, hop_length=features.hop_length)
    return WindowScorer(model, features, spec, mode=mode)
