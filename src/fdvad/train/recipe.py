"""Training recipes: a small YAML file read into dataclasses, every key and type checked before training.

    fdvad train recipes/tiny.yaml train.steps=200 optim.lr=0.005

A recipe has six sections (all optional, defaults below) plus `out`, the run folder. Overrides are
`SECTION.KEY=VALUE` with VALUE parsed as YAML (numbers, true/false, null, [lists]).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError


@dataclass
class ModelSection:
    name: str = "marblenet_3x2x64"  # a registered model (fdvad.models.list_models())
    overrides: dict = field(default_factory=dict)  # architecture options, e.g. {drop_path: 0.1}
    init: str | None = None  # start from these weights: an fdvad .safetensors or a NeMo .nemo


@dataclass
class DataSection:
    train: str = ""  # a labelled corpus: NeMo manifest, RTTM folder, AVA CSV, LibriParty JSON or synth folder
    validation: str | None = None  # the same kinds; None: no validation
    labels: str = "frame"  # frame: crops with 10 ms labels; segment: 0.63 s windows, one label each
    window_label_rule: str = "centre"  # segment labels: centre or majority (corpora.WindowDataset)
    crop_s: float = 4.0  # frame training: crop length
    max_validation_items: int | None = None  # score at most this many validation items (None: all)
    # more validation sets, each scored every round as val_NAME_auroc / val_NAME_f1 (all its items), e.g.
    # {real: a manifest of real recordings} to watch (and with train.select, choose by) real speech
    extra_validation: dict = field(default_factory=dict)
    noise: str | None = None  # a folder of noise audio or a corpus whose audio is mixed in as background
    noise_prob: float = 0.0  # probability of mixing noise into a crop
    snr_db: list = field(default_factory=lambda: [0.0, 20.0])
    gain_prob: float = 0.0  # probability of a random gain
    gain_db: list = field(default_factory=lambda: [-10.0, 10.0])
    white_noise_prob: float = 1.0  # NeMo: white noise at -90..-46 dB on every example
    white_noise_db: list = field(default_factory=lambda: [-90.0, -46.0])
    time_shift_s: float = 0.005  # NeMo: audio shifted by up to +-5 ms against its labels
    freq_masks: int = 2  # SpecAugment (NeMo segment config: 2 x 15 bins, 2 x 25 frames)
    freq_width: int = 15
    time_masks: int = 2
    time_width: int = 25
    spec_augment_prob: float = 1.0
    num_workers: int = 0

    def validation_prefixes(self) -> list[str]:
        """The metric prefix of each validation set, in the order they are scored: "val_" for data.validation,
        then "val_NAME_" for each of data.extra_validation."""
        return (["val_"] if self.validation else []) + [f"val_{name}_" for name in self.extra_validation]


@dataclass
class OptimSection:
    name: str = "sgd"  # sgd (NeMo's recipe) or adamw
    lr: float = 0.01
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.001
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # adamw only
    schedule: str = "warmup_hold_poly"  # NeMo's PolynomialHoldDecayAnnealing, or cosine, or constant
    warmup_ratio: float = 0.05
    hold_ratio: float = 0.45
    min_lr: float = 0.001
    power: float = 2.0
    layer_decay: float = 1.0  # fine-tuning: lr x decay^(depth + 1 - i) for layer i, the head at x1 (1: off)


@dataclass
class DistillSection:
    """Feature Distillation (`fdvad distill`): a fresh model.name student learns the teacher's feature map."""

    teacher: str | None = None  # an fdvad .safetensors, a NeMo .nemo, or "silero" (the packaged Silero VAD v6)
    target: str = "features"  # features: FD; probabilities: classical distillation of a silero teacher's outputs
    teacher_cache: str | None = None  # silero: a folder keeping its whole-item feature maps between runs
    unlabelled: list = field(default_factory=list)  # more audio (files or folders) to distil on; labels unused
    teacher_layer: str | None = None  # dotted module path; null: forward_features
    student_layer: str | None = None
    teacher_norm: str | None = None  # the teacher's own final norm, applied to its map first
    whiten: bool = True  # LayerNorm without scale/bias over channels (ablation: false)
    projector: bool = True  # 1x1 conv student -> teacher channels (ablation: false)
    beta: float = 2.0  # smooth-L1 beta
    pool: bool = False  # match the time-averaged feature vector instead of the map (ablation)
    student_drop_path: float = 0.1  # stochastic depth of the student (the teacher's is 0)


@dataclass
class TrainSection:
    steps: int = 1000
    batch_size: int = 32
    val_every: int = 250  # validate (and checkpoint) every this many steps
    grad_clip: float = 1.0  # 0: off
    exact_loss_weight: float = 0.5  # frame training: weight of the isolated-window loss
    precision: str = "32-true"  # Lightning precision: 32-true, bf16-mixed, 16-mixed
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"  # auto, ddp, ddp_spawn, ...
    seed: int = 0
    threads: int | None = None  # torch CPU threads per process (None: torch's default)
    # export the weights of the validation round where this metric was highest (val_auroc, val_f1,
    # val_NAME_auroc, val_NAME_f1), not the last round's; None: the last round's
    select: str | None = None


@dataclass
class CorpusSection:
    """Make (or complete) a synthetic corpus with `fdvad data synth` before training; data.train and
    data.validation then default to its train and validation splits."""

    out: str | None = None  # None: no corpus is made
    hours: float | None = None
    items: int | None = None
    seed: int = 1
    jobs: int = 1
    engines: list | None = None  # TTS engines (default: every installed one)
    noise_kinds: list | None = None  # non-speech kinds (default: all five)
    effects: dict = field(default_factory=dict)  # channel-effect probabilities over synth's defaults


@dataclass
class Recipe:
    out: str = "runs/train"
    corpus: CorpusSection = field(default_factory=CorpusSection)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    distill: DistillSection = field(default_factory=DistillSection)

    def validate(self) -> Recipe:
        d, o, t, c = self.data, self.optim, self.train, self.corpus
        if c.out:
            if (c.hours is None) == (c.items is None):
                raise ConfigError("corpus: give either corpus.hours or corpus.items")
            if (c.hours is not None and not c.hours > 0) or (c.items is not None and not c.items > 0) or c.jobs < 1:
                raise ConfigError("corpus.hours / corpus.items / corpus.jobs must be > 0")
            d.train = d.train or c.out
            d.validation = d.validation or c.out
        if not d.train:
            raise ConfigError("data.train: give the training corpus (a manifest, an RTTM folder or a synth folder)")
        _choice("data.labels", d.labels, ("frame", "segment"))
        _choice("data.window_label_rule", d.window_label_rule, ("centre", "majority"))
        _choice("optim.name", o.name, ("sgd", "adamw"))
        _choice("optim.schedule", o.schedule, ("warmup_hold_poly", "cosine", "constant"))
        for name, value in (("data.noise_prob", d.noise_prob), ("data.gain_prob", d.gain_prob),
                            ("data.white_noise_prob", d.white_noise_prob),
                            ("data.spec_augment_prob", d.spec_augment_prob), ("optim.warmup_ratio", o.warmup_ratio),
                            ("optim.hold_ratio", o.hold_ratio)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be within 0..1, got {value}")
        if o.warmup_ratio + o.hold_ratio > 1.0:
            raise ConfigError("optim.warmup_ratio + optim.hold_ratio must be at most 1")
        for name, pair in (("data.snr_db", d.snr_db), ("data.gain_db", d.gain_db),
                           ("data.white_noise_db", d.white_noise_db), ("optim.betas", o.betas)):
            if len(pair) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair) \
                    or pair[0] > pair[1]:
                raise ConfigError(f"{name} must be [low, high] numbers with low <= high, got {pair}")
        for name, value in (("optim.lr", o.lr), ("data.crop_s", d.crop_s), ("train.steps", t.steps),
                            ("train.batch_size", t.batch_size), ("train.val_every", t.val_every),
                            ("train.num_nodes", t.num_nodes)):
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if d.noise_prob > 0 and not d.noise:
            raise ConfigError("data.noise_prob > 0 needs data.noise (a folder of noise audio or a corpus)")
        if not 0.0 < o.layer_decay <= 1.0:
            raise ConfigError(f"optim.layer_decay must be within (0, 1], got {o.layer_decay}")
        if not 0.0 <= self.distill.student_drop_path < 1.0:
            raise ConfigError(f"distill.student_drop_path must be within [0, 1), got {self.distill.student_drop_path}")
        _choice("distill.target", self.distill.target, ("features", "probabilities"))
        if self.distill.target == "probabilities" and self.distill.teacher != "silero":
            raise ConfigError("distill.target=probabilities distils a teacher's speech probabilities per frame: it "
                              "needs distill.teacher=silero")
        if self.distill.teacher == "silero" and round(d.crop_s * 100) % 16:  # checked before a corpus is made
            raise ConfigError(f"data.crop_s must be a multiple of 0.16 s with a Silero teacher (whole 32 ms teacher "
                              f"frames), got {d.crop_s}")
        if not all(isinstance(u, str) and u for u in self.distill.unlabelled):
            raise ConfigError(f"distill.unlabelled must be a list of audio files or folders, got {self.distill.unlabelled}")
        if not self.distill.beta > 0:
            raise ConfigError(f"distill.beta must be > 0, got {self.distill.beta}")
        for name, path in d.extra_validation.items():
            if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name)):
                raise ConfigError(f"data.extra_validation: a set's name is lower-case letters, digits and _, got {name!r}")
            if not (isinstance(path, str) and path):
                raise ConfigError(f"data.extra_validation.{name} must be a corpus path, got {path!r}")
        if t.select is not None:
            if not d.validation and not d.extra_validation:
                raise ConfigError("train.select chooses among validation rounds: it needs data.validation or "
                                  "data.extra_validation")
            known = [p + m for p in d.validation_prefixes() for m in ("auroc", "f1")]
            if t.select not in known:
                raise ConfigError(f"train.select must be one of {', '.join(known)}, not {t.select!r}")
        if o.min_lr > o.lr:
            raise ConfigError(f"optim.min_lr ({o.min_lr}) must not exceed optim.lr ({o.lr})")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _type_ok(value, annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (str, bool, list, dict):
        return isinstance(value, annotation)
    return True


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    return {type(None): "null", float: "number", int: "integer", str: "text", bool: "true/false",
            list: "list", dict: "mapping"}.get(annotation, str(annotation))


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the recipe'} must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise ConfigError(f"unknown recipe key {path!r}; known keys here: {', '.join(sorted(known))}")
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            values[key] = _build(annotation, value if value is not None else {}, path)
            continue
        if not _type_ok(value, annotation):
            raise ConfigError(f"recipe key {path!r} must be {_type_name(annotation)}, got {value!r}")
        values[key] = float(value) if annotation is float else value
    return cls(**values)


def parse_override(text: str) -> tuple[list[str], object]:
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"an override is SECTION.KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_recipe(path: str | Path | None, overrides: list[str] = ()) -> Recipe:
    """The recipe in `path` (None: all defaults) with `overrides` applied, checked; ConfigError names any bad key.
    Relative paths in a recipe file are relative to the current folder (where fdvad train runs)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a recipe is a mapping of sections (model, data, optim, train, out)")
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return _build(Recipe, data, "").validate()
