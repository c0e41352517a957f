"""VAD checkpoints: `NAME.safetensors` (weights) beside `NAME.yaml` (architecture, features, window,
post-processing defaults). Loading never executes code from the file."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..fileio import atomic_write, atomic_write_text
from .marblenet import MarbleNet, MarbleNetConfig
from .transformer import AudioTransformer, AudioTransformerConfig

FORMAT = "fdvad-vad-1"
# config "model.arch" -> (model class, its config dataclass)
ARCHITECTURES = {"marblenet": (MarbleNet, MarbleNetConfig),
                 "audio_transformer": (AudioTransformer, AudioTransformerConfig)}


def config_path_for(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".yaml")


def save_checkpoint(weights_path: str | os.PathLike, model: torch.nn.Module, config: dict) -> None:
    """Write weights and config atomically. `config` holds 'features', 'window', 'postprocess' and any notes;
    the model's own architecture is added under 'model'."""
    weights_path = Path(weights_path)
    arch = getattr(model, "arch", "marblenet")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"cannot save a {type(model).__name__}: fdvad checkpoints hold {sorted(ARCHITECTURES)}")
    full = {"format": FORMAT, "model": {"arch": arch, "config": model.config.to_dict()}, **config}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(weights_path, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_text(config_path_for(weights_path), yaml.safe_dump(full, sort_keys=False))


def read_config(weights_path: str | os.PathLike) -> dict:
    cfg_path = config_path_for(weights_path)
    if not cfg_path.is_file():
        raise CheckpointError(f"{weights_path}: its config {cfg_path.name} is missing beside it")
    try:
        config = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not an fdvad VAD config (expected format: {FORMAT})")
    return config


def load_checkpoint(weights_path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, config dict) from an fdvad checkpoint."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f"model file not found: {weights_path}")
    config = read_config(weights_path)
    model_cfg = config.get("model", {})
    if model_cfg.get("arch") not in ARCHITECTURES:
        raise CheckpointError(f"{weights_path}: unsupported architecture {model_cfg.get('arch')!r} "
                              f"(known: {', '.join(sorted(ARCHITECTURES))})")
    model_class, config_class = ARCHITECTURES[model_cfg["arch"]]
    model = model_class(config_class.from_dict(model_cfg.get("config", {})))
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights_path}: cannot read weights ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise CheckpointError(f"{weights_path}: weights do not fit the configured model ({first})") from None
    return model.eval(), config


def load_model_file(path: str | os.PathLike, what: str = "model") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, config) from an fdvad `.safetensors` checkpoint or a NeMo `.nemo` file; `what`
    names the file in error messages (e.g. "distill.teacher")."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: file not found: {path} (give a .safetensors or a .nemo file)")
    if path.suffix == ".nemo":
        from .nemo import load_nemo

        return load_nemo(path)
    if path.suffix == ".safetensors":
        return load_checkpoint(path)
    raise CheckpointError(f"{what}: {path} is neither an fdvad .safetensors nor a NeMo .nemo file")
