"""What a Feature Distillation step costs against a supervised step of the same model on the same batch.

    python bench/fd_step_cost.py [--batch 32] [--crop-s 4] [--steps 20] [--threads 1]

Both steps start from the same batch of 4 s waveforms and include everything a training step does: log-mel
features, SpecAugment, forward, loss, backward and an AdamW update.
  supervised: MarbleNet-3x2x64 with the frame-training objective (fast + isolated windows), as fdvad train,
              and, as a leaner baseline, with the pooled-window loss only;
  FD:         a MarbleNet-3x2x64 teacher (frozen, eval, no grad) and a fresh student with drop path 0.1,
              whitened feature-map target, 1x1-conv projector, smooth-L1 (beta 2), as fdvad distill.
Prints the median step time of each (after 3 warm-up steps) and their ratio; the target is FD <= 1.5x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop-s", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from fdvad.distill import FeatureDistiller
    from fdvad.features import FeatureConfig, FeatureExtractor
    from fdvad.models import create_model
    from fdvad.train.objectives import spec_augment, window_losses

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.standard_normal((args.batch, int(args.crop_s * 16000))).astype(np.float32) * 0.1)
    frames = torch.from_numpy((rng.random((args.batch, int(args.crop_s * 100))) < 0.3).astype(np.float32))
    features = FeatureExtractor(FeatureConfig()).train()

    supervised = create_model("marblenet_3x2x64").train()
    opt_sup = torch.optim.AdamW(supervised.parameters(), lr=1e-3)

    def supervised_step(exact_weight: float = 0.5):
        with torch.no_grad():
            feats = spec_augment(features(audio), rng)
        fast, exact = window_losses(supervised, feats, frames, rng, n_isolated=4 if exact_weight else 1)
        loss = fast + exact_weight * exact
        opt_sup.zero_grad(set_to_none=True)
        loss.backward()
        opt_sup.step()

    def fast_only_step():
        supervised_step(exact_weight=0.0)

    teacher = create_model("marblenet_3x2x64").eval()
    student = create_model("marblenet_3x2x64", drop_path_rate=0.1)
    with torch.no_grad():
        example = features(audio[:2])
    distiller = FeatureDistiller(teacher, student, example_input=example).train()
    opt_fd = torch.optim.AdamW(distiller.student_parameters(), lr=1e-3)

    def fd_step():
        with torch.no_grad():
            feats = spec_augment(features(audio), rng)
        loss = distiller(feats).loss
        opt_fd.zero_grad(set_to_none=True)
        loss.backward()
        opt_fd.step()

    def median_time(step) -> float:
        for _ in range(3):
            step()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    # interleave two rounds each, so that a slow moment of the machine hits both
    sup, fast, fd = [], [], []
    for _ in range(2):
        sup.append(median_time(supervised_step))
        fast.append(median_time(fast_only_step))
        fd.append(median_time(fd_step))
    sup_t, fast_t, fd_t = min(sup), min(fast), min(fd)
    ratio = fd_t / sup_t
    print(f"# batch {args.batch} x {args.crop_s:g} s, {args.threads} thread(s), median of {args.steps} steps, best of 2")
    print(f"supervised step (fdvad train: fast + isolated windows)  {1000 * sup_t:8.1f} ms")
    print(f"supervised step, pooled windows only                    {1000 * fast_t:8.1f} ms")
    print(f"FD step                                                 {1000 * fd_t:8.1f} ms")
    print(f"FD / supervised (fdvad train)   {ratio:6.2f}x")
    print(f"FD / supervised (pooled only)   {fd_t / fast_t:6.2f}x")
    print(f"CHECK FD step <= 1.5x supervised step: {'PASS' if ratio <= 1.5 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
