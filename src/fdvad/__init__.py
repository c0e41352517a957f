"""fdvad: voice activity detection improved by Feature Distillation."""

__version__ = "0.1.0"
