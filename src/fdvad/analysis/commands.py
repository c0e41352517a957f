"""`fdvad analyze MODEL [MODEL2] --data DATA --out DIR`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer

from ..errors import ConfigError, FdvadError

LANDSCAPES = ("1d", "2d")


def _progress_factory():
    """A function (label, total) -> tick callback showing a rich bar on a terminal; None elsewhere."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), transient=True)
    bar.start()

    def make(label: str, total: int):
        task = bar.add_task(label, total=total)
        return lambda done: bar.update(task, completed=done)

    make.bar = bar
    return make


def analyze_command(
    models: List[str] = typer.Argument(..., metavar="MODEL [MODEL2]",
                                       help="One or two models: default, an fdvad .safetensors, a NeMo .nemo, or a "
                                            "transformers model folder (save_pretrained)."),
    data: str = typer.Option(..., "--data", help="Audio models: a labelled manifest or corpus folder. Image models: "
                                                 "a folder of images (class subfolders give landscape labels)."),
    out: str = typer.Option("fdvad_analysis", "--out", help="Folder for analysis.json and the PNG figures."),
    inputs: int = typer.Option(512, "--inputs", min=8, help="Fixed evaluation set: this many windows or images."),
    landscape: str = typer.Option("1d,2d", "--landscape", help="Landscapes to draw: 1d, 2d, both, or none."),
    span: float = typer.Option(1.0, "--span", help="Landscape half-width, in filter-normalised steps."),
    points: int = typer.Option(21, "--points", min=3, help="Points of the 1-D landscape."),
    grid: int = typer.Option(11, "--grid", min=3, help="Points per side of the 2-D landscape."),
    seed: int = typer.Option(0, "--seed", help="Seed of the evaluation subset and the random directions."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing result files."),
) -> None:
    """Attention distance, head similarity, average attention maps and loss landscapes of one or two models
    (e.g. before and after Feature Distillation), side by side in the same figures."""
    from ..eval.commands import _prepare_out
    from .report import FIGURES, analyze, plot, write_json
    from .subjects import load_subject

    make_bar = None
    try:
        if not 1 <= len(models) <= 2:
            raise ConfigError(f"give one or two models, not {len(models)}")
        chosen = tuple(x for x in landscape.replace(" ", "").split(",") if x and x != "none")
        unknown = [x for x in chosen if x not in LANDSCAPES]
        if unknown:
            raise ConfigError(f"--landscape: unknown {unknown}; use 1d, 2d, 1d,2d or none")
        if not span > 0:
            raise ConfigError(f"--span must be > 0, got {span}")
        folder = _prepare_out(out, ("analysis.json", *FIGURES), overwrite)
        names = [Path(m).stem if Path(m).is_file() else Path(m).name for m in models]
        if len(names) == 2 and names[0] == names[1]:
            names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
        subjects = [load_subject(m, data, inputs, seed, name) for m, name in zip(models, names)]
        if len({s.kind for s in subjects}) > 1:
            raise ConfigError("the two models must both be audio or both be image models")
        make_bar = _progress_factory()
        result = analyze(subjects, chosen, span, points, grid, seed, progress=make_bar)
        result["settings"]["data"] = data
        write_json(result, folder / "analysis.json", overwrite)
        written = plot(result, folder, overwrite)
        for s in subjects:
            entry = result["models"][s.name]
            line = f"{s.name}: "
            if "attention" in entry:
                layers = entry["attention"]["layers"]
                line += ("attention distance per layer (" + entry["attention"]["unit"] + ") " +
                         " ".join(f"{sum(e['distance']) / len(e['distance']):.0f}" for e in layers) +
                         "; head similarity " + " ".join(f"{e['head_similarity']:.2f}"
                                                         if e["head_similarity"] is not None else "-" for e in layers))
            if "loss" in entry:
                line += f"{'; ' if 'attention' in entry else ''}loss {entry['loss']:.4f}, accuracy {entry['accuracy']:.4f}"
            if "landscape_1d" in entry:
                line += f", 1-D sharpness {entry['landscape_1d']['sharpness']:.4f}"
            if entry.get("no_landscape"):
                line += f" (no landscape: {entry['no_landscape']})"
            typer.echo(line)
        typer.echo(f"results -> {folder / 'analysis.json'}, " + ", ".join(str(p) for p in written), err=True)
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)
    finally:
        if make_bar is not None:
            make_bar.bar.stop()
