"""Train MarbleNet-3x2x64 on a corpus made by `fdvad data synth` (or any labelled corpus), on CPU.

    fdvad data synth --out CORPUS --hours 10 --seed 1 --jobs 2
    python recipes/corpus_model.py --corpus CORPUS --work runs/corpus_model

Frame-level training on random 4 s crops of the train split (10 ms labels from its RTTMs), with the same
objective, optimiser and schedule as recipes/default_model.py (fast + isolated windows, AdamW + cosine,
SpecAugment), so the two models differ only in their data. Resumable: run the same command again after an
interruption. Writes WORK/model.safetensors + .yaml and WORK/scores.json with window AUROC / F1 on the
corpus's held-out splits (test, test_unseen_language) in fast and exact mode. Real-audio checks:
`python bench/real_audio.py --models default,WORK/model.safetensors`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fdvad.data.corpora import frame_labels, read_rttm_folder
from fdvad.audio import load_audio
from fdvad.eval.metrics import frames_to_windows, precision_recall_f1, roc_auc
from fdvad.features import FeatureConfig, FeatureExtractor
from fdvad.models import create_model
from fdvad.models.checkpoint import save_checkpoint
from fdvad.train.crops import CropSampler
from fdvad.train.objectives import spec_augment, window_losses
from fdvad.vad.infer import WindowScorer, WindowSpec

SPEC = WindowSpec()
HELD_OUT = ("test", "test_unseen_language")


def evaluate(model, features, items, mode: str) -> dict:
    """Window AUROC and P/R/F1 at 0.5; window label = majority of its 0.08 s hop's 10 ms frames."""
    scorer = WindowScorer(model, features, SPEC, mode=mode)
    probs, labels = [], []
    for item in items:
        audio = load_audio(item.audio_filepath)
        p = scorer(audio)
        lab = frames_to_windows(frame_labels(item, 0.01, len(audio) / 16000), SPEC.shift_frames) >= 0.5
        n = min(len(p), len(lab))
        probs.append(p[:n]), labels.append(lab[:n])
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    prec, rec, f1 = precision_recall_f1(probs > 0.5, labels)
    return {"auroc": round(roc_auc(probs, labels), 4), "precision@0.5": round(prec, 4), "recall@0.5": round(rec, 4),
            "f1@0.5": round(f1, 4), "windows": int(len(labels)), "speech_fraction": round(float(labels.mean()), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, help="a folder made by fdvad data synth")
    ap.add_argument("--work", default="runs/corpus_model", help="resumable state and results")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop-s", type=float, default=4.0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    corpus, work = Path(args.corpus), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    crops = CropSampler(read_rttm_folder(corpus / "train"), crop_s=args.crop_s)
    print(f"train split: {len(crops.items)} items, {crops.hours:.2f} h, "
          f"{np.mean(np.concatenate(crops.frames)):.1%} speech", flush=True)

    torch.manual_seed(args.seed)
    model = create_model("marblenet_3x2x64")
    features = FeatureExtractor(FeatureConfig())
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    state_path = work / "state.pt"
    step = 0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        step = int(state["step"])
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng([args.seed, step])

    model.train(), features.train()
    t_log, running = time.time(), None
    while step < args.steps:
        audio, frames = crops.sample(rng, args.batch)
        with torch.no_grad():
            feats = spec_augment(features(audio), rng)
        loss_fast, loss_exact = window_losses(model, feats, frames, rng)
        loss = loss_fast + 0.5 * loss_exact
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step(), sched.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} loss {running:.4f} (fast {loss_fast.item():.3f} exact "
                  f"{loss_exact.item():.3f}) lr {sched.get_last_lr()[0]:.2e} {(time.time() - t_log) / 50:.2f} s/step",
                  flush=True)
            t_log = time.time()
        if step % 250 == 0 or step == args.steps:
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": torch.tensor(step)}, tmp)
            tmp.replace(state_path)

    model.eval(), features.eval()
    scores = {}
    for split in HELD_OUT:
        items = read_rttm_folder(corpus / split)
        scores[split] = {mode: evaluate(model, features, items, mode) for mode in ("fast", "exact")}
        scores[split]["hours"] = round(sum(len(frame_labels(i, 0.01)) for i in items) / 360000, 3)
    print(json.dumps(scores, indent=1), flush=True)
    config = {
        "features": features.config.to_dict(),
        "window": {"window_s": SPEC.window_s, "shift_s": SPEC.shift_s},
        "postprocess": {"onset": 0.5, "offset": 0.35, "pad_onset": 0.03, "pad_offset": 0.03,
                        "min_duration_on": 0.1, "min_duration_off": 0.25, "filter_speech_first": True},
        "training": {"recipe": "recipes/corpus_model.py", "args": vars(args), "corpus": str(corpus),
                     "train_hours": round(crops.hours, 3)},
        "scores": scores,
    }
    save_checkpoint(work / "model.safetensors", model, config)
    (work / "scores.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {work / 'model.safetensors'} in {(time.time() - t0) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
