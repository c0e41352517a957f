"""Scoring VAD systems on a labelled corpus: the numbers of `fdvad eval` and `fdvad compare`.

Everything is measured on 10 ms frames of each item (frame k = [10k, 10k + 10) ms after the item's offset;
a frame is speech when the labels cover more than half of it, `corpora.frame_labels`):
  - frame AUROC over all frames of all items pooled (as NeMo computes it), from the system's probabilities;
  - precision / recall / F1 of the frames inside the system's segments (its own post-processing);
  - detection error rate = (miss + false alarm) / speech time, with pyannote.metrics, collar 0 and 0.25 s
    (pyannote's collar is the total width removed around each reference boundary: +-0.125 s);
  - false-positive rate on items without speech: the fraction of their time inside segments, for items whose
    only background is music and for the others ("noise-only");
  - the same by condition (language, SNR band, noise kind, codec, reverb) when the items' meta says them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..audio import load_audio
from ..data.corpora import LabelledAudio, frame_labels, item_duration
from ..errors import ConfigError
from ..fileio import atomic_write
from ..vad.segment import Segment
from .metrics import precision_recall_f1, roc_auc
from .systems import FRAME_S, SAMPLE_RATE, System

COLLARS = (0.0, 0.25)
SNR_BANDS = ((-math.inf, 0, "< 0 dB"), (0, 10, "0-10 dB"), (10, 20, "10-20 dB"), (20, math.inf, ">= 20 dB"))


@dataclass
class ItemScore:
    item: LabelledAudio
    duration: float
    truth: np.ndarray  # bool per 10 ms frame
    probs: np.ndarray  # float per 10 ms frame
    segments: list[Segment]
    pred: np.ndarray = field(init=False)  # bool per 10 ms frame: inside a segment

    def __post_init__(self):
        self.pred = frame_labels(LabelledAudio("", 0.0, self.duration, self.segments), FRAME_S, self.duration)


def load_item_audio(item: LabelledAudio) -> np.ndarray:
    audio = load_audio(item.audio_filepath, SAMPLE_RATE)
    first = int(round(item.offset * SAMPLE_RATE))
    n = int(round(item_duration(item) * SAMPLE_RATE))
    clip = audio[first:first + n]
    return np.pad(clip, (0, n - len(clip))) if len(clip) < n else clip


def score_items(system: System, items: list[LabelledAudio], audios: Iterable[np.ndarray] | None = None,
                progress: Callable[[int], None] | None = None) -> list[ItemScore]:
    """Run `system` on every item (audio decoded here unless `audios` gives it, in item order)."""
    scores = []
    audio_iter = iter(audios) if audios is not None else None
    for k, item in enumerate(items):
        audio = next(audio_iter) if audio_iter is not None else load_item_audio(item)
        duration = len(audio) / SAMPLE_RATE
        out = system(audio)
        truth = frame_labels(item, FRAME_S, duration)
        probs = np.asarray(out.probs, np.float32)[: len(truth)]
        if len(probs) < len(truth):
            probs = np.pad(probs, (0, len(truth) - len(probs)), mode="edge" if len(probs) else "constant")
        scores.append(ItemScore(item, duration, truth, probs, out.segments))
        if progress is not None:
            progress(k + 1)
    return scores


def compare_systems(systems: list[System], items: list[LabelledAudio], timed: bool = True,
                    progress: Callable[[int], None] | None = None) -> tuple[dict[str, list[ItemScore]], dict[str, float]]:
    """Score every system on every item (each file decoded once), and time each system's segmentation call on
    one thread (x real time), as its users call it. Returns ({name: scores}, {name: x real time})."""
    import torch

    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise ConfigError(f"a system is named twice: {', '.join(names)}")
    results: dict[str, list[ItemScore]] = {s.name: [] for s in systems}
    seconds = {s.name: 0.0 for s in systems}
    audio_s = 0.0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k, item in enumerate(items):
            audio = load_item_audio(item)
            audio_s += len(audio) / SAMPLE_RATE
            for system in systems:
                results[system.name] += score_items(system, [item], [audio])
                if timed:
                    start = time.perf_counter()
                    system.segments(audio)
                    seconds[system.name] += time.perf_counter() - start
            if progress is not None:
                progress(k + 1)
    finally:
        torch.set_num_threads(threads)
    speed = {name: round(audio_s / t, 1) if timed and t > 0 else None for name, t in seconds.items()}
    return results, speed


# ------------------------------------------------------------------------------------------- metrics


def detection_error(scores: list[ItemScore], collar: float) -> dict:
    """pyannote.metrics' detection error rate over all items, with its miss and false-alarm parts."""
    try:
        from pyannote.core import Annotation, Timeline
        from pyannote.core import Segment as PSegment
        from pyannote.metrics.detection import DetectionErrorRate
    except ImportError:
        raise ConfigError("the detection error rate needs pyannote.metrics: pip install 'fdvad[eval]'") from None
    metric = DetectionErrorRate(collar=collar, skip_overlap=False)
    totals = {"miss": 0.0, "false alarm": 0.0, "total": 0.0}
    for s in scores:
        ref, hyp = Annotation(), Annotation()
        for seg in s.item.speech:
            a, b = max(0.0, seg.start), min(s.duration, seg.end)
            if b > a:
                ref[PSegment(a, b)] = "speech"
        for seg in s.segments:
            a, b = max(0.0, seg.start), min(s.duration, seg.end)
            if b > a:
                hyp[PSegment(a, b)] = "speech"
        parts = metric.compute_components(ref, hyp, uem=Timeline([PSegment(0.0, s.duration)]))
        for key in totals:
            totals[key] += parts[key]
    speech = totals["total"]
    if speech <= 0:
        return {"deter": float("nan"), "miss": float("nan"), "false_alarm": float("nan"),
                "false_alarm_s": round(totals["false alarm"], 3)}
    return {"deter": (totals["miss"] + totals["false alarm"]) / speech, "miss": totals["miss"] / speech,
            "false_alarm": totals["false alarm"] / speech}


def _no_speech_items(scores: list[ItemScore]) -> tuple[list[ItemScore], list[ItemScore]]:
    empty = [s for s in scores if not s.truth.any()]
    music = [s for s in empty if set(s.item.meta.get("noise_kind") or []) == {"music"}]
    noise = [s for s in empty if s not in music]
    return music, noise


def _fp_rate(scores: list[ItemScore]) -> float | None:
    frames = sum(len(s.pred) for s in scores)
    return float(sum(s.pred.sum() for s in scores) / frames) if frames else None


def summarize(scores: list[ItemScore], collars: Iterable[float] = COLLARS) -> dict:
    """The metrics of the module docstring over `scores` (one system)."""
    truth = np.concatenate([s.truth for s in scores]) if scores else np.zeros(0, bool)
    probs = np.concatenate([s.probs for s in scores]) if scores else np.zeros(0)
    pred = np.concatenate([s.pred for s in scores]) if scores else np.zeros(0, bool)
    precision, recall, f1 = precision_recall_f1(pred, truth) if truth.any() else (None, None, None)
    music, noise = _no_speech_items(scores)
    out = {"items": len(scores), "hours": round(sum(s.duration for s in scores) / 3600, 4),
           "speech_fraction": round(float(truth.mean()), 4) if len(truth) else None,
           "auroc": _round(roc_auc(probs, truth)), "precision": _round(precision), "recall": _round(recall),
           "f1": _round(f1)}
    for c in collars:
        d = detection_error(scores, c)
        out[f"deter@{c:g}"] = _round(d["deter"])
        out[f"miss@{c:g}"] = _round(d["miss"])
        out[f"false_alarm@{c:g}"] = _round(d["false_alarm"])
    out["fp_rate_music_only"] = _round(_fp_rate(music))
    out["music_only_items"] = len(music)
    out["fp_rate_noise_only"] = _round(_fp_rate(noise))
    out["noise_only_items"] = len(noise)
    return out


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


def conditions(meta: dict) -> dict[str, list[str]]:
    """The groups an item belongs to, per condition its meta names (an item with two noise kinds is in both)."""
    out: dict[str, list[str]] = {}
    if meta.get("language"):
        out["language"] = [str(meta["language"])]
    if "snr_db" in meta:
        snr = meta["snr_db"]
        out["snr"] = ["no speech"] if snr is None else [b for lo, hi, b in SNR_BANDS if lo <= float(snr) < hi]
    if meta.get("noise_kind"):
        kinds = meta["noise_kind"]
        out["noise_kind"] = sorted(set([kinds] if isinstance(kinds, str) else kinds))
    if meta.get("codec"):
        out["codec"] = [str(meta["codec"]).split("@")[0]]
    if isinstance(meta.get("effects"), dict):
        out["reverb"] = ["reverb" if "reverb" in meta["effects"] else "dry"]
    return out


def by_condition(scores: list[ItemScore]) -> dict[str, dict[str, dict]]:
    """{condition: {group: metrics}}: AUROC, F1, DetER (collar 0) and FP rate on speech-free items."""
    groups: dict[str, dict[str, list[ItemScore]]] = {}
    for s in scores:
        for cond, values in conditions(s.item.meta).items():
            for v in values:
                groups.setdefault(cond, {}).setdefault(v, []).append(s)
    out: dict[str, dict[str, dict]] = {}
    for cond, per in groups.items():
        out[cond] = {}
        order = [b for _, _, b in SNR_BANDS] + ["no speech"] if cond == "snr" else sorted(per)
        for v in [g for g in order if g in per]:
            ss = per[v]
            full = summarize(ss, collars=(0.0,))
            music, noise = _no_speech_items(ss)
            out[cond][v] = {"items": full["items"], "hours": full["hours"], "auroc": full["auroc"], "f1": full["f1"],
                            "deter@0": full["deter@0"], "fp_rate_no_speech": _round(_fp_rate(music + noise))}
    return out


# ------------------------------------------------------------------------------------------- curves


def roc_curve(probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-probs, kind="mergesort")
    p, t = probs[order], truth[order].astype(bool)
    last = np.concatenate([np.flatnonzero(np.diff(p)), [len(p) - 1]])  # the last index of each distinct score
    tp, fp = np.cumsum(t)[last], np.cumsum(~t)[last]
    pos, neg = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return np.concatenate([[0.0], fp / neg]), np.concatenate([[0.0], tp / pos])


def pr_curve(probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct threshold, highest threshold first."""
    order = np.argsort(-probs, kind="mergesort")
    p, t = probs[order], truth[order].astype(bool)
    last = np.concatenate([np.flatnonzero(np.diff(p)), [len(p) - 1]])
    tp = np.cumsum(t)[last]
    return tp / max(int(t.sum()), 1), tp / (last + 1)


def save_curves(results: dict[str, list[ItemScore]], roc_path: str | Path | None, pr_path: str | Path | None,
                title: str = "", overwrite: bool = False) -> None:
    """ROC and precision-recall curves of one or more systems as PNGs (frames pooled over items)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled = {name: (np.concatenate([s.probs for s in ss]), np.concatenate([s.truth for s in ss]))
              for name, ss in results.items() if ss}
    for path, kind in ((roc_path, "roc"), (pr_path, "pr")):
        if path is None:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for name, (probs, truth) in pooled.items():
            if kind == "roc":
                x, y = roc_curve(probs, truth)
                auc = roc_auc(probs, truth)
                ax.plot(x, y, label=f"{name} (AUROC {auc:.4f})")
            else:
                x, y = pr_curve(probs, truth)
                ax.plot(x, y, label=name)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], color="0.8", lw=0.8, ls="--")
            ax.set(xlabel="false-positive rate (10 ms frames)", ylabel="true-positive rate")
        else:
            ax.set(xlabel="recall (10 ms frames)", ylabel="precision")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), title=f"{'ROC' if kind == 'roc' else 'Precision-recall'} {title}".strip())
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=8)
        fig.tight_layout()
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), overwrite=overwrite)
        plt.close(fig)
