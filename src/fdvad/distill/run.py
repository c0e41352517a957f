"""`fdvad distill RECIPE.yaml`: Feature Distillation of a fresh student from a trained teacher, with Lightning.

Writes to the run folder, besides the checkpoints and metrics.json of any training run:
  model.safetensors + .yaml   the student alone (no projector), ready for `fdvad finetune` (model.init)
  projector.safetensors       the 1x1-conv projector, saved apart (its parameter count is in model.yaml)
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..features import FeatureConfig, FeatureExtractor
from ..fileio import atomic_write
from ..models import create_model
from ..models.checkpoint import load_model_file, save_checkpoint
from ..train.recipe import Recipe
from ..train.run import DEFAULT_POSTPROCESS, fit, make_loaders, prepare_run


def build_distiller(recipe: Recipe):
    """(distiller, features, teacher config) from the recipe: a fresh model.name student with the recipe's drop path."""
    from .fd import FeatureDistiller

    ds = recipe.distill
    if not ds.teacher:
        raise ConfigError("distill.teacher: give the trained teacher (an fdvad .safetensors or a NeMo .nemo)")
    if recipe.model.init:
        raise ConfigError("model.init: a distillation student starts fresh; leave model.init empty "
                          "(the teacher is distill.teacher)")
    teacher, teacher_config = load_model_file(ds.teacher, "distill.teacher")
    student = create_model(recipe.model.name, **{**recipe.model.overrides, "drop_path_rate": ds.student_drop_path})
    feature_config = FeatureConfig.from_dict(teacher_config.get("features") or {})
    features = FeatureExtractor(feature_config)
    example = torch.zeros(2, feature_config.num_features, 64)  # one window: every model takes it
    distiller = FeatureDistiller(teacher, student, example_input=example, teacher_layer=ds.teacher_layer,
                                 student_layer=ds.student_layer, teacher_norm=ds.teacher_norm, whiten=ds.whiten,
                                 projector=ds.projector, beta=ds.beta, pool=ds.pool)
    return distiller, features, teacher_config


def distill(recipe: Recipe, resume: bool = False, callbacks: list | None = None, progress: bool = True) -> dict:
    out = prepare_run(recipe, resume)
    from .module import DistillModule

    distiller, features, teacher_config = build_distiller(recipe)
    loader, val_loader, n_items = make_loaders(recipe)
    module = DistillModule(distiller, features, recipe)
    # the student's head takes no part in FD: DDP must be told some parameters get no gradient
    trainer, history = fit(module, recipe, out, loader, val_loader, resume, callbacks, progress,
                           find_unused_parameters=True)
    model_path = out / "model.safetensors"
    if trainer.is_global_zero:
        from safetensors.torch import save_file

        config = {
            "features": features.config.to_dict(),
            "window": teacher_config.get("window") or {"window_s": 0.63, "shift_s": 0.08},
            "postprocess": dict(teacher_config.get("postprocess") or DEFAULT_POSTPROCESS),
            "distillation": {"recipe": recipe.to_dict(), "steps": trainer.global_step, "train_items": n_items,
                             "projector_parameters": distiller.projector_parameters(),
                             "note": "feature-distilled student: its head is untrained; fine-tune it before use"},
            "scores": {"validation": history[-1] if history else None},
        }
        save_checkpoint(model_path, distiller.student.cpu().eval(), config)
        tensors = {k: v.detach().contiguous().cpu() for k, v in distiller.projector.state_dict().items()}
        if tensors:
            atomic_write(out / "projector.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    return {"model": str(model_path), "metrics": history, "steps": trainer.global_step}
