"""`fdvad distill RECIPE.yaml`: Feature Distillation of a fresh student from a trained teacher, with Lightning.

Writes to the run folder, besides the checkpoints and metrics.json of any training run:
  model.safetensors + .yaml   the student alone (no projector), ready for `fdvad finetune` (model.init)
  projector.safetensors       the 1x1-conv projector, saved apart (its parameter count is in model.yaml)

`distill.teacher: silero` takes the packaged Silero VAD v6 (`models.silero`) as the teacher: it reads the
waveform (the student reads log-mel), its 32 ms frames are aligned in time to the student's 10 ms frames
(`fd.FrameGrid`), and its features come from whole items (`teacher_cache`), as on the full file.
`distill.target: probabilities` is classical distillation instead: the student's windows learn Silero's speech
probabilities (read at each 10 ms frame) with the training objective of `fdvad train`, in place of labels.
"""

from __future__ import annotations

import copy

import torch

from ..data.corpora import LabelledAudio
from ..errors import ConfigError
from ..features import FeatureConfig, FeatureExtractor
from ..fileio import atomic_write
from ..models import create_model
from ..models.checkpoint import load_model_file, save_checkpoint
from ..train.recipe import Recipe
from ..train.run import DEFAULT_POSTPROCESS, fit, make_loaders, prepare_run


SILERO = "silero"


def build_distiller(recipe: Recipe):
    """(distiller, features, teacher config) from the recipe: a fresh model.name student with the recipe's drop path."""
    from .fd import FeatureDistiller, FrameGrid

    ds = recipe.distill
    if not ds.teacher:
        raise ConfigError("distill.teacher: give the trained teacher (an fdvad .safetensors, a NeMo .nemo or silero)")
    if recipe.model.init:
        raise ConfigError("model.init: a distillation student starts fresh; leave model.init empty "
                          "(the teacher is distill.teacher)")
    student = create_model(recipe.model.name, **{**recipe.model.overrides, "drop_path_rate": ds.student_drop_path})
    if ds.teacher == SILERO:
        from ..models.silero import CHUNK, SAMPLE_RATE, load_silero_v6

        if recipe.data.labels != "frame":
            raise ConfigError("a Silero teacher distils on crops: data.labels must be frame")
        if ds.teacher_layer or ds.teacher_norm:
            raise ConfigError("distill.teacher_layer / teacher_norm: a Silero teacher's map is its LSTM output "
                              "(forward_features); leave them empty")
        if not hasattr(student, "frame_logits"):
            raise ConfigError(f"a Silero teacher needs a student with 10 ms frame outputs (MarbleNet), not "
                              f"{recipe.model.name}")
        teacher, teacher_config = load_silero_v6(), {}
        features = FeatureExtractor(FeatureConfig())
        hop_s = features.config.hop_length / features.config.sample_rate
        chunk_s = CHUNK / SAMPLE_RATE
        # teacher frame k covers samples [512k, 512k + 512): its centre; student frame j is centred on sample 160j
        grids = {"teacher_frames": FrameGrid(chunk_s, chunk_s / 2), "student_frames": FrameGrid(hop_s, 0.0)}
        example = torch.zeros(2, features.config.num_features, 321)
        distiller = FeatureDistiller(teacher, student, example_input=example,
                                     example_teacher_input=torch.zeros(2, 3200 * 16), student_layer=ds.student_layer,
                                     whiten=ds.whiten, projector=ds.projector, beta=ds.beta, pool=ds.pool, **grids)
        if ds.student_layer:  # the time alignment assumes the student's map is on its 10 ms feature frames
            with torch.no_grad():
                shape = tuple(distiller.student_tap.read(student, (example,)).shape)
            if len(shape) != 3 or shape[2] != example.shape[2]:
                raise ConfigError(f"distill.student_layer={ds.student_layer}: its map is {shape} for "
                                  f"{example.shape[2]} feature frames; a Silero teacher is aligned by time, so the "
                                  "layer must keep one step per 10 ms frame, as (batch, channels, frames)")
        return distiller, features, teacher_config
    teacher, teacher_config = load_model_file(ds.teacher, "distill.teacher")
    feature_config = FeatureConfig.from_dict(teacher_config.get("features") or {})
    features = FeatureExtractor(feature_config)
    example = torch.zeros(2, feature_config.num_features, 64)  # one window: every model takes it
    distiller = FeatureDistiller(teacher, student, example_input=example, teacher_layer=ds.teacher_layer,
                                 student_layer=ds.student_layer, teacher_norm=ds.teacher_norm, whiten=ds.whiten,
                                 projector=ds.projector, beta=ds.beta, pool=ds.pool)
    return distiller, features, teacher_config


def unlabelled_items(paths: list[str]) -> list[LabelledAudio]:
    """Audio files (and the audio files in folders, recursively) as items without speech labels."""
    from ..data.pseudo import audio_inputs

    try:
        files = audio_inputs(paths)
    except ConfigError as e:
        raise ConfigError(f"distill.unlabelled: {e}") from None
    return [LabelledAudio(str(f.resolve())) for f in files]


SILERO_FEATURES_VERSION = 1  # part of the cache key: raise it when what SileroV6.forward_features returns changes


def silero_store_factory(recipe: Recipe, teacher: torch.nn.Module):
    """sampler -> TeacherFeatureStore of the Silero teacher over that sampler's items."""
    from ..models.silero import CHUNK, packaged_jit_path
    from .teacher_cache import TeacherFeatureStore

    # the store computes maps in the data loader, on the CPU: its own copy of the teacher, not the distiller's,
    # which Lightning moves to the accelerator
    cpu_teacher = copy.deepcopy(teacher).cpu().eval()
    key = f"silero_v6:{_file_digest(packaged_jit_path())}:features-v{SILERO_FEATURES_VERSION}"

    def make(sampler):
        return TeacherFeatureStore(cpu_teacher, sampler, key=key, frame_samples=CHUNK, pad_s=recipe.data.crop_s,
                                   folder=recipe.distill.teacher_cache)
    return make


def _file_digest(path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def distill(recipe: Recipe, resume: bool = False, callbacks: list | None = None, progress: bool = True) -> dict:
    if recipe.data.extra_validation or recipe.train.select:
        raise ConfigError("data.extra_validation and train.select choose by speech labels: they are for fdvad "
                          "train / finetune, not distillation")
    extra = unlabelled_items(recipe.distill.unlabelled)  # a missing folder is reported before a corpus is made
    out = prepare_run(recipe, resume)
    from .module import DistillModule

    distiller, features, teacher_config = build_distiller(recipe)
    store = silero_store_factory(recipe, distiller.teacher) if recipe.distill.teacher == SILERO else None
    loader, val_loader, n_items = make_loaders(recipe, extra, teacher=store)
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
                             "note": ("feature-distilled student: its head is untrained; fine-tune it before use"
                                      if recipe.distill.target == "features" else
                                      "student trained on the teacher's speech probabilities (no labels)")},
            "scores": {"validation": history[-1] if history else None},
        }
        save_checkpoint(model_path, distiller.student.cpu().eval(), config)
        tensors = {k: v.detach().contiguous().cpu() for k, v in distiller.projector.state_dict().items()}
        if tensors:
            atomic_write(out / "projector.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    return {"model": str(model_path), "metrics": history, "steps": trainer.global_step}
