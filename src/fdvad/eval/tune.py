"""Tune a model's post-processing on a labelled dev set: the model runs once, post-processing many times.

Coordinate descent from the model's current settings over grids of onset, offset (never above onset), pads
and minimum speech / silence durations, for the best frame F1 or the lowest detection error rate (10 ms
frames, collar 0: (missed + false-alarm frames) / speech frames). A few rounds until nothing improves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..data.corpora import LabelledAudio, frame_labels
from ..errors import ConfigError
from ..vad.postprocess import PostprocessConfig, postprocess
from .evaluate import load_item_audio
from .systems import FRAME_S, SAMPLE_RATE

OBJECTIVES = ("f1", "deter")
GRIDS = {
    "onset": [round(float(x), 2) for x in np.arange(0.2, 0.951, 0.05)] + [0.97, 0.99],
    "offset": [round(float(x), 2) for x in np.arange(0.05, 0.951, 0.05)],
    "pad_onset": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
    "pad_offset": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
    "min_duration_on": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5],
    "min_duration_off": [0.0, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0],
}


@dataclass
class DevItem:
    probs: np.ndarray
    duration: float
    truth: np.ndarray  # bool per 10 ms frame


def score_dev_set(vad, items: list[LabelledAudio], progress: Callable[[int], None] | None = None) -> list[DevItem]:
    out = []
    for k, item in enumerate(items):
        audio = load_item_audio(item)
        duration = len(audio) / SAMPLE_RATE
        probs, _ = vad.speech_probs(audio, SAMPLE_RATE)
        out.append(DevItem(np.asarray(probs), duration, frame_labels(item, FRAME_S, duration)))
        if progress is not None:
            progress(k + 1)
    return out


def evaluate_config(vad, dev: list[DevItem], config: PostprocessConfig) -> dict:
    """Frame precision / recall / F1 and detection error rate of `config` on the dev set."""
    tp = fp = fn = 0
    for d in dev:
        segs = postprocess(d.probs, vad.hop_s, config, duration_s=d.duration)
        pred = frame_labels(LabelledAudio("", 0.0, d.duration, segs), FRAME_S, d.duration)
        tp += int((pred & d.truth).sum())
        fp += int((pred & ~d.truth).sum())
        fn += int((~pred & d.truth).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    deter = (fn + fp) / max(tp + fn, 1)
    return {"f1": f1, "deter": deter, "precision": precision, "recall": recall}


def _better(a: dict, b: dict | None, objective: str) -> bool:
    if b is None:
        return True
    return a["f1"] > b["f1"] + 1e-9 if objective == "f1" else a["deter"] < b["deter"] - 1e-9


def tune(vad, dev: list[DevItem], objective: str = "f1", rounds: int = 3,
         progress: Callable[[str], None] | None = None) -> tuple[PostprocessConfig, dict, dict]:
    """(best config, its scores, the starting config's scores)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if not any(d.truth.any() for d in dev):
        raise ConfigError("the dev set has no speech: tuning needs labelled speech")
    best = vad.postprocess
    best_scores = start_scores = evaluate_config(vad, dev, best)
    for r in range(rounds):
        improved = False
        for name, grid in GRIDS.items():
            for value in grid:
                values = best.to_dict()
                values[name] = value
                if values["offset"] > values["onset"]:
                    continue
                candidate = PostprocessConfig(**values)
                scores = evaluate_config(vad, dev, candidate)
                if _better(scores, best_scores, objective):
                    best, best_scores, improved = candidate, scores, True
            if progress is not None:
                progress(f"round {r + 1}, {name}: F1 {best_scores['f1']:.4f}, DetER {best_scores['deter']:.4f}")
        if not improved:
            break
    return best, best_scores, start_scores


def postprocess_section(config: PostprocessConfig) -> dict:
    """What goes under 'postprocess' in a checkpoint's YAML (infinite max length left out)."""
    values = config.to_dict()
    if math.isinf(float(values.get("max_speech_duration_s", math.inf))):
        values.pop("max_speech_duration_s", None)
    return values
