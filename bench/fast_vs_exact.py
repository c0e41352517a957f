"""How much fdvad's fast mode (encoder once over the file, windows pooled) differs from exact mode (every
0.63 s window classified on its own), on generated labelled recordings.

    python bench/fast_vs_exact.py                          # shipped model, 2 seeds x 3 noises x 3 SNRs x 25 s
    python bench/fast_vs_exact.py --model run.safetensors --json fast_vs_exact.json

Recordings are `make_test_recording` scenes: held-out espeak-ng voices and sentences over generated noise.
For each condition (noise kind x SNR, pooled over seeds) and for everything together:

  max/mean |dp|      absolute difference of the two modes' speech probabilities per 0.08 s window
  |dp|>0.1           fraction of windows where they differ by more than 0.1
  AUROC fast/exact   window AUROC against the labels (a window is speech when >= half its 8 frames are)
  frame agree        fraction of 10 ms frames on which the two modes' segments (default post-processing) agree
  seg match f->e     fraction of fast segments with an exact segment whose start and end are both within
                     --tolerance-s (0.15 s); e->f the other way round
  F1 fast/exact      10 ms frame F1 of each mode's segments against the labels
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

FRAME_S = 0.01
FRAMES_PER_WINDOW = 8  # 0.08 s windows of 10 ms frames


@dataclass
class Pair:
    """One recording scored by both modes."""

    noise: str
    snr_db: float
    seed: int
    duration_s: float
    frames: np.ndarray  # bool labels per 10 ms
    fast: np.ndarray  # probs per window
    exact: np.ndarray
    fast_segments: list = field(default_factory=list)  # [(start, end)] seconds
    exact_segments: list = field(default_factory=list)


@dataclass
class Row:
    condition: str
    recordings: int
    minutes: float
    max_abs_diff: float
    mean_abs_diff: float
    frac_diff_over_0_1: float
    auroc_fast: float
    auroc_exact: float
    frame_agreement: float
    seg_match_fast_in_exact: float
    seg_match_exact_in_fast: float
    f1_fast: float
    f1_exact: float
    segments_fast: int
    segments_exact: int


def segments_to_frames(segments: list[tuple[float, float]], n_frames: int) -> np.ndarray:
    mask = np.zeros(n_frames, bool)
    for start, end in segments:
        mask[int(round(start / FRAME_S)): int(round(end / FRAME_S))] = True
    return mask


def matched_fraction(a: list[tuple[float, float]], b: list[tuple[float, float]], tolerance_s: float) -> float:
    """Fraction of segments in `a` with a segment in `b` whose start and end are both within tolerance_s.
    NaN when `a` is empty."""
    if not a:
        return float("nan")
    if not b:
        return 0.0
    b_arr = np.asarray(b, dtype=np.float64)
    hits = sum(bool(np.any((np.abs(b_arr[:, 0] - s) <= tolerance_s) & (np.abs(b_arr[:, 1] - e) <= tolerance_s)))
               for s, e in a)
    return hits / len(a)


def window_labels(frames: np.ndarray, n_windows: int) -> np.ndarray:
    from fdvad.eval.metrics import frames_to_windows

    return (frames_to_windows(frames, FRAMES_PER_WINDOW) >= 0.5)[:n_windows]


def summarize(condition: str, pairs: list[Pair], tolerance_s: float) -> Row:
    from fdvad.eval.metrics import precision_recall_f1, roc_auc

    diffs, fast, exact, labels = [], [], [], []
    agree = total_frames = 0
    match_fe, match_ef, n_fast, n_exact = [], [], 0, 0
    pred_fast, pred_exact, truth = [], [], []
    for p in pairs:
        n = min(len(p.fast), len(p.exact), -(-len(p.frames) // FRAMES_PER_WINDOW))
        diffs.append(np.abs(p.fast[:n].astype(np.float64) - p.exact[:n]))
        fast.append(p.fast[:n])
        exact.append(p.exact[:n])
        labels.append(window_labels(p.frames, n))
        mf = segments_to_frames(p.fast_segments, len(p.frames))
        me = segments_to_frames(p.exact_segments, len(p.frames))
        agree += int((mf == me).sum())
        total_frames += len(p.frames)
        pred_fast.append(mf)
        pred_exact.append(me)
        truth.append(p.frames)
        # weight each recording's match fraction by its segment count: pooled over segments
        if p.fast_segments:
            match_fe.append(matched_fraction(p.fast_segments, p.exact_segments, tolerance_s) * len(p.fast_segments))
        if p.exact_segments:
            match_ef.append(matched_fraction(p.exact_segments, p.fast_segments, tolerance_s) * len(p.exact_segments))
        n_fast += len(p.fast_segments)
        n_exact += len(p.exact_segments)
    d = np.concatenate(diffs)
    y = np.concatenate(labels)
    t = np.concatenate(truth)
    return Row(
        condition=condition, recordings=len(pairs), minutes=sum(p.duration_s for p in pairs) / 60,
        max_abs_diff=float(d.max()), mean_abs_diff=float(d.mean()), frac_diff_over_0_1=float((d > 0.1).mean()),
        auroc_fast=roc_auc(np.concatenate(fast), y), auroc_exact=roc_auc(np.concatenate(exact), y),
        frame_agreement=agree / max(total_frames, 1),
        seg_match_fast_in_exact=sum(match_fe) / n_fast if n_fast else float("nan"),
        seg_match_exact_in_fast=sum(match_ef) / n_exact if n_exact else float("nan"),
        f1_fast=precision_recall_f1(np.concatenate(pred_fast), t)[2],
        f1_exact=precision_recall_f1(np.concatenate(pred_exact), t)[2],
        segments_fast=n_fast, segments_exact=n_exact,
    )


COLUMNS = [  # (header, Row field, format)
    ("condition", "condition", "{:<14}"), ("rec", "recordings", "{:>3}"), ("min", "minutes", "{:>5.1f}"),
    ("max|dp|", "max_abs_diff", "{:>8.4f}"), ("mean|dp|", "mean_abs_diff", "{:>8.4f}"),
    ("|dp|>0.1", "frac_diff_over_0_1", "{:>8.4f}"),
    ("AUROC fast", "auroc_fast", "{:>10.4f}"), ("AUROC exact", "auroc_exact", "{:>11.4f}"),
    ("frame agree", "frame_agreement", "{:>11.4f}"),
    ("seg f->e", "seg_match_fast_in_exact", "{:>8.3f}"), ("seg e->f", "seg_match_exact_in_fast", "{:>8.3f}"),
    ("F1 fast", "f1_fast", "{:>7.4f}"), ("F1 exact", "f1_exact", "{:>8.4f}"),
    ("#seg fast", "segments_fast", "{:>9}"), ("#seg exact", "segments_exact", "{:>10}"),
]


def format_table(rows: list[Row]) -> str:
    widths = [len(fmt.format(getattr(rows[0], name))) if rows else len(h) for h, name, fmt in COLUMNS]
    header = " ".join(h.rjust(w) if i else h.ljust(w) for i, ((h, _, _), w) in enumerate(zip(COLUMNS, widths)))
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = [fmt.format(getattr(r, name)) for _, name, fmt in COLUMNS]
        lines.append(" ".join(c.rjust(len(h)) if i else c.ljust(len(h))
                              for i, (c, (h, _, _)) in enumerate(zip(cells, COLUMNS))))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default",
                   help="'default' or a .safetensors/.nemo checkpoint (default: default)")
    p.add_argument("--seeds", type=int, default=2, help="recordings per condition, seeds 1000.. (default: 2)")
    p.add_argument("--noise", default="pink,music,clicks",
                   help="comma-separated noise kinds (default: pink,music,clicks)")
    p.add_argument("--snrs", default="0,10,20", help="comma-separated SNRs in dB (default: 0,10,20)")
    p.add_argument("--seconds", type=float, default=25.0, help="length of each recording (default: 25)")
    p.add_argument("--tolerance-s", type=float, default=0.15, help="segment end-point tolerance (default: 0.15)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: leave as is)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "bench/fast_vs_exact.py", *(sys.argv[1:] if argv is None else argv)])

    import torch

    import fdvad
    from fdvad.data.scenes import make_test_recording
    from fdvad.errors import FdvadError
    from fdvad.vad.postprocess import postprocess

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        modes = {mode: fdvad.load_vad(args.model, mode=mode) for mode in ("fast", "exact")}
    except FdvadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    noises = [n.strip() for n in args.noise.split(",") if n.strip()]
    snrs = [float(s) for s in args.snrs.split(",") if s.strip()]

    pairs: list[Pair] = []
    seed = 1000
    for noise in noises:
        for snr in snrs:
            for _ in range(args.seeds):
                rec = make_test_recording(seed=seed, snr_db=snr, noise_kind=noise, target_duration_s=args.seconds)
                out = {}
                for mode, vad in modes.items():
                    probs, duration_s = vad.probs_and_duration(rec.audio, 16000)
                    segs = postprocess(probs, vad.hop_s, vad.postprocess, duration_s=duration_s)
                    out[mode] = (probs, [(s.start, s.end) for s in segs])
                pairs.append(Pair(noise, snr, seed, rec.duration_s, rec.frames, out["fast"][0], out["exact"][0],
                                  out["fast"][1], out["exact"][1]))
                seed += 1

    rows = [summarize(f"{noise} {snr:g} dB", [p for p in pairs if p.noise == noise and p.snr_db == snr],
                      args.tolerance_s) for noise in noises for snr in snrs]
    rows.append(summarize("all", pairs, args.tolerance_s))

    print(f"# fdvad fast vs exact: {len(pairs)} recordings, {sum(p.duration_s for p in pairs) / 60:.1f} min "
          f"(held-out espeak-ng voices; noises {', '.join(noises)}; SNRs {', '.join(f'{s:g}' for s in snrs)} dB; "
          f"seeds {pairs[0].seed}..{pairs[-1].seed})")
    print(f"# model: {args.model}; post-processing: {modes['fast'].postprocess}")
    print(f"# command: {command}")
    print(format_table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"command": command, "model": args.model, "tolerance_s": args.tolerance_s,
                       "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                                 for k, v in asdict(r).items()} for r in rows]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
