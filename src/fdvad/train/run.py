"""`fdvad train`: build data, model and Lightning Trainer from a recipe, train, and export the result.

The run folder (`recipe.out`) holds:
  recipe.yaml                 the recipe as run (with overrides applied)
  checkpoints/last.ckpt       Lightning's training state (weights, optimiser, schedule, loop counters): --resume
  model.safetensors + .yaml   the trained model in fdvad's checkpoint format (what load_vad and eval read)
  metrics.json                validation AUROC / F1 after every validation round
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..data.corpora import LabelledAudio, WindowDataset, frame_labels, read_corpus
from ..errors import CheckpointError, ConfigError
from ..features import FeatureConfig, FeatureExtractor
from ..fileio import atomic_write, atomic_write_text
from ..models import create_model
from ..models.checkpoint import load_model_file, save_checkpoint
from .augment import Augmenter, noise_files
from .crops import CropDataset, CropSampler
from .recipe import Recipe

# 16 frames of 10 ms = 2,560 samples = 5 chunks of 512 samples: where both a Silero teacher's 32 ms grid and
# the student's 10 ms grid start a frame
TEACHER_GRID_FRAMES = 16

DEFAULT_POSTPROCESS = {"onset": 0.5, "offset": 0.35, "pad_onset": 0.03, "pad_offset": 0.03,
                       "min_duration_on": 0.1, "min_duration_off": 0.25, "filter_speech_first": True}


def _corpus(path: str, split: str) -> list[LabelledAudio]:
    """A corpus path; a `fdvad data synth` folder means its `split` subfolder."""
    p = Path(path)
    if p.is_dir() and (p / split / "manifest.json").is_file():
        p = p / split / "manifest.json"
    items = read_corpus(p)
    if not items:
        raise ConfigError(f"{path} has no items")
    return items


def build_model(recipe: Recipe) -> tuple[torch.nn.Module, dict]:
    """The recipe's model, with its init weights if it names some; (model, config of the init checkpoint)."""
    m = recipe.model
    model = create_model(m.name, **m.overrides)
    if not m.init:
        return model, {}
    path = Path(m.init)
    source, config = load_model_file(path, "model.init")
    ours, theirs = model.state_dict(), source.state_dict()
    adapt = getattr(model, "adapt_state_dict", None)
    if callable(adapt):  # e.g. a distilled transformer's shared position bias into per-block tables
        theirs = adapt(theirs)
    mismatched = [k for k in ours if k not in theirs or theirs[k].shape != ours[k].shape]
    extra = [k for k in theirs if k not in ours]
    if mismatched or extra:
        arch = (config.get("model") or {}).get("config") or {}
        theirs_name = (f"; it holds MarbleNet-{arch['num_blocks']}x{arch['repeats']}x{arch['channels']}"
                       if {"num_blocks", "repeats", "channels"} <= set(arch) else "")
        raise CheckpointError(
            f"model.init: {path} holds another architecture than {m.name} "
            f"({len(mismatched)} tensors missing or of other shapes, e.g. {(mismatched or extra)[0]!r}{theirs_name})")
    model.load_state_dict(theirs)
    return model, config


class _WholeItems(torch.utils.data.Dataset):
    """Validation items whole: (audio, 10 ms frame labels)."""

    def __init__(self, items: list[LabelledAudio]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        from ..eval.evaluate import load_item_audio

        audio = load_item_audio(self.items[i])
        labels = frame_labels(self.items[i], 0.01, len(audio) / 16000).astype(np.float32)
        return torch.from_numpy(audio), torch.from_numpy(labels)


class _AugmentedWindows(torch.utils.data.Dataset):
    def __init__(self, windows: WindowDataset, augment: Augmenter, seed: int):
        self.windows, self.augment, self.seed, self.epoch = windows, augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i):
        audio, label = self.windows[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return torch.from_numpy(self.augment(audio.numpy(), rng)), label


def _world_size(recipe: Recipe) -> int:
    devices = recipe.train.devices
    n = devices if isinstance(devices, int) and devices > 0 else 1
    return n * recipe.train.num_nodes


def _lightning():
    try:
        import lightning as L
    except ImportError:
        raise ConfigError("training needs Lightning: pip install 'fdvad[train]'") from None
    return L


def prepare_run(recipe: Recipe, resume: bool) -> Path:
    """Check the run folder, set threads, quiet Lightning, make the recipe's corpus, seed everything."""
    L = _lightning()
    out = Path(recipe.out)
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume: there is no {last} to resume from")
    if not resume and (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it, or choose another out= folder")
    if not out.parent.is_dir():
        raise ConfigError(f"the parent folder of the run folder ({out.parent}) does not exist")
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    _quiet_lightning()
    if recipe.corpus.out:
        from ..data.synth import DEFAULT_EFFECTS, SynthConfig, synthesize_corpus

        c = recipe.corpus
        config = SynthConfig(effects={**DEFAULT_EFFECTS, **c.effects},
                             engines=tuple(c.engines) if c.engines else None,
                             noise_kinds=tuple(c.noise_kinds) if c.noise_kinds else None)
        synthesize_corpus(c.out, hours=c.hours, items=c.items, seed=c.seed, jobs=c.jobs, config=config)
    L.seed_everything(recipe.train.seed, workers=True, verbose=False)
    return out


def make_loaders(recipe: Recipe, extra_items: list[LabelledAudio] = (), teacher=None):
    """(train loader, validation loader or None, number of training items). `extra_items` join the training
    crops (unlabelled audio for distillation); `teacher(sampler)` makes the store of a streaming
    teacher's whole-item features (`distill.teacher_cache.TeacherFeatureStore`) that each crop is given."""
    t, d = recipe.train, recipe.data
    augment = Augmenter(noise=noise_files(d.noise) if d.noise else None, noise_prob=d.noise_prob,
                        snr_db=tuple(d.snr_db), gain_prob=d.gain_prob, gain_db=tuple(d.gain_db),
                        white_noise_prob=d.white_noise_prob, white_noise_db=tuple(d.white_noise_db))
    train_items = _corpus(d.train, "train") + list(extra_items)
    if d.labels == "frame":
        per_epoch = t.val_every * t.batch_size * _world_size(recipe)
        if teacher is None:
            train_set = CropDataset(CropSampler(train_items, crop_s=d.crop_s), per_epoch, seed=t.seed,
                                    augment=augment, max_shift=int(round(d.time_shift_s * 16000)))
        else:  # crops on the teacher's frame grid, unshifted, each with its slice of the teacher's map
            sampler = CropSampler(train_items, crop_s=d.crop_s, start_grid=TEACHER_GRID_FRAMES)
            if sampler.crop_frames % TEACHER_GRID_FRAMES:
                raise ConfigError(f"data.crop_s must be a multiple of {TEACHER_GRID_FRAMES / 100:.2f} s with a Silero "
                                  f"teacher (whole 32 ms teacher frames), got {d.crop_s}")
            train_set = CropDataset(sampler, per_epoch, seed=t.seed, augment=augment, teacher=teacher(sampler))
    else:
        train_set = _AugmentedWindows(WindowDataset(train_items, label_rule=d.window_label_rule), augment, t.seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=t.batch_size, shuffle=d.labels == "segment",
                                         num_workers=d.num_workers, drop_last=True, persistent_workers=False)
    val_sets = []
    if d.validation:
        val_sets.append(_corpus(d.validation, "validation")[: d.max_validation_items or None])
    val_sets += [_corpus(path, "validation") for path in d.extra_validation.values()]
    val_loaders = [torch.utils.data.DataLoader(_WholeItems(items), batch_size=1, num_workers=d.num_workers)
                   for items in val_sets]
    # one set: its loader (what a distillation module validates on); more: the list, in the module's order
    val_loader = (val_loaders[0] if len(val_loaders) == 1 else val_loaders) if val_loaders else None
    return loader, val_loader, len(train_items)


class BestWeights:
    """train.select: after every validation round, the model's weights are kept in OUT/best.safetensors when
    the metric is the highest so far, with that round's metrics row in the file's metadata (so a resumed run
    knows what it holds, whatever happened between the writes)."""

    def __init__(self, out: Path, metric: str, resume: bool):
        self.path, self.metric, self.best = out / "best.safetensors", metric, None
        if resume and self.path.is_file():
            from safetensors import safe_open

            with safe_open(str(self.path), "pt") as f:
                row = json.loads((f.metadata() or {}).get("row", "null"))
            self.best = row if isinstance(row, dict) and metric in row else None  # kept for another metric: start over

    def consider(self, row: dict, model: torch.nn.Module) -> None:
        if self.metric in row and (self.best is None or row[self.metric] > self.best[self.metric]):
            from safetensors.torch import save_file

            tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            atomic_write(self.path, lambda tmp: save_file(tensors, str(tmp), metadata={"row": json.dumps(row)}))
            self.best = row

    def restore(self, model: torch.nn.Module) -> dict | None:
        """Load the best round's weights into `model`; that round's metrics row (None: nothing kept)."""
        if self.best is None:
            return None
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(self.path)))
        return self.best


def fit(module, recipe: Recipe, out: Path, loader, val_loader, resume: bool, callbacks: list | None,
        progress: bool, find_unused_parameters: bool = False, best: BestWeights | None = None):
    """Run Lightning's fit with checkpoints after every validation round; returns (trainer, history).
    `best` (train.select) is shown every round's metrics and the model."""
    L = _lightning()
    from lightning.pytorch.callbacks import ModelCheckpoint

    t, d = recipe.train, recipe.data
    out.mkdir(exist_ok=True)
    atomic_write_text(out / "recipe.yaml", _yaml(recipe.to_dict()))
    history: list[dict] = []
    if resume and (out / "metrics.json").is_file():
        history.extend(json.loads((out / "metrics.json").read_text()))

    class _History(L.Callback):
        def on_validation_end(self, trainer, pl_module):
            if trainer.sanity_checking:
                return
            row = {"step": trainer.global_step, **{k: round(float(v), 5) for k, v in trainer.callback_metrics.items()
                                                     if k.startswith("val_")}}
            history.append(row)
            if trainer.is_global_zero:
                if best is not None:
                    best.consider(row, pl_module.model)
                atomic_write_text(out / "metrics.json", json.dumps(history, indent=1) + "\n")
                # one line per round also where no progress bar shows (logs of batch jobs)
                print(f"step {row['step']}/{t.steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                                    if k != "step"), file=sys.stderr, flush=True)

    # one "epoch" is val_every steps; the checkpoint follows its validation, so a resumed run never skips one
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", filename="{step}", save_last="link", save_top_k=1,
                                 every_n_epochs=1, save_on_train_epoch_end=val_loader is None)
    strategy = t.strategy
    if find_unused_parameters and strategy == "ddp":
        strategy = "ddp_find_unused_parameters_true"
    trainer = L.Trainer(
        max_steps=t.steps, limit_train_batches=t.val_every if d.labels == "segment" else None,
        check_val_every_n_epoch=1, num_sanity_val_steps=0,
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=t.precision, gradient_clip_val=t.grad_clip or None,
        callbacks=[checkpoint, _History(), *(callbacks or [])],
        logger=False, enable_progress_bar=progress, enable_model_summary=False, default_root_dir=str(out),
        limit_val_batches=1.0 if val_loader is not None else 0)
    last = out / "checkpoints" / "last.ckpt"
    if resume:
        _check_resumable(module, last)
    trainer.fit(module, loader, val_loader, ckpt_path=str(last) if resume else None, weights_only=True)
    return trainer, history


def _check_resumable(module, last: Path) -> None:
    """One clear line, before Lightning starts, when the saved training state does not fit this recipe's module
    (another architecture, other parameter groups: a recipe changed between the runs)."""
    try:
        state = torch.load(last, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is the user's file, not our bug
        raise CheckpointError(f"--resume: cannot read {last} ({str(e).splitlines()[0][:200]})") from None
    saved = set(state.get("state_dict", {}))
    wanted = set(module.state_dict())
    if saved != wanted:
        differ = sorted(saved ^ wanted)
        raise CheckpointError(f"--resume: {last} holds another model than this recipe builds ({len(differ)} "
                              f"tensors differ, e.g. {differ[0]!r}); resume with the recipe it was started with")
    groups = len(module.configure_optimizers()["optimizer"].param_groups)
    saved_groups = [len(o.get("param_groups", [])) for o in state.get("optimizer_states", [])]
    if saved_groups and saved_groups[0] != groups:
        raise CheckpointError(f"--resume: {last} was saved with {saved_groups[0]} optimiser parameter groups, this "
                              f"recipe makes {groups} (layer decay or weight decay changed?); resume with the recipe "
                              "it was started with")


def train(recipe: Recipe, resume: bool = False, callbacks: list | None = None, progress: bool = True) -> dict:
    """Train as the recipe says; returns {"model": path, "metrics": [...], "steps": n}."""
    out = prepare_run(recipe, resume)
    from .module import VADTrainingModule

    model, init_config = build_model(recipe)
    feature_config = FeatureConfig.from_dict(init_config["features"]) if init_config.get("features") else FeatureConfig()
    features = FeatureExtractor(feature_config)
    loader, val_loader, n_items = make_loaders(recipe)
    module = VADTrainingModule(model, features, recipe)
    best = BestWeights(out, recipe.train.select, resume) if recipe.train.select else None
    trainer, history = fit(module, recipe, out, loader, val_loader, resume, callbacks, progress, best=best)
    model_path = out / "model.safetensors"
    if trainer.is_global_zero:
        scores = history[-1] if history else None
        training = {"recipe": recipe.to_dict(), "steps": trainer.global_step, "train_items": n_items}
        if best is not None:
            chosen = best.restore(model)
            if chosen is not None:
                scores = chosen
                training["selected"] = {"metric": best.metric, "step": chosen["step"], "value": chosen[best.metric]}
        config = {
            "features": features.config.to_dict(),
            "window": {"window_s": 0.63, "shift_s": 0.08},
            "postprocess": dict(init_config.get("postprocess") or DEFAULT_POSTPROCESS),
            "training": training,
            "scores": {"validation": scores},
        }
        save_checkpoint(model_path, model.cpu().eval(), config)
    return {"model": str(model_path), "metrics": history, "steps": trainer.global_step}


def _quiet_lightning() -> None:
    """Lightning's start-up notes (no GPU, tips) are noise on a CPU run; its warnings and errors stay."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # FD's teacher, on purpose


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
