"""What the Feature Distillation experiments share: corpora A and B, recipe overrides, resumable runs through
fdvad's Python API, scoring on a test split, and paired confidence intervals over seeds.

The experiments (experiments/*/run.py) put this folder on sys.path and import it."""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def common(plan, out: Path, seed: int) -> list[str]:
    """Recipe overrides every run of an experiment shares (`plan`: batch, crop_s, val_every, val_items)."""
    return [f"out={out}", f"train.seed={seed}", f"train.batch_size={plan.batch}", f"data.crop_s={plan.crop_s}",
            f"train.val_every={plan.val_every}", f"data.max_validation_items={plan.val_items}", "train.threads=2",
            "train.grad_clip=3.0", "optim.name=adamw", "optim.schedule=cosine"]


def corpus_recipe(name: str, plan, work: Path) -> list[str]:
    """Recipe overrides that make (or reuse, when it exists with the same settings) corpus A or B in `work`."""
    if name == "A":
        return [f"corpus.out={work / 'corpus_A'}", f"corpus.items={plan.items_a}", "corpus.seed=11",
                f"corpus.jobs={plan.jobs}", "corpus.engines=[espeak]", "corpus.noise_kinds=[generated, human]",
                "corpus.effects={reverb: 0, codec: 0, bandlimit: 0, resample8k: 0}"]
    return [f"corpus.out={work / 'corpus_B'}", f"corpus.items={plan.items_b}", "corpus.seed=12",
            f"corpus.jobs={plan.jobs}", "corpus.noise_kinds=[real, music, babble]",
            "corpus.effects={reverb: 0.5, codec: 0.3}"]


def run_once(kind: str, out: Path, overrides: list[str], log, recipe: Path | None = None) -> Path:
    """Run `fdvad.train.run.train` / `fdvad.distill.run.distill` (on `recipe`, a YAML file, with `overrides`)
    unless `out` already holds its model."""
    from fdvad.distill.run import distill
    from fdvad.train.recipe import load_recipe
    from fdvad.train.run import train

    model = out / "model.safetensors"
    if model.is_file():
        log(f"  {out.name}: done before")
        return model
    resume = (out / "checkpoints" / "last.ckpt").is_file()
    loaded = load_recipe(recipe, overrides)
    t0 = time.time()
    (distill if kind == "distill" else train)(loaded, resume=resume, progress=False)
    log(f"  {out.name}: {time.time() - t0:.0f} s")
    return model


def evaluate(model: Path, test_manifest: Path, cache_name: str = "eval_B_test.json") -> dict:
    """fdvad's summary metrics of `model` on the test manifest, cached beside the model."""
    cache = model.parent / cache_name
    if cache.is_file():
        return json.loads(cache.read_text())
    from fdvad.data.corpora import read_corpus
    from fdvad.eval.systems import fdvad_system

    scores = score_system(fdvad_system(str(model)), read_corpus(test_manifest))
    cache.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


def score_system(system, items) -> dict:
    """fdvad's summary metrics (AUROC, F1, DetER, ...) of one System on a list of labelled items."""
    from fdvad.eval.evaluate import compare_systems, summarize

    results, _ = compare_systems([system], items, timed=False)
    return summarize(results[system.name])


T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def paired_ci(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """(mean of b - a, lower, upper) of a 95 % t interval over paired seeds (nan bounds for one seed)."""
    diffs = [y - x for x, y in zip(a, b)]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan")
    half = T975.get(len(diffs) - 1, 1.96) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} +- {statistics.stdev(values):.4f}"
