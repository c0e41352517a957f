"""`fdvad distill RECIPE.yaml` and `fdvad finetune RECIPE.yaml`."""

from __future__ import annotations

from typing import List, Optional

import typer

from ..errors import ConfigError, FdvadError
from ..train.commands import recipe_from_args, report


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
        report(distill(recipe_from_args(recipe, overrides), resume=resume, progress=not no_progress))
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
        loaded = recipe_from_args(recipe, overrides)
        if not loaded.model.init:
            raise ConfigError("model.init: fine-tuning starts from a model; give its .safetensors or .nemo")
        report(train(loaded, resume=resume, progress=not no_progress))
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)
