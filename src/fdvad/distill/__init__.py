"""Feature Distillation (Wei et al. 2022): a fresh student learns a trained teacher's whitened feature map."""

from .fd import FeatureDistiller, smooth_l1, whiten

__all__ = ["FeatureDistiller", "smooth_l1", "whiten"]
