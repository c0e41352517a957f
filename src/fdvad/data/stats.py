"""Describe a labelled corpus: hours, speech ratio, items per language / voice / noise / SNR band / codec, and
a small histogram plot (speech ratio and duration per item).

Categories come from each item's meta, under these keys (first one present wins):
  language  language, lang, locale          voice  voice, speaker
  noise     noise, noise_kind, noise_type   codec  codec
  noise_kind  noise_kind                    noise_category  noise_category
  snr_band  snr_db, snr (a number of dB: "<0", "0-10", "10-20", ">=20"; inf or "clean": "clean")
A list value (e.g. several noises in one item) counts once for each of its elements.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from ..errors import OutputExistsError
from ..fileio import atomic_write
from ..vad.postprocess import merge_overlapping
from .corpora import LabelledAudio, item_duration

META_KEYS = {
    "language": ("language", "lang", "locale"),
    "voice": ("voice", "speaker"),
    "noise": ("noise", "noise_kind", "noise_type"),
    "noise_kind": ("noise_kind",),  # real / music / generated / human / babble (fdvad data synth)
    "noise_category": ("noise_category",),  # alarm, engine, instrument, breath, ... (fdvad data synth)
    "snr_band": ("snr_db", "snr"),
    "codec": ("codec",),
}
SNR_BANDS = ("<0", "0-10", "10-20", ">=20", "clean")


def snr_band(value) -> str:
    """The SNR band of an SNR in dB: "<0", "0-10", "10-20", ">=20"; "clean" for inf or a "clean" label."""
    try:
        snr = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(snr):
        return "unknown"
    if snr == math.inf:
        return "clean"
    return "<0" if snr < 0 else "0-10" if snr < 10 else "10-20" if snr < 20 else ">=20"


def _speech_seconds(item: LabelledAudio, duration: float) -> float:
    return sum(max(0.0, min(s.end, duration) - max(s.start, 0.0)) for s in merge_overlapping(item.speech))


def _meta_values(meta: dict, category: str) -> list:
    for key in META_KEYS[category]:
        if meta.get(key) is not None:
            value = meta[key]
            values = value if isinstance(value, (list, tuple)) else [value]
            return [snr_band(v) for v in values] if category == "snr_band" else [str(v) for v in values]
    return []


def corpus_stats(items: list[LabelledAudio]) -> dict:
    """Totals and per-category item counts of a corpus.

    Returns {"items", "hours", "speech_hours", "speech_ratio" (speech / total, 0 for an empty corpus),
    "counts": {category: {value: items}} for the categories some item's meta has (see the module doc),
    "per_item": {"duration_s": [...], "speech_ratio": [...]}} (for plots). Items without a duration are
    measured from their audio file's header.
    """
    durations, ratios = [], []
    speech_total = 0.0
    counters: dict[str, Counter] = {category: Counter() for category in META_KEYS}
    for item in items:
        duration = item_duration(item)
        speech = _speech_seconds(item, duration)
        durations.append(duration)
        ratios.append(speech / duration if duration > 0 else 0.0)
        speech_total += speech
        for category in META_KEYS:
            counters[category].update(_meta_values(item.meta, category))
    total = sum(durations)
    counts = {}
    for category, counter in counters.items():
        if not counter:
            continue
        if category == "snr_band":
            order = [b for b in SNR_BANDS if b in counter] + sorted(b for b in counter if b not in SNR_BANDS)
        else:
            order = sorted(counter, key=lambda v: (-counter[v], v))
        counts[category] = {value: counter[value] for value in order}
    return {
        "items": len(items),
        "hours": total / 3600,
        "speech_hours": speech_total / 3600,
        "speech_ratio": speech_total / total if total > 0 else 0.0,
        "counts": counts,
        "per_item": {"duration_s": durations, "speech_ratio": ratios},
    }


def save_histogram(stats: dict | list[LabelledAudio], png_path: str | os.PathLike, title: str | None = None,
                   overwrite: bool = False) -> Path:
    """Save a PNG with two histograms, speech ratio per item and item duration; return its path.

    `stats` is corpus_stats' result or the items themselves. Written atomically (a temporary file in the
    same folder, then one rename); an existing file raises OutputExistsError unless overwrite=True.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(stats, dict):
        stats = corpus_stats(stats)
    path = Path(png_path)
    if path.exists() and not overwrite:  # before drawing anything
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")

    per_item = stats["per_item"]
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax_ratio, ax_duration = fig.subplots(1, 2)
    ax_ratio.hist(per_item["speech_ratio"], bins=20, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    ax_ratio.set_xlabel("speech ratio per item")
    ax_ratio.set_ylabel("items")
    ax_ratio.set_title("speech ratio")
    ax_duration.hist(per_item["duration_s"], bins=30, color="tab:orange", edgecolor="white")
    ax_duration.set_xlabel("item duration (s)")
    ax_duration.set_ylabel("items")
    ax_duration.set_title("duration")
    fig.suptitle(title or f"{stats['items']} items, {stats['hours']:.3f} h, "
                          f"{100 * stats['speech_ratio']:.0f}% speech")
    fig.tight_layout()

    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), overwrite=overwrite)
