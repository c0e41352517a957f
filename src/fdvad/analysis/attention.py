"""Attention maps of ViT-like models, captured without editing their code, and the paper's statistics on them.

Capture (`capture_attention`):
  - fdvad's AudioTransformer: `forward_features(..., return_attention=True)`;
  - Hugging Face `transformers` models: `output_attentions=True`, with the eager attention implementation
    switched on for the call (the fused kernels do not return weights);
  - anything else (timm's ViT/BEiT, ...): a forward hook on every `*attn_drop` module, whose input is the
    softmaxed attention; modules with a `fused_attn` flag (timm) are switched to the explicit path for the call.

Statistics, all on patch tokens only: the first `prefix_tokens` (CLS, distillation tokens) are dropped as
queries and as keys, and every query row is renormalised to sum to one over the patch keys.
  - average attention distance of a head: sum_j A[i, j] * |p_i - p_j| (Euclidean, between patch centres, in ms
    for audio or pixels for images), averaged over queries i and over inputs (Dosovitskiy et al. 2021, Fig. 7);
  - head similarity of a layer: cosine similarity between the flattened attention maps of every pair of heads
    of one input, averaged over pairs and inputs (1 = identical heads, lower = more diverse);
  - average attention map of a layer: the mean over inputs and heads (diagonal = local attention, columns =
    every query looking at the same keys).
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from torch import nn


def patch_attention(attn: torch.Tensor, prefix_tokens: int) -> torch.Tensor:
    """(B, H, N, N) attention without the prefix tokens, rows renormalised over the remaining keys."""
    a = attn[..., prefix_tokens:, prefix_tokens:].float()
    return a / a.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def attention_distance(attn: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mean attention distance per head, (H,), from patch attention (B, H, N, N) and patch centres (N, d)."""
    distance = torch.cdist(positions.float(), positions.float())  # (N, N)
    return (attn * distance).sum(dim=-1).mean(dim=(0, 2))


def head_similarity(attn: torch.Tensor) -> float:
    """Mean pairwise cosine similarity between the heads' flattened maps, over pairs and inputs (NaN for 1 head)."""
    b, h = attn.shape[:2]
    if h < 2:
        return float("nan")
    flat = torch.nn.functional.normalize(attn.reshape(b, h, -1).float(), dim=-1)
    sim = flat @ flat.transpose(1, 2)  # (B, H, H)
    off_diagonal = ~torch.eye(h, dtype=torch.bool)
    return float(sim[:, off_diagonal].mean())


def average_attention_map(attn: torch.Tensor) -> torch.Tensor:
    """(N, N): the mean over inputs and heads."""
    return attn.float().mean(dim=(0, 1))


def positions_1d(num_tokens: int, spacing: float) -> torch.Tensor:
    """Centres of consecutive tokens `spacing` apart, (N, 1)."""
    return ((torch.arange(num_tokens) + 0.5) * spacing)[:, None]


def positions_2d(rows: int, cols: int, patch: float) -> torch.Tensor:
    """Centres of a rows x cols patch grid in row-major order (the ViT token order), (rows * cols, 2)."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return (torch.stack([r.flatten(), c.flatten()], dim=1) + 0.5) * patch


@contextlib.contextmanager
def _eager_attention(model: nn.Module):
    """Switch a transformers model (and its sub-configs) to eager attention for the duration."""
    configs = [m.config for m in model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")]
    saved = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = "eager"
        yield
    finally:
        for c, value in zip(configs, saved):
            c._attn_implementation = value


@contextlib.contextmanager
def _hooked_attention(model: nn.Module, captured: list):
    fused = [(m, m.fused_attn) for m in model.modules() if isinstance(getattr(m, "fused_attn", None), bool)]
    handles = [m.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach()))
               for name, m in model.named_modules() if name.endswith("attn_drop")]
    try:
        for m, _ in fused:
            m.fused_attn = False
        yield len(handles)
    finally:
        for h in handles:
            h.remove()
        for m, value in fused:
            m.fused_attn = value


def is_transformers_model(model: nn.Module) -> bool:
    return any(c.__module__.startswith("transformers.") for c in type(model).__mro__)


@torch.no_grad()
def capture_attention(model: nn.Module, inputs) -> list[torch.Tensor]:
    """Every layer's attention (B, H, N, N) for one batch. `inputs`: a tensor, a tuple of positional
    arguments, or a dict of keyword arguments (transformers: {"pixel_values": ...})."""
    model.eval()
    forward_features = getattr(model, "forward_features", None)
    if callable(forward_features) and "return_attention" in inspect.signature(forward_features).parameters:
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        return [a.detach() for a in model.forward_features(*args, return_attention=True)[1]]
    if is_transformers_model(model):
        kwargs = inputs if isinstance(inputs, dict) else {"pixel_values": inputs}
        with _eager_attention(model):
            out = model(**kwargs, output_attentions=True)
        maps = getattr(out, "attentions", None)
        if not maps or maps[0] is None:
            raise ValueError(f"{type(model).__name__} returned no attention maps")
        return [a.detach() for a in maps]
    captured: list[torch.Tensor] = []
    with _hooked_attention(model, captured) as n_hooks:
        if n_hooks == 0:
            raise ValueError(f"{type(model).__name__} has no attention to read: no forward_features(..., "
                             "return_attention=True), not a transformers model, and no *attn_drop modules")
        model(**inputs) if isinstance(inputs, dict) else model(*(inputs if isinstance(inputs, tuple) else (inputs,)))
    return captured
