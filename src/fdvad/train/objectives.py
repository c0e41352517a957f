"""Training objectives of a window classifier such as MarbleNet, on crops with 10 ms frame labels.

A crop of T feature frames gets two losses from the same features:
  - "fast": one encoder pass over the whole crop, per-frame logits averaged over each 63-frame window every
    8 frames — what `WindowScorer(mode="fast")` computes at inference;
  - "exact": a few windows cut out and classified alone (64 frames, the last masked), as NeMo and
    `mode="exact"` do.
Training on both keeps the two inference modes within a hair of each other (docs/inference.md).
The target of window j is the speech fraction of its own 0.08 s hop interval, frames [8j + 27, 8j + 35).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..vad.infer import WindowSpec

SPEC = WindowSpec()


def spec_augment(feats: torch.Tensor, rng: np.random.Generator, p: float = 0.5, freq_masks: int = 2,
                 freq_width: int = 15, time_masks: int = 2, time_width: int = 25) -> torch.Tensor:
    """SpecAugment on (B, F, T) log-mel: with probability `p` per item, `freq_masks` bands of up to
    `freq_width` bins and `time_masks` spans of up to `time_width` frames, filled with the item's mean
    (0 would be a loud value in raw log-mel). Returns a new tensor."""
    feats = feats.clone()
    fill = feats.mean(dim=(1, 2))
    n_freq, n_time = feats.shape[1], feats.shape[2]
    for i in range(feats.shape[0]):
        if rng.random() >= p:
            continue
        for k in range(max(freq_masks, time_masks)):  # interleaved: the draws of the first recipe
            if k < freq_masks:
                w = int(rng.integers(0, freq_width + 1))
                f0 = int(rng.integers(0, n_freq - w + 1))
                feats[i, f0:f0 + w, :] = fill[i]
            if k < time_masks:
                w = int(rng.integers(0, time_width + 1))
                t0 = int(rng.integers(0, n_time - w + 1))
                feats[i, :, t0:t0 + w] = fill[i]
    return feats


def window_targets(frames: torch.Tensor, n_windows: int, spec: WindowSpec = SPEC) -> torch.Tensor:
    """(B, n_windows) speech fraction of each window's own hop interval, from (B, T) 10 ms frame labels."""
    s, lead = spec.shift_frames, spec.lead_frames
    idx = torch.arange(n_windows)[:, None] * s + lead + torch.arange(s)[None, :]
    return frames[:, idx.clamp(max=frames.shape[1] - 1)].mean(-1)


def window_losses(model, feats: torch.Tensor, frames: torch.Tensor, rng: np.random.Generator,
                  n_isolated: int = 4, spec: WindowSpec = SPEC) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(fast loss, exact loss), binary cross-entropy on (B, F, T) features and (B, T) frame labels in [0, 1].

    The model needs forward_features, frame_logits and forward(x, lengths) (MarbleNet has them). A model
    without frame_logits (the audio transformer, scored in exact mode only) gets no fast loss (None) and
    4x as many isolated windows."""
    w, s, lead = spec.window_frames, spec.shift_frames, spec.lead_frames
    loss_fast = None
    if hasattr(model, "frame_logits"):
        enc = model.forward_features(feats)
        fl = model.frame_logits(enc)
        diff = (fl[..., 1] - fl[..., 0]).unsqueeze(1)  # (B, 1, T)
        pooled = F.avg_pool1d(diff, w, s).squeeze(1)  # window j covers frames [8j, 8j + 63)
        loss_fast = F.binary_cross_entropy_with_logits(pooled, window_targets(frames, pooled.shape[1], spec))
    else:
        n_isolated *= 4

    b, t = feats.shape[0], feats.shape[2]
    if t < w + 1 + s:
        raise ValueError(f"crops of {t} frames are too short for isolated {w}-frame windows")
    starts = rng.integers(0, (t - w - 1) // s, size=(b, n_isolated)) * s
    wins = torch.stack([feats[i, :, st:st + w + 1] for i in range(b) for st in starts[i]])
    last = frames.shape[1] - s
    wins_target = torch.stack([frames[i, min(st + lead, last): min(st + lead, last) + s].mean()
                               for i in range(b) for st in starts[i]])
    logits = model(wins, torch.full((len(wins),), w))
    loss_exact = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], wins_target)
    return loss_fast, loss_exact
