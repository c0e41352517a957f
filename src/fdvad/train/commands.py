"""`fdvad train RECIPE.yaml [SECTION.KEY=VALUE ...] [--resume]`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import FdvadError


def train_command(
    recipe: Optional[str] = typer.Argument(None, metavar="RECIPE.yaml",
                                           help="The training recipe (see recipes/*.yaml and docs/training.md)."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...",
                                                    help="Change recipe values, e.g. train.steps=200 optim.lr=0.005."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in the recipe's out folder."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Train a VAD model from scratch or from a checkpoint (.safetensors or .nemo), on one CPU or many GPUs."""
    from .recipe import load_recipe
    from .run import train

    try:
        overrides = list(overrides or [])
        if recipe is not None and "=" in recipe and not Path(recipe).exists():  # only overrides, no recipe file
            recipe, overrides = None, [recipe, *overrides]
        loaded = load_recipe(recipe, overrides)
        result = train(loaded, resume=resume, progress=not no_progress)
        last = result["metrics"][-1] if result["metrics"] else {}
        scores = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step")
        typer.echo(f"trained {result['steps']} steps -> {result['model']}" + (f" ({scores})" if scores else ""))
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)
