"""Named model builders: `create_model("marblenet_3x2x64", drop_path_rate=0.1)`."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import ConfigError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _BUILDERS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _BUILDERS[name](**kwargs)
