"""Feature Distillation on a transformer VAD: position encodings, and the paper's analyses before and after FD.

    python experiments/fd_transformer/run.py              # the full experiment (make experiment-transformer)
    python experiments/fd_transformer/run.py --smoke      # a tiny version in a few minutes

Corpora A and B are those of experiments/fd_marblenet (the same recipe; an existing copy in
runs/fd_marblenet is reused, see --corpora). Runs, all `vit_vad_tiny` (4 blocks, 96 wide, 30 ms tokens):
  teacher               trained on A with absolute positions (as CLIP and DINO, the paper's teachers, are);
  finetune              the teacher fine-tuned on B's train split: the baseline;
  fd_<position>         a fresh student distilled from the teacher on B's audio (labels unused), with absolute
                        positions, per-block relative position bias, or one shared relative position bias;
  fd_<position>_finetune  that student fine-tuned on B like the baseline (the shared table is copied into
                        per-block tables first, as the official code does).
Scored on B's test split (frame AUROC, F1, DetER). Analyses (fdvad.analysis, as `fdvad analyze` runs them):
attention distance, head similarity and average attention maps of the teacher and of each FD student on B's
test windows; 1-D and 2-D loss/accuracy landscapes of the baseline and of the shared-RPB FD model, both
fine-tuned. Writes docs/experiments/fd_transformer.md and its figures in docs/experiments/fd_transformer/.
Resumable: finished runs are skipped; an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiment_tools import ROOT, common, corpus_recipe, evaluate, mean_std, paired_ci, run_once  # noqa: E402

POSITIONS = {"absolute": "APE (absolute)", "relative": "RPB (per block)", "shared_relative": "shared RPB"}


@dataclass
class Plan:
    items_a: int = 600  # corpora: the same settings as experiments/fd_marblenet, so they are reused
    items_b: int = 450
    jobs: int = 2
    model: str = "vit_vad_tiny"
    teacher_steps: int = 1200  # about 40 min in all on 2 CPU cores (a MarbleNet-sized cost per step)
    finetune_steps: int = 400
    distill_steps: int = 400
    batch: int = 16
    crop_s: float = 3.0
    val_every: int = 200
    val_items: int = 30
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    analysis_inputs: int = 256
    landscape_points: int = 21
    landscape_grid: int = 11


SMOKE = Plan(items_a=24, items_b=24, jobs=1, teacher_steps=30, finetune_steps=10, distill_steps=10, batch=4,
             crop_s=2.0, val_every=10, val_items=3, seeds=[0], analysis_inputs=32, landscape_points=5,
             landscape_grid=3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny data, few steps, minutes")
    ap.add_argument("--work", help="run folder (default: runs/fd_transformer or runs/fd_transformer_smoke)")
    ap.add_argument("--corpora", help="folder holding corpus_A and corpus_B (default: runs/fd_marblenet when it "
                                      "has them, else the run folder; made there when missing)")
    ap.add_argument("--report", help="report path (default: docs/experiments/fd_transformer.md; smoke: "
                                     "WORK/report.md)")
    args = ap.parse_args(argv)
    plan = SMOKE if args.smoke else Plan()
    work = Path(args.work or ROOT / ("runs/fd_transformer_smoke" if args.smoke else "runs/fd_transformer"))
    shared = ROOT / "runs/fd_marblenet"
    corpora = Path(args.corpora) if args.corpora else (
        shared if not args.smoke and (shared / "corpus_A").is_dir() else work)
    report = Path(args.report or (work / "report.md" if args.smoke else ROOT / "docs/experiments/fd_transformer.md"))
    figures = report.parent / ("fd_transformer" if not args.smoke else "figures")
    for folder in (work, figures):
        folder.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    def log(msg: str) -> None:
        print(msg, flush=True)

    model = [f"model.name={plan.model}"]
    log("teacher on corpus A")
    teacher = run_once("train", work / "teacher", corpus_recipe("A", plan, corpora) + common(plan, work / "teacher", 0)
                       + model + ["model.overrides={position: absolute}", f"train.steps={plan.teacher_steps}",
                                  "optim.lr=0.001", "optim.min_lr=0.00001", "optim.weight_decay=0.05"], log)
    b_recipe = corpus_recipe("B", plan, corpora)
    finetune = [f"train.steps={plan.finetune_steps}", "optim.lr=0.0005", "optim.min_lr=0.000005",
                "optim.weight_decay=0.05", "optim.layer_decay=0.75"]
    distill = [f"train.steps={plan.distill_steps}", "optim.lr=0.001", "optim.min_lr=0.00001",
               "optim.weight_decay=0.05", f"distill.teacher={teacher}", "distill.student_drop_path=0.1"]

    baseline, students, fd_models = [], {p: [] for p in POSITIONS}, {p: [] for p in POSITIONS}
    for seed in plan.seeds:
        log(f"seed {seed}")
        out = work / f"finetune_s{seed}"
        baseline.append(run_once("train", out, b_recipe + common(plan, out, seed) + model + finetune + [
            "model.overrides={position: absolute, drop_path_rate: 0.1}", f"model.init={teacher}"], log))
        for position in POSITIONS:
            out = work / f"fd_{position}_s{seed}"
            student = run_once("distill", out, b_recipe + common(plan, out, seed) + model + distill
                               + [f"model.overrides={{position: {position}}}"], log)
            students[position].append(student)
            tuned = "relative" if position == "shared_relative" else position
            out = work / f"fd_{position}_finetune_s{seed}"
            fd_models[position].append(run_once("train", out, b_recipe + common(plan, out, seed) + model + finetune + [
                f"model.overrides={{position: {tuned}, drop_path_rate: 0.1}}", f"model.init={student}"], log))

    log("evaluating on B's test split")
    test = corpora / "corpus_B" / "test" / "manifest.json"
    scores = {"teacher": evaluate(teacher, test), "finetune": [evaluate(m, test) for m in baseline],
              "fd+finetune": {p: [evaluate(m, test) for m in ms] for p, ms in fd_models.items()}}

    log("analyses")
    analyses = run_analyses(plan, work, test, teacher, students, baseline[0], fd_models["shared_relative"][0], figures)
    (work / "results.json").write_text(json.dumps({"scores": scores, "analyses": analyses}, indent=1) + "\n")
    write_report(report, figures, plan, args, scores, analyses, time.time() - t_start, work, test)
    log(f"report -> {report}")
    return 0


def run_analyses(plan: Plan, work: Path, test: Path, teacher: Path, students: dict, baseline: Path,
                 fd_shared: Path, figures: Path) -> dict:
    """Attention statistics of the teacher and every seed-0 FD student; landscapes of the two fine-tuned models.
    Cached in the run folder (analysis_*.json) so a re-run only redraws."""
    from fdvad.analysis.report import analyze, plot
    from fdvad.analysis.subjects import load_subject

    def cached(name: str, make) -> dict:
        path = work / f"analysis_{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
        result = make()
        path.write_text(json.dumps(result) + "\n")
        return result

    def attention_of(paths: dict[str, Path]) -> dict:
        subjects = [load_subject(str(p), str(test), plan.analysis_inputs, 0, name) for name, p in paths.items()]
        return analyze(subjects, landscapes=())

    attention = cached("attention", lambda: attention_of(
        {"teacher (before FD)": teacher, **{f"FD student, {POSITIONS[p]}": s[0] for p, s in students.items()}}))
    landscapes = cached("landscapes", lambda: analyze(
        [load_subject(str(baseline), str(test), plan.analysis_inputs, 0, "finetune (teacher)"),
         load_subject(str(fd_shared), str(test), plan.analysis_inputs, 0, "FD (shared RPB) + finetune")],
        landscapes=("1d", "2d"), points_1d=plan.landscape_points, points_2d=plan.landscape_grid))
    # before/after figures: the teacher against the shared-RPB student (the paper's setting) ...
    pair = {"settings": attention["settings"], "models": {k: v for k, v in attention["models"].items()
                                                          if k in ("teacher (before FD)", "FD student, shared RPB")}}
    plot(pair, figures)
    # ... and the landscapes of the two fine-tuned models (only the landscape figures are taken from this call)
    only_landscapes = {"settings": landscapes["settings"],
                       "models": {k: {kk: vv for kk, vv in v.items() if kk.startswith("landscape")}
                                  for k, v in landscapes["models"].items()}}
    plot(only_landscapes, figures)
    return {"attention": attention, "landscapes": landscapes}


def _layer_means(entry: dict) -> tuple[list[float], list[float], list[float]]:
    """Per layer: mean attention distance over heads, its spread (std) over heads, head similarity."""
    layers = entry["attention"]["layers"]
    return ([statistics.fmean(e["distance"]) for e in layers],
            [statistics.pstdev(e["distance"]) for e in layers],
            [e["head_similarity"] for e in layers])


def _map_structure(entry: dict) -> tuple[float, float]:
    """Mean over layers of the share of an average attention map's variance explained by its key (column means)
    and by the relative position i - j (diagonal means)."""
    import numpy as np

    cols, diags = [], []
    for layer in entry["attention"]["layers"]:
        m = np.asarray(layer["average_map"])
        total = m.var() or 1e-12
        cols.append(np.broadcast_to(m.mean(axis=0), m.shape).var() / total)
        offset = np.subtract.outer(np.arange(len(m)), np.arange(len(m)))
        means = {d: m[offset == d].mean() for d in np.unique(offset)}
        diags.append(np.vectorize(means.get)(offset).var() / total)
    return float(np.mean(cols)), float(np.mean(diags))


def _parameters(plan: Plan) -> int:
    from fdvad.models import create_model

    return sum(p.numel() for p in create_model(plan.model).parameters())


def _spacing_ms(plan: Plan) -> float:
    """Milliseconds between the model's patch tokens."""
    from fdvad.models import create_model

    return create_model(plan.model).config.patch_frames * 10.0


def _shown(p: Path) -> Path:
    return p.relative_to(ROOT) if p.is_relative_to(ROOT) else p


def write_report(path: Path, figures: Path, plan: Plan, args, scores: dict, analyses: dict, seconds: float,
                 work: Path, test: Path) -> None:
    ft = scores["finetune"]
    rows = [f"| teacher (A only, absolute) | - | {scores['teacher']['auroc']:.4f} | {scores['teacher']['f1']:.4f} | "
            f"{scores['teacher']['deter@0']:.4f} | |",
            f"| finetune (teacher on B) | absolute | {mean_std([r['auroc'] for r in ft])} | "
            f"{mean_std([r['f1'] for r in ft])} | {mean_std([r['deter@0'] for r in ft])} | |"]
    verdicts = []
    for position, label in POSITIONS.items():
        fd = scores["fd+finetune"][position]
        diff, lo, hi = paired_ci([r["auroc"] for r in ft], [r["auroc"] for r in fd])
        ci = f"{diff:+.4f}" + (f" [{lo:+.4f}, {hi:+.4f}]" if not math.isnan(lo) else " (one seed)")
        rows.append(f"| FD + finetune | {label} | {mean_std([r['auroc'] for r in fd])} | "
                    f"{mean_std([r['f1'] for r in fd])} | {mean_std([r['deter@0'] for r in fd])} | {ci} |")
        verdicts.append((label, diff, lo, hi))

    att = analyses["attention"]["models"]
    unit = next(iter(att.values()))["attention"]["unit"]
    att_rows = []
    for name, entry in att.items():
        dist, spread, sim = _layer_means(entry)
        att_rows.append(f"| {name} | {' / '.join(f'{d:.0f}' for d in dist)} | {' / '.join(f'{s:.0f}' for s in spread)} | "
                        f"{' / '.join(f'{s:.2f}' for s in sim)} |")
    teacher_sim = statistics.fmean(_layer_means(att["teacher (before FD)"])[2])
    student_sim = statistics.fmean(_layer_means(att["FD student, shared RPB"])[2])
    teacher_spread = statistics.fmean(_layer_means(att["teacher (before FD)"])[1])
    student_spread = statistics.fmean(_layer_means(att["FD student, shared RPB"])[1])
    land = analyses["landscapes"]["models"]
    base_sharp = land["finetune (teacher)"]["landscape_1d"]["sharpness"]
    fd_sharp = land["FD (shared RPB) + finetune"]["landscape_1d"]["sharpness"]

    best_label, best_diff, best_lo, best_hi = max(verdicts, key=lambda v: v[1])
    n_seeds = len(plan.seeds)
    if n_seeds == 1:
        auroc_claim = (f"with one seed, the best FD arm ({best_label}) differs from plain fine-tuning by "
                       f"{best_diff:+.4f} AUROC; one seed cannot settle it")
    elif best_lo > 0:
        auroc_claim = f"holds here for {best_label}: {best_diff:+.4f} AUROC, 95 % CI above 0"
    elif best_hi < 0:
        auroc_claim = (f"does not hold here: every FD arm ends below plain fine-tuning, even the best ({best_label}: "
                       f"{best_diff:+.4f} AUROC, 95 % CI [{best_lo:+.4f}, {best_hi:+.4f}])")
    else:
        auroc_claim = (f"not shown here: the best FD arm ({best_label}) is {best_diff:+.4f} AUROC from plain "
                       f"fine-tuning, 95 % CI [{best_lo:+.4f}, {best_hi:+.4f}] contains 0")
    def verdict(after: float, before: float, lower_is_claimed: bool) -> str:
        """'holds' / 'does not hold' when the two differ by more than 5 % (relative), else no clear difference."""
        if abs(after - before) <= 0.05 * max(abs(before), 1e-9):
            return "no clear difference here (within 5 %)"
        return "holds here" if (after < before) == lower_is_claimed else "does not hold here"

    n_tokens = len(att["teacher (before FD)"]["attention"]["layers"][0]["average_map"])
    spacing = _spacing_ms(plan)
    uniform = spacing * (n_tokens ** 2 - 1) / (3 * n_tokens)  # mean |i - j| x spacing over all pairs
    teacher_dist = statistics.fmean(_layer_means(att["teacher (before FD)"])[0])
    student_dist = statistics.fmean(_layer_means(att["FD student, shared RPB"])[0])
    t_cols, t_diag = _map_structure(att["teacher (before FD)"])
    s_cols, s_diag = _map_structure(att["FD student, shared RPB"])
    claims = [
        f"- *FD-then-fine-tune beats fine-tuning the teacher*: {auroc_claim}.",
        f"- *Heads become more diverse* (lower head similarity): teacher {teacher_sim:.3f}, shared-RPB student "
        f"{student_sim:.3f} (mean over layers) - {verdict(student_sim, teacher_sim, True)}.",
        f"- *Attention distances spread out over heads* (the paper's Fig. 2: heads cover local and global ranges): "
        f"std of the heads' distances, mean over layers, teacher {teacher_spread:.1f} {unit}, student "
        f"{student_spread:.1f} {unit} - {verdict(student_spread, teacher_spread, False)}.",
        f"- *Flatter loss landscape after FD*: 1-D sharpness (mean loss rise over the curve) baseline {base_sharp:.4f}, "
        f"FD + finetune {fd_sharp:.4f} - {verdict(fd_sharp, base_sharp, True)}.",
        f"- For scale: attention spread evenly over the {n_tokens} patch tokens would give an average distance of "
        f"{uniform:.0f} {unit}; the teacher's mean over layers is {teacher_dist:.0f} {unit} and the student's "
        f"{student_dist:.0f} {unit}. Where attention goes, from the average maps (mean over layers; share of a map's "
        f"variance explained by the key alone, i.e. columns: every query looking at the same keys / by the relative "
        f"position alone, i.e. diagonals): teacher {t_cols:.2f} / {t_diag:.2f}, shared-RPB student "
        f"{s_cols:.2f} / {s_diag:.2f}.",
    ]
    command = "python experiments/fd_transformer/run.py" + (" --smoke" if args.smoke else "")
    rel = figures.relative_to(path.parent)
    text = f"""# Feature Distillation on a transformer VAD: position encodings and the paper's analyses

Every number and figure here was written by `{command}` (its last invocation took {seconds / 60:.0f} min on
this machine; finished runs are skipped, so a resumed experiment counts only what was left; runs in
`{_shown(work)}`). Model: `{plan.model}` (fdvad's audio
transformer: 30 ms patch tokens of 80 log-mel bands, a CLS token, BEiT-style blocks with layer scale, mean-pooled
head), scored one 0.63 s window at a time. Corpora A (teacher) and B (target) are those of
[the MarbleNet experiment](fd_marblenet.md): A = espeak-ng voices and generated noises on a clean channel; B =
voices recorded from people, real recordings, music, babble, reverberation and codecs.

## What the paper claims, and what we see

The paper's evidence comes from ViT-B/L models pre-trained for hundreds of epochs; this is a {_parameters(plan) / 1e6:.2f} M-parameter
model trained for minutes on 2 CPU cores ({len(plan.seeds)} seed(s)), so read each line as what happens at this scale.

{chr(10).join(claims)}

## AUROC by position encoding (B's test split)

Teacher: {plan.teacher_steps} steps on A (absolute positions, AdamW lr 1e-3). Every fine-tuning: {plan.finetune_steps} steps
on B (AdamW lr 5e-4, cosine, wd 0.05, layer-wise lr decay 0.75, drop path 0.1). FD: {plan.distill_steps} steps on B's
audio without labels (each crop cut into 0.63 s windows; target = the teacher's final-norm tokens, CLS included,
whitened; 1x1-conv projector; smooth-L1 beta 2; student drop path 0.1, teacher 0). Batches of {plan.batch} crops of
{plan.crop_s:g} s. Seeds: {", ".join(map(str, plan.seeds))}. The last column: FD + finetune minus finetune in AUROC
(paired 95 % t interval over seeds when there are several).

| model | position encoding | AUROC | F1 | DetER c0 | difference |
|---|---|---|---|---|---|
{chr(10).join(rows)}

## Attention before and after FD ({plan.analysis_inputs} windows of B's test split)

Per layer (1 / 2 / ...): mean over heads of the average attention distance, its spread (std) over heads, and the
mean cosine similarity between heads' attention maps. CLS excluded as query and key, rows renormalised.

| model | attention distance ({unit}) | spread over heads ({unit}) | head similarity |
|---|---|---|---|
{chr(10).join(att_rows)}

![attention distance]({rel}/attention_distance.png)
![head similarity]({rel}/head_similarity.png)
![average attention maps]({rel}/attention_maps.png)

## Loss landscapes of the fine-tuned models

Filter-normalised random directions (Li et al. 2018; biases and norms not moved), the same seed for both
models, evaluated on the same {plan.analysis_inputs} windows.

![1-D landscapes]({rel}/landscape_1d.png)
![2-D landscapes]({rel}/landscape_2d.png)

## Reproduce

```
{command}
fdvad analyze {_shown(work)}/teacher/model.safetensors \\
    {_shown(work)}/fd_shared_relative_s0/model.safetensors \\
    --data {_shown(test)} \\
    --landscape none --out analysis
```
"""
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
