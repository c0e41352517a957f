"""`fdvad train RECIPE.yaml [SECTION.KEY=VALUE ...] [--resume]`, and the recipe handling the distillation
commands share."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import FdvadError


def recipe_from_args(recipe: Optional[str], overrides: Optional[List[str]]):
    """The recipe file (optional: a first argument with '=' that is not a file is an override) plus overrides."""
    from .recipe import load_recipe

    overrides = list(overrides or [])
    if recipe is not None and "=" in recipe and not Path(recipe).exists():
        recipe, overrides = None, [recipe, *overrides]
    return load_recipe(recipe, overrides)


def report(result: dict) -> None:
    last = result["metrics"][-1] if result["metrics"] else {}
    scores = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step")
    typer.echo(f"trained {result['steps']} steps -> {result['model']}" + (f" ({scores})" if scores else ""))


def train_command(
    recipe: Optional[str] = typer.Argument(None, metavar="RECIPE.yaml",
                                           help="The training recipe (see recipes/*.yaml and docs/training.md)."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...",
                                                    help="Change recipe values, e.g. train.steps=200 optim.lr=0.005."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in the recipe's out folder."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Train a VAD model from scratch or from a checkpoint (.safetensors or .nemo), on one CPU or many GPUs."""
    from .run import train

    try:
        report(train(recipe_from_args(recipe, overrides), resume=resume, progress=not no_progress))
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)
