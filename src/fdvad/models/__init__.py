"""Models and their registry. Importing this package registers every named builder."""

from . import builders  # noqa: F401  (registers the builders)
from .marblenet import MarbleNet, MarbleNetConfig
from .registry import create_model, list_models, register_model
from .transformer import AudioTransformer, AudioTransformerConfig

__all__ = ["AudioTransformer", "AudioTransformerConfig", "MarbleNet", "MarbleNetConfig", "create_model",
           "list_models", "register_model"]
