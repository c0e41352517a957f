"""Loss and accuracy landscapes with filter-normalised random directions (Li et al. 2018, "Visualizing the
Loss Landscape of Neural Nets").

A direction d has the shape of the weights. Every weight tensor with more than one dimension is drawn from a
standard normal and rescaled filter by filter (a filter = one slice along dim 0: a conv's output channel, a
linear layer's output row) so that ||d_f|| = ||theta_f||; 1-D tensors (biases, BatchNorm/LayerNorm scales,
layer scales) get zero, as the paper does for BN parameters, and buffers (BN running statistics) are never
moved. The landscape is L(theta + a d1 [+ b d2]) evaluated on one fixed evaluation set for a grid of a (and b):
scale-invariant networks can then be compared on the same axes.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
from torch import nn

Evaluate = Callable[[nn.Module], tuple[float, float]]  # model -> (loss, accuracy) on a fixed set


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random direction per parameter name, filter-normalised to the model's weights (see module doc)."""
    direction = {}
    for name, p in model.named_parameters():
        if p.dim() <= 1:
            direction[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        d_norm = d.flatten(1).norm(dim=1)
        w_norm = p.detach().flatten(1).norm(dim=1)
        direction[name] = d * (w_norm / d_norm.clamp_min(1e-12)).view(-1, *([1] * (p.dim() - 1)))
    return direction


@contextlib.contextmanager
def moved(model: nn.Module, steps: list[tuple[float, dict[str, torch.Tensor]]]):
    """The model's weights moved to theta + sum(coeff * direction) inside the block, restored exactly after."""
    params = dict(model.named_parameters())
    saved = {name: p.detach().clone() for name, p in params.items()}
    try:
        with torch.no_grad():
            for coeff, direction in steps:
                if coeff:
                    for name, d in direction.items():
                        params[name].add_(d, alpha=coeff)
        yield model
    finally:
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name])


def landscape_1d(model: nn.Module, evaluate: Evaluate, alphas: np.ndarray, seed: int = 0,
                 progress: Callable[[int], None] | None = None) -> dict:
    """{"alpha", "loss", "accuracy"} along one filter-normalised direction."""
    d = filter_normalized_direction(model, torch.Generator().manual_seed(seed))
    loss, acc = [], []
    for i, a in enumerate(alphas):
        with moved(model, [(float(a), d)]):
            lo, ac = evaluate(model)
        loss.append(lo)
        acc.append(ac)
        if progress:
            progress(i + 1)
    return {"alpha": [float(a) for a in alphas], "loss": loss, "accuracy": acc}


def landscape_2d(model: nn.Module, evaluate: Evaluate, alphas: np.ndarray, seed: int = 0,
                 progress: Callable[[int], None] | None = None) -> dict:
    """{"alpha", "loss", "accuracy"} on the grid alphas x alphas of two filter-normalised directions
    (loss[i][j] at a = alphas[i] along d1, b = alphas[j] along d2)."""
    g = torch.Generator().manual_seed(seed)
    d1 = filter_normalized_direction(model, g)
    d2 = filter_normalized_direction(model, g)
    loss = [[0.0] * len(alphas) for _ in alphas]
    acc = [[0.0] * len(alphas) for _ in alphas]
    done = 0
    for i, a in enumerate(alphas):
        for j, b in enumerate(alphas):
            with moved(model, [(float(a), d1), (float(b), d2)]):
                loss[i][j], acc[i][j] = evaluate(model)
            done += 1
            if progress:
                progress(done)
    return {"alpha": [float(a) for a in alphas], "loss": loss, "accuracy": acc}


def sharpness(curve: dict) -> float:
    """A one-number summary of a 1-D landscape: the mean loss rise over the curve relative to the centre
    (larger = sharper minimum)."""
    alphas = np.asarray(curve["alpha"])
    loss = np.asarray(curve["loss"], dtype=float)
    centre = loss[int(np.argmin(np.abs(alphas)))]
    return float(np.mean(loss - centre))
