"""Write a model card from a finished `make model` run, and (with --install) copy the model in as the default.

    python scripts/model_card.py runs/default [--install src/fdvad/weights] [--keep-previous NAME]
    python scripts/model_card.py runs/fd_from_silero/finetune --make-target "make model-fd-silero" \
        --recipes recipes/fd_from_silero.yaml,recipes/fd_from_silero_finetune.yaml --install src/fdvad/weights

A run fine-tuned from a distilled student (its model.init's .yaml has a "distillation" section) is described
as both stages. `--keep-previous NAME` first copies the installed default.* to NAME.* (loadable as
`load_vad(NAME)`), so an earlier default is never lost.

Reads RUN/model.yaml (recipe, training steps, tuned post-processing), RUN/metrics.json (validation rounds),
RUN/eval-test/eval.json and RUN/eval-unseen/eval.json (`fdvad eval`), RUN/compare-test/compare.json and
RUN/compare-unseen/compare.json (`fdvad compare`) and RUN/real_audio.json (`bench/real_audio.py`); every
number in the card comes from those files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml


def _load(path: Path):
    if not path.is_file():
        sys.exit(f"error: {path} is missing; run `make model` to the end first")
    return json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else yaml.safe_load(path.read_text())


def _f(v, pct=False):
    if v is None:
        return "-"
    return f"{100 * v:.2f} %" if pct else f"{v:.4f}"


def compare_table(report: dict, this: str = "fdvad default") -> str:
    rows = ["| system | AUROC | F1 | precision | recall | DetER c0 | DetER c0.25 | FP music-only | FP noise-only | x real time |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["systems"].items():
        label = f"**{this} (this model)**" if name.startswith("fdvad") else name
        speed = r.get("x_real_time_one_thread")
        rows.append(f"| {label} | {_f(r['auroc'])} | {_f(r['f1'])} | {_f(r['precision'])} | {_f(r['recall'])} | "
                    f"{_f(r['deter@0'])} | {_f(r['deter@0.25'])} | {_f(r['fp_rate_music_only'], True)} | "
                    f"{_f(r['fp_rate_noise_only'], True)} | {'-' if speed is None else f'{speed:.0f}'} |")
    return "\n".join(rows)


def breakdown(report: dict, condition: str) -> str:
    per = report["by_condition"].get(condition, {})
    return ", ".join(f"{group}: {_f(r['auroc'])}" for group, r in per.items() if r["auroc"] is not None)


def real_table(real: dict) -> str:
    rows = ["| system | phone call: miss | false alarm | DetER | spoken words: miss | real effects: % of time called speech | real music: % of time called speech |",
            "|---|---|---|---|---|---|---|"]
    for name, r in real.items():
        p = r["pyannote_sample"]
        rows.append(f"| {name} | {p['miss']:.3f} | {p['false_alarm']:.3f} | {p['miss'] + p['false_alarm']:.3f} | "
                    f"{r['spoken_words']['miss']:.3f} | {100 * r['non_speech_effects']['speech_fraction']:.1f} % | "
                    f"{100 * r['non_speech_music']['speech_fraction']:.1f} % |")
    return "\n".join(rows)


def stage_one(config: dict) -> dict | None:
    """The distillation section of the student a fine-tuning run started from, if it started from one."""
    init = (config["training"]["recipe"].get("model") or {}).get("init")
    if not init:
        return None
    init_yaml = Path(init).with_suffix(".yaml")
    if not init_yaml.is_file():
        return None
    return (yaml.safe_load(init_yaml.read_text()) or {}).get("distillation")


def how_made(config: dict, recipes: list[str]) -> tuple[str, str, str]:
    """(summary line, the commands, the bullet on how the weights were trained)."""
    recipe, training = config["training"]["recipe"], config["training"]
    o, t, d = recipe["optim"], recipe["train"], recipe["data"]
    distilled = stage_one(config)
    if distilled is None:
        commands = f"fdvad train {recipes[0] if recipes else 'recipes/default.yaml'}                      # makes the corpus, then trains"
        summary = "trained on CPU on a corpus made here by `fdvad data synth`."
        steps = (f"- training: {training['steps']} steps of {t['batch_size']} random {d['crop_s']:g} s crops, {o['name']} "
                 f"lr {o['lr']:g}\n  ({o['schedule']}, warmup {o['warmup_ratio']:g}, down to {o['min_lr']:g}), weight "
                 f"decay {o['weight_decay']:g}, gradient\n  clipping {t['grad_clip']:g}; fast (pooled) + isolated-window "
                 f"losses; SpecAugment {d['freq_masks']} x {d['freq_width']} bins,\n  {d['time_masks']} x {d['time_width']} "
                 f"frames; white noise {d['white_noise_db'][0]:g}..{d['white_noise_db'][1]:g} dB; time shift "
                 f"+-{1000 * d['time_shift_s']:g} ms;")
        return summary, commands, steps
    dr = distilled["recipe"]
    ds, dt, dd, do = dr["distill"], dr["train"], dr["data"], dr["optim"]
    teacher = "Silero VAD v6 (the packaged model, MIT)" if ds["teacher"] == "silero" else f"`{ds['teacher']}`"
    what = ("its LSTM feature map (Feature Distillation: whitened target, 1x1-conv projector, smooth-L1 beta "
            f"{ds['beta']:g}, student drop path {ds['student_drop_path']:g})" if ds["target"] == "features"
            else "its speech probabilities (classical distillation)")
    stage1, stage2 = (recipes + ["", ""])[:2] if recipes else ("RECIPE.yaml", "RECIPE.yaml")
    commands = (f"fdvad distill {stage1}      # stage 1: the teacher's features, no labels\n"
                f"fdvad finetune {stage2}     # stage 2: the labels")
    summary = (f"distilled from {teacher} — the student learned {'its feature map' if ds['target'] == 'features' else 'its outputs'} "
               "on unlabelled audio — then fine-tuned on the labels of a corpus made here by `fdvad data synth`.")
    extra = f" plus {', '.join(ds['unlabelled'])} (real recordings, unlabelled)" if ds.get("unlabelled") else ""
    steps = (f"- stage 1: a fresh student learned {what}, {distilled['steps']} steps of {dt['batch_size']} random "
             f"{dd['crop_s']:g} s crops of the corpus's train audio{extra}, {do['name']} lr {do['lr']:g} ({do['schedule']}); "
             f"labels unused;\n"
             f"- stage 2: fine-tuning, {training['steps']} steps of {t['batch_size']} random {d['crop_s']:g} s crops, "
             f"{o['name']} lr {o['lr']:g} ({o['schedule']}, down to {o['min_lr']:g}), layer decay {o['layer_decay']:g}, "
             f"weight decay {o['weight_decay']:g}, drop path {recipe['model']['overrides'].get('drop_path_rate', 0):g}; "
             "fast (pooled) + isolated-window losses, SpecAugment;")
    return summary, commands, steps


def card(run: Path, make_target: str = "make model", recipes: list[str] = (), name: str = "default") -> str:
    config = _load(run / "model.yaml")
    history = _load(run / "metrics.json")
    ev_test, ev_unseen = _load(run / "eval-test" / "eval.json"), _load(run / "eval-unseen" / "eval.json")
    cmp_test, cmp_unseen = _load(run / "compare-test" / "compare.json"), _load(run / "compare-unseen" / "compare.json")
    real = _load(run / "real_audio.json")
    recipe = config["training"]["recipe"]
    pp = config["postprocess"]
    tuning = config.get("tuning", {}).get("postprocess", {})
    m = config["model"]["config"]
    silero = next((r for n, r in cmp_test["systems"].items() if n == "silero"), None)
    ours = next(r for n, r in cmp_test["systems"].items() if n.startswith("fdvad"))
    verdict = ""
    if silero is not None:
        if ours["auroc"] >= silero["auroc"]:
            verdict = (f"On the synthetic test split its frame AUROC ({ours['auroc']:.4f}) is at or above Silero VAD's "
                       f"({silero['auroc']:.4f}).")
        else:
            verdict = (f"On the synthetic test split its frame AUROC ({ours['auroc']:.4f}) is below Silero VAD's "
                       f"({silero['auroc']:.4f}); see Limits.")
    c = recipe["corpus"]
    corpus = str(Path(recipe["data"]["train"])) if not c.get("out") else c["out"]
    distilled = stage_one(config)
    if distilled is not None and not c.get("out"):
        c = distilled["recipe"]["corpus"]  # the corpus the distillation recipe made
    summary, commands, steps = how_made(config, list(recipes))
    tune_path = tuning.get("dev") or f"{corpus}/validation/manifest.json"  # what `fdvad tune --write` recorded
    tune_words = ("the validation split" if tune_path.endswith("validation/manifest.json") else
                  f"`{tune_path}` (real recordings labelled by `fdvad data pseudo-label`)")
    selected = config["training"].get("selected")
    kept = (f" (the weights of step {selected['step']} are kept: its {selected['metric']} {selected['value']:.4f} was the "
            "highest)" if selected else "")
    rounds = ", ".join(f"step {h['step']}: {h.get('val_auroc', float('nan')):.4f}"
                       + (f" (real dev {h['val_real_auroc']:.4f})" if "val_real_auroc" in h else "") for h in history)
    # the audio depends on which sound packages are installed: the card names the set (the Makefile's)
    corpus_line = (f"`fdvad data synth --hours {c['hours']} --seed {c['seed']}` after `make data-deps`" if c.get("hours")
                   else f"`{corpus}`")
    this = "fdvad default" if name == "default" else f"fdvad {name}"
    title = ("# fdvad default VAD model (`default.safetensors`)" if name == "default" else
             f"# fdvad `{name}` VAD model (`load_vad(\"{name}\")`; not the default)")
    if name != "default":  # why it ships beside the default: where the comparison that decided that lives
        verdict += ("\nIt ships beside the default, not in its place: docs/experiments/fd_from_silero.md compares the "
                    "two and gives the rule it did not pass.")
    return f"""{title}

MarbleNet-{m['num_blocks']}x{m['repeats']}x{m['channels']} on 80-band log-mel (NeMo front end), classifying 0.63 s
windows every 0.08 s as speech / non-speech, {summary}
{verdict}

## How it was made
`{make_target}` (on 2 CPU cores, no GPU), which runs:
```
{commands}
fdvad tune {run}/model.safetensors {tune_path} --objective {tuning.get('objective', 'f1')} --write
fdvad eval / fdvad compare on the test and unseen-language splits, bench/real_audio.py, scripts/model_card.py
```
- corpus: {corpus_line} (docs/data.md): TTS speech in 15 languages
  (espeak-ng, flite, festival voices) over real package recordings, game music and MIDI rendered through GM
  soundfonts, generated noises, synthesised human non-speech sounds and babble, SNR -5..30 dB, reverb,
  band-limiting, codecs; {config['training']['train_items']} training items; labels exact to 10 ms;
{steps}
- validation window AUROC during training: {rounds}{kept};
- post-processing tuned for {tuning.get('objective', '?')} on {tune_words}: onset {pp['onset']:g}, offset {pp['offset']:g},
  pads {pp['pad_onset']:g} / {pp['pad_offset']:g} s, min speech {pp['min_duration_on']:g} s, min silence {pp['min_duration_off']:g} s
  (there F1 {tuning.get('f1', float('nan')):.4f}, detection error rate {tuning.get('deter', float('nan')):.4f}).

## What it scores

Synthetic test split (voices, sentences and recordings never seen in training; {ev_test['overall']['items']} items,
{ev_test['overall']['hours']:.2f} h), `fdvad compare`, 10 ms frames, each system's default post-processing:

{compare_table(cmp_test, this)}

Unseen-language split ({", ".join(sorted(ev_unseen['by_condition'].get('language', {})))}; {ev_unseen['overall']['items']} items, {ev_unseen['overall']['hours']:.2f} h):

{compare_table(cmp_unseen, this)}

AUROC on the test split by SNR: {breakdown(ev_test, 'snr')}.
By background: {breakdown(ev_test, 'noise_kind')}.
By codec: {breakdown(ev_test, 'codec')}. By reverb: {breakdown(ev_test, 'reverb')}.
(Full breakdowns, ROC and PR curves: `fdvad eval` writes them; `make model` keeps them in {run}/.)

Real audio (`python bench/real_audio.py`; docs/data.md explains the three sets):

{real_table(real)}

## Limits
{limits(real, distilled, pp.get('onset'))}
Licence: Apache-2.0, like fdvad; the TTS engines and the packages whose recordings were mixed in were used
as tools, none of their data is shipped.
"""


def limits(real: dict, distilled: dict | None = None, tuned_onset: float | None = None) -> str:
    """What the real-audio numbers say against Silero, in words."""
    ours = next((r for n, r in real.items() if n.startswith("fdvad")), None)
    silero = next((r for n, r in real.items() if n.startswith("silero")), None)
    if ours is None or silero is None:
        return "Trained on synthetic speech only; no real-audio comparison was run."
    p, q = ours["pyannote_sample"], silero["pyannote_sample"]
    ours_d, silero_d = p["miss"] + p["false_alarm"], q["miss"] + q["false_alarm"]
    origin = ("Its labels are synthetic speech only; what it knows of real speech comes from its teacher's features "
              "on that audio" + (" and a few minutes of unlabelled real recordings" if (distilled or {}).get(
                  "recipe", {}).get("distill", {}).get("unlabelled") else "") + "."
              if distilled else "Trained on synthetic speech only.")
    words = (f"{origin} On the real phone call its detection error rate is {ours_d:.3f} "
             f"against Silero VAD's {silero_d:.3f} (miss {p['miss']:.3f} vs {q['miss']:.3f}, false alarm "
             f"{p['false_alarm']:.3f} vs {q['false_alarm']:.3f}); on real spoken words it misses "
             f"{ours['spoken_words']['miss']:.3f} against {silero['spoken_words']['miss']:.3f}.")
    lower = next(((n, r) for n, r in real.items() if n.startswith("fdvad") and " @ " in n), None)
    if lower is not None:
        name, r = lower
        onset = name.rsplit(" @ ", 1)[1]
        numbers = (f"{r['pyannote_sample']['miss']:.3f} (phone call) and {r['spoken_words']['miss']:.3f} (spoken words)",
                   f"{100 * r['non_speech_effects']['speech_fraction']:.1f} % of the time instead of "
                   f"{100 * ours['non_speech_effects']['speech_fraction']:.1f} %")
        if tuned_onset is None or tuned_onset > float(onset):
            words += (f" Its tuned onset favours precision on synthetic data; with `threshold={onset}` the real-speech "
                      f"misses fall to {numbers[0]} while real sound effects are called speech {numbers[1]}.")
        else:
            words += (f" With `threshold={onset}` instead of its tuned onset {tuned_onset:g} the real-speech misses are "
                      f"{numbers[0]}, and real sound effects are called speech {numbers[1]}.")
    if ours_d > silero_d:
        words += " Silero, trained on real speech, is ahead on real audio."
    return words


def _check_new_name(target: Path, name: str, option: str, exists_hint: str) -> None:
    """Exit with one line unless NAME is a plain name that `target` does not hold yet."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        sys.exit(f"error: {option} takes a plain name (letters, digits, - and _), got {name!r}")
    if (target / f"{name}.safetensors").exists():
        sys.exit(f"error: {target / name}.safetensors exists already; {exists_hint}")


REPO = Path(__file__).resolve().parents[1]


def portable_yaml(path: Path, root: Path = REPO) -> str:
    """A model's .yaml with the paths under `root` made relative to it: a run started with absolute paths (as the
    experiments pass them) would otherwise ship this machine's folders in its recorded recipe."""
    return path.read_text(encoding="utf-8").replace(f"{root}/", "")


def _write_named(target: Path, name: str, card_text: str, source: Path, stem: str) -> None:
    """NAME.md from `card_text`, then SOURCE/STEM.yaml (its paths made relative) and .safetensors copied to NAME.*:
    each file whole or absent, the weights last, so an interrupted copy can simply be run again."""
    from fdvad.fileio import atomic_write, atomic_write_text

    atomic_write_text(target / f"{name}.md", card_text)
    atomic_write_text(target / f"{name}.yaml", portable_yaml(source / f"{stem}.yaml"))
    atomic_write(target / f"{name}.safetensors", lambda tmp: shutil.copyfile(source / f"{stem}.safetensors", tmp))


def keep_previous(target: Path, name: str) -> None:
    """Copy the installed default.{safetensors,yaml,md} in `target` to NAME.*, its card retitled."""
    _check_new_name(target, name, "--keep-previous", "choose another name")
    missing = [f"default{s}" for s in (".safetensors", ".yaml", ".md") if not (target / f"default{s}").is_file()]
    if missing:
        sys.exit(f"error: --keep-previous: no {', '.join(missing)} in {target} to keep")
    lines = (target / "default.md").read_text(encoding="utf-8").splitlines()
    lines[0] = f"# fdvad `{name}` VAD model (the default before; `load_vad(\"{name}\")`)"
    _write_named(target, name, "\n".join(lines) + "\n", target, "default")


def install_beside(run: Path, target: Path, name: str, text: str) -> int:
    """Copy the run's model into `target` as NAME.* beside the default (load_vad(NAME)); an existing NAME is never
    replaced."""
    _check_new_name(target, name, "--install-as", "remove it first or choose another name")
    _write_named(target, name, text, run, "model")
    print(f"installed {run / 'model.safetensors'} as {target / name}.safetensors with its card")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="the run folder of `make model` (runs/default)")
    ap.add_argument("--install", help="copy model.safetensors/.yaml there as default.* and write default.md")
    ap.add_argument("--keep-previous", metavar="NAME", help="with --install: keep the installed default as NAME.*")
    ap.add_argument("--install-as", metavar="NAME", default="default",
                    help="with --install: the name to install under (default: default); another name ships the model "
                         "beside the default, loadable as load_vad(NAME), and never replaces a file")
    ap.add_argument("--make-target", default="make model", help="the command that made the run (for the card)")
    ap.add_argument("--recipes", default="recipes/default.yaml",
                    help="the recipe files, comma-separated (distillation, then fine-tuning, for a distilled model)")
    args = ap.parse_args(argv)
    run = Path(args.run)
    text = card(run, args.make_target, [r for r in args.recipes.split(",") if r],
                args.install_as if args.install else "default")
    if args.install and args.install_as != "default":
        return install_beside(run, Path(args.install), args.install_as, text)
    if args.install:
        target = Path(args.install)
        if args.keep_previous:
            keep_previous(target, args.keep_previous)
            print(f"kept the previous default as {target / args.keep_previous}.*")
        _write_named(target, "default", text, run, "model")
        print(f"installed {run / 'model.safetensors'} as {target / 'default.safetensors'} with its card")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
