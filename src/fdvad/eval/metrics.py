"""Frame-level detection metrics in numpy (no scikit-learn needed)."""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = probability that a random positive outscores a random negative
    (Mann-Whitney U with average ranks for ties). NaN when only one class is present."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average rank for tied scores
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_recall_f1(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    pred = np.asarray(pred).astype(bool).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    tp = float((pred & labels).sum())
    precision = tp / max(float(pred.sum()), 1.0)
    recall = tp / max(float(labels.sum()), 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return precision, recall, f1


def frames_to_windows(frames: np.ndarray, frames_per_window: int) -> np.ndarray:
    """Speech fraction of each consecutive block of `frames_per_window` frames (last one zero-padded)."""
    n = -(-len(frames) // frames_per_window)
    padded = np.zeros(n * frames_per_window)
    padded[: len(frames)] = frames
    return padded.reshape(n, frames_per_window).mean(axis=1)
