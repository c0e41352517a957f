"""`fdvad analyze`: the paper's analyses of one or two models, side by side in the same figures.

analyze() computes, per model, what its kind allows (attention statistics need attention; landscapes need
labels) and returns one JSON-able dict; plot() draws it:
  attention_distance.png   per layer, every head's average attention distance (dots) and their mean (line)
  head_similarity.png      per layer, mean pairwise cosine similarity of the heads' attention maps
  attention_maps.png       per layer, the average attention map (rows: models)
  landscape_1d.png         loss and accuracy along one filter-normalised direction (same seed for every model)
  landscape_2d.png         loss contours over two such directions (one panel per model)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..fileio import atomic_write, atomic_write_text
from .attention import (attention_distance, average_attention_map, capture_attention, head_similarity,
                        patch_attention)
from .landscape import landscape_1d, landscape_2d, sharpness
from .subjects import Subject

FIGURES = ("attention_distance.png", "head_similarity.png", "attention_maps.png", "landscape_1d.png",
           "landscape_2d.png")
CLS_NOTE = "prefix (CLS) tokens excluded, rows renormalised over patch keys"


def _finite_or_none(x: float) -> float | None:
    return x if np.isfinite(x) else None  # JSON has no NaN (one head has no similarity)


def attention_stats(subject: Subject, n_inputs: int = 64) -> dict:
    """Per layer: every head's average attention distance, the head similarity and the average map."""
    maps = capture_attention(subject.model, subject.attention_batch(n_inputs))
    layers = []
    for attn in maps:
        patches = patch_attention(attn, subject.prefix_tokens)
        layers.append({"distance": attention_distance(patches, subject.positions).tolist(),
                       "head_similarity": _finite_or_none(head_similarity(patches)),
                       "average_map": average_attention_map(patches).tolist()})
    return {"unit": subject.unit, "inputs": int(maps[0].shape[0]), "prefix_tokens": subject.prefix_tokens,
            "layers": layers}


def analyze(subjects: list[Subject], landscapes: tuple[str, ...] = ("1d", "2d"), span: float = 1.0,
            points_1d: int = 21, points_2d: int = 11, seed: int = 0,
            progress: Callable[[str, int], Callable[[int], None] | None] | None = None) -> dict:
    """{"models": {name: {...}}, "settings": {...}} for every subject."""
    result = {"settings": {"span": span, "points_1d": points_1d, "points_2d": points_2d, "seed": seed,
                           "note": CLS_NOTE}, "models": {}}
    for s in subjects:
        entry: dict = {"kind": s.kind, "inputs": int(len(s.labels)) if s.labels is not None else None}
        if s.has_attention:
            entry["attention"] = attention_stats(s)
        if s.labels is not None:
            entry["loss"], entry["accuracy"] = s.evaluate(s.model)
            if "1d" in landscapes:
                tick = progress(f"{s.name}: 1-D landscape", points_1d) if progress else None
                curve = landscape_1d(s.model, s.evaluate, np.linspace(-span, span, points_1d), seed, tick)
                curve["sharpness"] = sharpness(curve)
                entry["landscape_1d"] = curve
            if "2d" in landscapes:
                tick = progress(f"{s.name}: 2-D landscape", points_2d ** 2) if progress else None
                entry["landscape_2d"] = landscape_2d(s.model, s.evaluate, np.linspace(-span, span, points_2d),
                                                     seed, tick)
        elif landscapes:
            entry["no_landscape"] = s.why_no_landscape
        result["models"][s.name] = entry
    return result


def _save(fig, path: Path, overwrite: bool) -> None:
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), overwrite=overwrite)
    plt.close(fig)


def plot(result: dict, out: Path, overwrite: bool = True) -> list[Path]:
    """The figures the result has data for; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    written = []
    with_attention = {n: m["attention"] for n, m in models.items() if "attention" in m}
    if with_attention:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        offsets = np.linspace(-0.15, 0.15, len(with_attention)) if len(with_attention) > 1 else [0.0]
        for k, (name, att) in enumerate(with_attention.items()):
            for layer, entry in enumerate(att["layers"]):
                d = entry["distance"]
                ax.scatter(np.full(len(d), layer + 1 + offsets[k]), d, s=14, color=colours[k % 10], alpha=0.7,
                           label=name if layer == 0 else None)
            ax.plot(np.arange(1, len(att["layers"]) + 1) + offsets[k],
                    [np.mean(e["distance"]) for e in att["layers"]], color=colours[k % 10], lw=1)
        unit = next(iter(with_attention.values()))["unit"]
        depth = max(len(a["layers"]) for a in with_attention.values())
        ax.set_xticks(range(1, depth + 1))
        ax.set(xlabel="layer", ylabel=f"average attention distance ({unit})",
               title="Attention distance per head")
        ax.text(0.01, 0.01, CLS_NOTE, transform=ax.transAxes, fontsize=7, color="0.4")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        _save(fig, out / "attention_distance.png", overwrite)
        written.append(out / "attention_distance.png")

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for k, (name, att) in enumerate(with_attention.items()):
            ax.plot(np.arange(1, len(att["layers"]) + 1), [e["head_similarity"] for e in att["layers"]], "o-",
                    color=colours[k % 10], label=name)
        ax.set_xticks(range(1, depth + 1))
        ax.set(xlabel="layer", ylabel="mean cosine similarity between heads", ylim=(0, 1.02),
               title="Head similarity (lower = more diverse heads)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        _save(fig, out / "head_similarity.png", overwrite)
        written.append(out / "head_similarity.png")

        fig, axes = plt.subplots(len(with_attention), depth, figsize=(2.1 * depth, 2.4 * len(with_attention)),
                                 squeeze=False, layout="constrained")
        for r, (name, att) in enumerate(with_attention.items()):
            for c in range(depth):
                ax = axes[r][c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c < len(att["layers"]):
                    ax.imshow(np.asarray(att["layers"][c]["average_map"]), cmap="viridis")
                    ax.set_title(f"layer {c + 1}", fontsize=8)
                if c == 0:
                    ax.set_ylabel(f"{name}\nquery", fontsize=8)
                if r == len(with_attention) - 1:
                    ax.set_xlabel("key", fontsize=8)
        fig.suptitle("Average attention maps (patch tokens)", fontsize=10)
        _save(fig, out / "attention_maps.png", overwrite)
        written.append(out / "attention_maps.png")

    with_1d = {n: m["landscape_1d"] for n, m in models.items() if "landscape_1d" in m}
    if with_1d:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.8))
        for k, (name, curve) in enumerate(with_1d.items()):
            ax_loss.plot(curve["alpha"], curve["loss"], color=colours[k % 10],
                         label=f"{name} (sharpness {curve['sharpness']:.3f})")
            ax_acc.plot(curve["alpha"], curve["accuracy"], color=colours[k % 10], label=name)
        ax_loss.set(xlabel="step along a filter-normalised direction", ylabel="loss", title="Loss landscape (1-D)")
        ax_acc.set(xlabel="step along a filter-normalised direction", ylabel="accuracy",
                   title="Accuracy landscape (1-D)")
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        _save(fig, out / "landscape_1d.png", overwrite)
        written.append(out / "landscape_1d.png")

    with_2d = {n: m["landscape_2d"] for n, m in models.items() if "landscape_2d" in m}
    if with_2d:
        fig, axes = plt.subplots(1, len(with_2d), figsize=(4.8 * len(with_2d) + 1, 4), squeeze=False,
                                 layout="constrained")
        top = max(float(np.max(g["loss"])) for g in with_2d.values())
        low = min(float(np.min(g["loss"])) for g in with_2d.values())
        levels = np.linspace(low, top, 15)  # the same levels for every model: comparable panels
        for ax, (name, grid) in zip(axes[0], with_2d.items()):
            a = np.asarray(grid["alpha"])
            cs = ax.contourf(a, a, np.asarray(grid["loss"]).T, levels=levels, cmap="viridis")
            ax.contour(a, a, np.asarray(grid["loss"]).T, levels=levels, colors="k", linewidths=0.3)
            ax.plot(0, 0, "r+")
            ax.set(title=f"{name}: loss", xlabel="direction 1", ylabel="direction 2")
        fig.colorbar(cs, ax=list(axes[0]))
        _save(fig, out / "landscape_2d.png", overwrite)
        written.append(out / "landscape_2d.png")
    return written


def write_json(result: dict, path: Path, overwrite: bool = True) -> None:
    import json

    atomic_write_text(path, json.dumps(result, indent=1), overwrite=overwrite)
