"""`fdvad eval` and `fdvad compare`: score VADs on a labelled corpus, print a table, write JSON and plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError, FdvadError, OutputExistsError

OUT_FILES = {"eval": ("eval.json", "roc.png", "pr.png"), "compare": ("compare.json", "roc.png", "pr.png")}


def _error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def _prepare_out(out: str, names: tuple[str, ...], overwrite: bool) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; give a folder")
    if not folder.parent.is_dir():
        raise ConfigError(f"the parent folder of --out ({folder.parent}) does not exist")
    existing = [str(folder / n) for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {folder}: {e.strerror or e}") from None
    return folder


def _items(corpus: str, audio_dir: Optional[str], skip_missing: bool):
    from ..data.corpora import read_corpus

    items = read_corpus(corpus, audio_dir, skip_missing=skip_missing)
    if not items:
        raise ConfigError(f"{corpus} has no items to score")
    return items


def _progress(total: int, label: str):
    """A callback advancing a rich progress bar on a terminal (None elsewhere), and the bar to stop."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total} items"),
                   TimeRemainingColumn(), transient=True)
    bar.start()
    task = bar.add_task(label, total=total)
    return (lambda done: bar.update(task, completed=done)), bar


def _score(systems, items, label: str, timed: bool):
    """compare_systems with a progress bar on a terminal."""
    from .evaluate import compare_systems

    callback, bar = _progress(len(items), label)
    try:
        return compare_systems(systems, items, timed=timed, progress=callback)
    finally:
        if bar is not None:
            bar.stop()


def _corpus_title(corpus: str) -> str:
    """A plot title naming the corpus: its last two path parts ("test/manifest.json"), not just "manifest.json"."""
    parts = Path(corpus).parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else corpus


def _fmt(value, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if pct else f"{value:.4f}"


def print_table(rows: dict[str, dict], speed: dict[str, float | None] | None = None, title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None)
    for col in ("system", "AUROC", "F1", "precision", "recall", "DetER c0", "DetER c0.25", "FP music-only",
                "FP noise-only") + (("x real time",) if speed else ()):
        table.add_column(col, justify="left" if col == "system" else "right")
    for name, r in rows.items():
        cells = [name, _fmt(r["auroc"]), _fmt(r["f1"]), _fmt(r["precision"]), _fmt(r["recall"]),
                 _fmt(r["deter@0"]), _fmt(r["deter@0.25"]), _fmt(r["fp_rate_music_only"], True),
                 _fmt(r["fp_rate_noise_only"], True)]
        if speed:
            cells.append("-" if speed.get(name) is None else f"{speed[name]:.0f}x")
        table.add_row(*cells)
    Console(width=160).print(table)


def eval_command(
    model: str = typer.Argument(..., help="default, an fdvad checkpoint (.safetensors) or a NeMo .nemo file."),
    corpus: str = typer.Argument(..., metavar="MANIFEST_OR_FOLDER",
                                 help="Labelled audio: NeMo manifest, RTTM folder, AVA CSV or LibriParty JSON."),
    mode: str = typer.Option("fast", "--mode", help="fast or exact inference."),
    out: str = typer.Option("fdvad_eval", "--out", help="Folder for eval.json, roc.png and pr.png."),
    audio_dir: Optional[str] = typer.Option(None, "--audio-dir", help="Where AVA / LibriParty audio is."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Leave out items whose audio is missing."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing result files."),
) -> None:
    """Score one model on a labelled corpus: frame AUROC, F1, detection error rate, false positives on
    music-only and noise-only items, and the same by language / SNR / noise / codec / reverb."""
    from .evaluate import by_condition, save_curves, summarize
    from .systems import fdvad_system

    try:
        folder = _prepare_out(out, OUT_FILES["eval"], overwrite)
        items = _items(corpus, audio_dir, skip_missing)
        system = fdvad_system(model, mode, name=f"fdvad {Path(model).stem if model != 'default' else 'default'}")
        results, speed = _score([system], items, "eval", timed=True)
        scores = results[system.name]
        report = {"model": model, "mode": mode, "corpus": corpus, "overall": summarize(scores),
                  "by_condition": by_condition(scores), "x_real_time_one_thread": speed[system.name]}
        print_table({system.name: report["overall"]}, speed, title=f"{corpus}: {report['overall']['items']} items, "
                                                                   f"{report['overall']['hours']:.2f} h")
        _print_breakdown(report["by_condition"])
        _write_json(folder / "eval.json", report, overwrite)
        save_curves(results, folder / "roc.png", folder / "pr.png", title=_corpus_title(corpus), overwrite=overwrite)
        typer.echo(f"results -> {folder / 'eval.json'}, {folder / 'roc.png'}, {folder / 'pr.png'}", err=True)
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


def compare_command(
    corpus: str = typer.Argument(..., metavar="MANIFEST_OR_FOLDER",
                                 help="Labelled audio: NeMo manifest, RTTM folder, AVA CSV or LibriParty JSON."),
    systems: str = typer.Option("fdvad,silero,webrtc,pocketsphinx", "--systems",
                                help="Comma-separated: fdvad[:MODEL[:exact]], silero, webrtc[:MODE], "
                                     "pocketsphinx, tenvad."),
    out: str = typer.Option("fdvad_compare", "--out", help="Folder for compare.json, roc.png and pr.png."),
    audio_dir: Optional[str] = typer.Option(None, "--audio-dir", help="Where AVA / LibriParty audio is."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Leave out items whose audio is missing."),
    no_speed: bool = typer.Option(False, "--no-speed", help="Do not time the systems."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing result files."),
) -> None:
    """Score several VADs on the same labelled audio: one table, one ROC plot, each system's speed."""
    from .evaluate import save_curves, summarize
    from .systems import make_system

    try:
        folder = _prepare_out(out, OUT_FILES["compare"], overwrite)
        items = _items(corpus, audio_dir, skip_missing)
        chosen = [make_system(spec) for spec in systems.split(",") if spec.strip()]
        if not chosen:
            raise ConfigError("--systems names no system")
        results, speed = _score(chosen, items, "compare", timed=not no_speed)
        rows = {name: summarize(scores) for name, scores in results.items()}
        print_table(rows, None if no_speed else speed,
                    title=f"{corpus}: {rows[chosen[0].name]['items']} items, {rows[chosen[0].name]['hours']:.2f} h")
        report = {"corpus": corpus, "systems": {name: {**rows[name], "x_real_time_one_thread": speed[name],
                                                       "binary": s.binary} for name, s in zip(results, chosen)}}
        _write_json(folder / "compare.json", report, overwrite)
        save_curves(results, folder / "roc.png", folder / "pr.png", title=_corpus_title(corpus), overwrite=overwrite)
        typer.echo(f"results -> {folder / 'compare.json'}, {folder / 'roc.png'}, {folder / 'pr.png'}", err=True)
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


def tune_command(
    model: str = typer.Argument(..., help="default, an fdvad checkpoint (.safetensors) or a NeMo .nemo file."),
    corpus: str = typer.Argument(..., metavar="DEV_MANIFEST_OR_FOLDER",
                                 help="Labelled dev audio (not the test set): manifest, RTTM folder, AVA CSV, ..."),
    objective: str = typer.Option("f1", "--objective", help="f1 (highest frame F1) or deter (lowest detection "
                                                            "error rate)."),
    mode: str = typer.Option("fast", "--mode", help="fast or exact inference."),
    write: bool = typer.Option(False, "--write", help="Write the tuned settings into MODEL's own .yaml."),
    save_as: Optional[str] = typer.Option(None, "--save-as", help="Write a copy of the model with the tuned "
                                                                 "settings as its defaults (NAME.safetensors)."),
    audio_dir: Optional[str] = typer.Option(None, "--audio-dir", help="Where AVA / LibriParty audio is."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --save-as replace an existing model."),
) -> None:
    """Search onset/offset/pads/min durations for the best F1 or lowest detection error rate on a dev set,
    and (with --write or --save-as) make them the model's defaults."""
    import yaml

    from ..fileio import atomic_write_text
    from ..models.checkpoint import config_path_for, read_config, save_checkpoint
    from ..vad.detector import load_vad
    from .tune import OBJECTIVES, postprocess_section, score_dev_set, tune

    try:
        if objective not in OBJECTIVES:
            raise ConfigError(f"--objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        if write and (model == "default" or not model.endswith(".safetensors")):
            raise ConfigError("--write changes an fdvad checkpoint's .yaml; for the default model or a .nemo "
                              "file use --save-as NEW.safetensors")
        if save_as is not None:
            if not save_as.endswith(".safetensors"):
                raise ConfigError(f"--save-as wants a NAME.safetensors path, got {save_as}")
            for p in (Path(save_as), config_path_for(save_as)):
                if p.exists() and not overwrite:
                    raise OutputExistsError(f"{p} already exists; pass --overwrite to replace it")
        vad = load_vad(model, mode=mode)
        items = _items(corpus, audio_dir, False)
        callback, bar = _progress(len(items), "scoring")
        try:
            dev = score_dev_set(vad, items, progress=callback)
        finally:
            if bar is not None:
                bar.stop()
        best, scores, start = tune(vad, dev, objective, progress=lambda line: typer.echo(line, err=True))
        section = postprocess_section(best)
        typer.echo(f"before: F1 {start['f1']:.4f}  DetER {start['deter']:.4f}  ({_settings(vad.postprocess)})")
        typer.echo(f"tuned:  F1 {scores['f1']:.4f}  DetER {scores['deter']:.4f}  ({_settings(best)})")
        if write:
            full = read_config(model)
            full["postprocess"] = section
            full.setdefault("tuning", {})["postprocess"] = {"dev": corpus, "objective": objective,
                                                            "f1": round(scores["f1"], 4),
                                                            "deter": round(scores["deter"], 4)}
            atomic_write_text(config_path_for(model), yaml.safe_dump(full, sort_keys=False))
            typer.echo(f"wrote the tuned settings into {config_path_for(model)}", err=True)
        if save_as is not None:
            config = {k: v for k, v in vad.config.items() if k not in ("format", "model")}
            config["postprocess"] = section
            config["tuning"] = {"from": model, "dev": corpus, "objective": objective,
                                "f1": round(scores["f1"], 4), "deter": round(scores["deter"], 4)}
            save_checkpoint(save_as, vad.model, config)
            typer.echo(f"wrote {save_as} and {config_path_for(save_as)}", err=True)
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


def _settings(config) -> str:
    return (f"onset {config.onset:g}, offset {config.offset:g}, pads {config.pad_onset:g}/{config.pad_offset:g} s, "
            f"min on {config.min_duration_on:g} s, min off {config.min_duration_off:g} s")


def _write_json(path: Path, data: dict, overwrite: bool) -> None:
    from ..fileio import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n", overwrite=overwrite)


def _print_breakdown(groups: dict[str, dict[str, dict]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    for cond, per in groups.items():
        table = Table(title=f"by {cond}")
        for col in (cond, "items", "hours", "AUROC", "F1", "DetER c0", "FP no-speech"):
            table.add_column(col, justify="left" if col == cond else "right")
        for group, r in per.items():
            table.add_row(group, str(r["items"]), f"{r['hours']:.3f}", _fmt(r["auroc"]), _fmt(r["f1"]),
                          _fmt(r["deter@0"]), _fmt(r["fp_rate_no_speech"], True))
        console.print(table)
