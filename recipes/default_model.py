"""Recipe for the first shipped default model: MarbleNet-3x2x64 trained on CPU on espeak-ng speech mixed
with generated noise. Re-runnable and resumable: `python recipes/default_model.py --out src/fdvad/weights`.

1. synthesise a pool of training utterances (18 languages, ~36 voice variants, random rate/pitch/word gap);
2. train on random 4 s scenes made on the fly (utterances over generated noise at -5..30 dB SNR), with two
   losses on the same scene: "fast" windows pooled from one encoder pass, and "exact" isolated windows,
   so that both inference modes see what they were trained for; label = speech fraction of each window's
   own 0.08 s hop interval;
3. evaluate on held-out voices and sentences (`fdvad.data.scenes.make_test_recording`) and write weights,
   config and the model card with the measured numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fdvad.data.noise import NOISE_KINDS
from fdvad.data.scenes import (SAMPLE_RATE, TEST_VARIANTS, TRAIN_VARIANTS, Utterance, make_test_recording,
                               make_utterance, random_scene, random_text, random_voice)
from fdvad.data.texts import SENTENCES
from fdvad.eval.metrics import frames_to_windows, precision_recall_f1, roc_auc
from fdvad.features import FeatureConfig, FeatureExtractor
from fdvad.models import create_model
from fdvad.models.checkpoint import save_checkpoint
from fdvad.train.objectives import spec_augment, window_losses
from fdvad.vad.infer import WindowScorer, WindowSpec

SPEC = WindowSpec()
W, S, LEAD = SPEC.window_frames, SPEC.shift_frames, SPEC.lead_frames  # 63, 8, 27


# ---------------------------------------------------------------- utterance pool
def _synth(args):
    seed = args
    rng = random.Random(seed)
    voice = random_voice(rng, "train")
    text = random_text(voice.language, rng, "train")
    return make_utterance(text, voice)


def utterance_pool(path: Path, n: int, seed: int) -> list[Utterance]:
    if path.exists():
        z = np.load(path)
        audio, frames = np.split(z["audio"], z["audio_offsets"]), np.split(z["frames"], z["frame_offsets"])
        voices = json.loads(str(z["voices"]))
        return [Utterance(a, f, v, "") for a, f, v in zip(audio, frames, voices)]
    with mp.Pool(2) as pool:
        utts = [u for u in pool.imap(_synth, range(seed * 1_000_000, seed * 1_000_000 + n), chunksize=16)
                if u.frames.any()]
    np.savez(path.with_suffix(".tmp.npz"),
             audio=np.concatenate([u.audio for u in utts]),
             audio_offsets=np.cumsum([len(u.audio) for u in utts])[:-1],
             frames=np.concatenate([u.frames for u in utts]),
             frame_offsets=np.cumsum([len(u.frames) for u in utts])[:-1],
             voices=json.dumps([u.voice for u in utts]))
    path.with_suffix(".tmp.npz").replace(path)
    return utts


# ---------------------------------------------------------------- batches
def make_batch(pool, rng, batch_size, crop_s):
    scenes = [random_scene(pool, rng, crop_s) for _ in range(batch_size)]
    audio = torch.from_numpy(np.stack([s.audio for s in scenes]))
    frames = torch.from_numpy(np.stack([s.frames for s in scenes]).astype(np.float32))
    return audio, frames


# ---------------------------------------------------------------- evaluation
def window_probs_and_labels(model, features, recordings, mode):
    """Per recording: (window probabilities, window labels = majority of the window's 8 frames)."""
    scorer = WindowScorer(model, features, SPEC, mode=mode)
    out = []
    for rec in recordings:
        p = scorer(rec.audio)
        lab = frames_to_windows(rec.frames, S)[: len(p)] >= 0.5
        out.append((p[: len(lab)], lab))
    return out


def scores(pairs):
    probs = np.concatenate([p for p, _ in pairs])
    labels = np.concatenate([l for _, l in pairs])
    p, r, f1 = precision_recall_f1(probs > 0.5, labels)
    return {"auroc": round(roc_auc(probs, labels), 4), "precision@0.5": round(p, 4),
            "recall@0.5": round(r, 4), "f1@0.5": round(f1, 4), "windows": int(len(labels))}


def held_out_recordings(n: int, seed: int = 1000):
    kinds = list(NOISE_KINDS)
    snrs = [-5, 0, 5, 10, 20, 30]
    recs, conds = [], []
    for i in range(n):
        kind, snr = kinds[i % len(kinds)], snrs[i % len(snrs)]
        recs.append(make_test_recording(seed + i, n_utterances=5, snr_db=snr, min_gap_s=0.3, max_gap_s=2.0,
                                        noise_kind=kind))
        conds.append((kind, snr))
    return recs, conds


# ---------------------------------------------------------------- model card
def model_card(config, n_utts, speech_h, eval_hours, steps):
    t, sc = config["training"], config["scores"]
    rows = "\n".join(f"| {m} | {r['auroc']:.4f} | {r['precision@0.5']:.3f} | {r['recall@0.5']:.3f} | {r['f1@0.5']:.3f} |"
                     for m, r in sc["held_out"].items())
    snr = ", ".join(f"{k} dB: {v:.4f}" for k, v in sc["auroc_by_snr_db"].items())
    noise = ", ".join(f"{k}: {v:.4f}" for k, v in sc["auroc_by_noise"].items())
    a = t["args"]
    return f"""# fdvad default VAD model (`default.safetensors`)

MarbleNet-3x2x64 (91,378 parameters) on 80-band log-mel (NeMo front end), classifying 0.63 s windows
every 0.08 s as speech / non-speech. A first model that makes fdvad usable from day one; it was trained
only on synthetic data and is meant to be replaced by models from the data and training issues.

## How it was made
`python recipes/default_model.py --out src/fdvad/weights` (or `make model`), on 2 CPU cores, no GPU:
- speech: {n_utts} espeak-ng utterances ({speech_h:.2f} h) in {len(t['languages'])} languages
  ({", ".join(t['languages'])}), {len(TRAIN_VARIANTS)} voice variants with random rate, pitch and word gap;
  sentences written for this project plus random pseudo-words and single words;
- labels: 10 ms frames from the clean TTS signal (energy within 40 dB of the loudest frame, gaps under
  150 ms filled); the label of a window is the speech fraction of its own 0.08 s hop;
- scenes: random 4 s crops with 0-3 utterances over generated noise (white, pink, brown, blue, hum,
  tones, clicks, synthetic music, rumble), SNR -5..30 dB, random level, 15 % band-limited, 5 % clipped,
  10 % noise only; SpecAugment (2 x 15 bands, 2 x 25 frames, filled with the mean);
- training: {steps} steps of batch {a['batch']}, AdamW lr {a['lr']} with warmup and cosine decay, gradient
  clipping 3.0; loss on "fast" windows (pooled from one encoder pass) plus 0.5 x loss on isolated
  "exact" windows.

## What it scores
Held-out voices (espeak-ng variants {", ".join(TEST_VARIANTS)}) speaking held-out sentences in every
language, over every noise kind at -5..30 dB SNR ({eval_hours:.2f} h). Windows of 0.08 s, label = majority
of the window's 10 ms frames. Printed by the recipe at the end of its run.

| mode | AUROC | precision@0.5 | recall@0.5 | F1@0.5 |
|---|---|---|---|---|
{rows}

AUROC (fast mode) by SNR: {snr}.
AUROC (fast mode) by noise: {noise}.

## Limits
Synthetic speech and synthetic noise only: expect more false alarms on real-world noises (babble, TV,
street) and on human non-speech sounds than these numbers suggest, and no singing/music-with-voice
handling. `python bench/real_sample.py` scores it on a real phone call (pyannote.audio's sample)
beside silero-vad. Real-data evaluation and a stronger model come with the data and training issues.
Licence: Apache-2.0, like fdvad; espeak-ng (GPL-3.0) was used as a tool only, none of its data is shipped.
"""


# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="src/fdvad/weights", help="where default.safetensors/.yaml/.md go")
    ap.add_argument("--work", default="runs/default_model", help="pool cache and resumable state")
    ap.add_argument("--utterances", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop-s", type=float, default=4.0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-recordings", type=int, default=36)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    pool = utterance_pool(work / "pool.npz", args.utterances, args.seed)
    speech_h = sum(len(u.audio) for u in pool) / SAMPLE_RATE / 3600
    print(f"utterance pool: {len(pool)} utterances, {speech_h:.2f} h, {len(set(u.voice for u in pool))} voices "
          f"({time.time() - t0:.0f} s)", flush=True)

    torch.manual_seed(args.seed)
    model = create_model("marblenet_3x2x64")
    features = FeatureExtractor(FeatureConfig())
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    state_path = work / "state.pt"
    step = 0
    if state_path.exists():  # resume
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        step = int(state["step"])
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng([args.seed, step])

    model.train(); features.train()
    t_start, running = time.time(), None
    while step < args.steps:
        audio, frames = make_batch(pool, rng, args.batch, args.crop_s)
        with torch.no_grad():
            feats = spec_augment(features(audio), rng)
        loss_fast, loss_exact = window_losses(model, feats, frames, rng)
        loss = loss_fast + 0.5 * loss_exact
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step(); sched.step(); step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == args.steps:
            rate = (time.time() - t_start) / 50
            t_start = time.time()
            print(f"step {step}/{args.steps} loss {running:.4f} (fast {loss_fast.item():.3f} exact "
                  f"{loss_exact.item():.3f}) lr {sched.get_last_lr()[0]:.2e} {rate:.2f} s/step", flush=True)
        if step % 250 == 0 or step == args.steps:
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": torch.tensor(step)}, tmp)
            tmp.replace(state_path)

    model.eval(); features.eval()
    recs, conds = held_out_recordings(args.eval_recordings)
    hours = sum(r.duration_s for r in recs) / 3600
    per_mode = {mode: window_probs_and_labels(model, features, recs, mode) for mode in ("fast", "exact")}
    results = {mode: scores(pairs) for mode, pairs in per_mode.items()}
    by_snr = {str(snr): scores([pl for pl, c in zip(per_mode["fast"], conds) if c[1] == snr])["auroc"]
              for snr in sorted(set(c[1] for c in conds))}
    by_noise = {kind: scores([pl for pl, c in zip(per_mode["fast"], conds) if c[0] == kind])["auroc"]
                for kind in NOISE_KINDS if any(c[0] == kind for c in conds)}
    print(json.dumps({"held_out": results, "auroc_by_snr_db": by_snr, "auroc_by_noise": by_noise}, indent=1))

    config = {
        "features": features.config.to_dict(),
        "window": {"window_s": SPEC.window_s, "shift_s": SPEC.shift_s},
        "postprocess": {"onset": 0.5, "offset": 0.35, "pad_onset": 0.03, "pad_offset": 0.03,
                        "min_duration_on": 0.1, "min_duration_off": 0.25, "filter_speech_first": True},
        "training": {"recipe": "recipes/default_model.py", "args": vars(args), "utterances": len(pool),
                     "speech_hours": round(speech_h, 3), "languages": sorted(SENTENCES)},
        "scores": {"held_out": results, "held_out_hours": round(hours, 3), "auroc_by_snr_db": by_snr,
                   "auroc_by_noise": by_noise},
    }
    save_checkpoint(out / "default.safetensors", model, config)
    (out / "default.md").write_text(model_card(config, len(pool), speech_h, hours, step), encoding="utf-8")
    print(f"wrote {out / 'default.safetensors'} in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    sys.exit(main())
