"""`fdvad distill RECIPE.yaml` and `fdvad finetune RECIPE.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError, FdvadError


def _recipe(recipe: Optional[str], overrides: Optional[List[str]]):
    from ..train.recipe import load_recipe

    overrides = list(overrides or [])
    if recipe is not None and "=" in recipe and not Path(recipe).exists():
        recipe, overrides = None, [recipe, *overrides]
    return load_recipe(recipe, overrides)


def _report(result: dict) -> None:
    last = result["metrics"][-1] if result["metrics"] else {}
    scores = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step")
    typer.echo(f"{result['steps']} steps -> {result['model']}" + (f" ({scores})" if scores else ""))


def distill_command(
    recipe: Optional[str] = typer.Argument(None, metavar="RECIPE.yaml", help="A recipe with a distill section."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...",
                                                    help="Change recipe values, e.g. distill.beta=1."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in the recipe's out folder."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Feature Distillation: a fresh student learns the teacher's whitened feature map on unlabelled audio."""
    from .run import distill

    try:
        _report(distill(_recipe(recipe, overrides), resume=resume, progress=not no_progress))
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)


def finetune_command(
    recipe: Optional[str] = typer.Argument(None, metavar="RECIPE.yaml", help="A training recipe with model.init."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="[SECTION.KEY=VALUE]...",
                                                    help="Change recipe values, e.g. optim.layer_decay=0.75."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in the recipe's out folder."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Fine-tune a trained or distilled model (model.init) with labels, layer-wise lr decay and drop path."""
    from ..train.run import train

    try:
        loaded = _recipe(recipe, overrides)
        if not loaded.model.init:
            raise ConfigError("model.init: fine-tuning starts from a model; give its .safetensors or .nemo")
        _report(train(loaded, resume=resume, progress=not no_progress))
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)
