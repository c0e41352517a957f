"""The Feature Distillation paper's analyses for ViT-like models: attention distance, head similarity, average
attention maps (attention.py) and filter-normalised loss landscapes (landscape.py); `fdvad analyze` (commands.py)
puts two models side by side."""

from .attention import (attention_distance, average_attention_map, capture_attention, head_similarity,
                        patch_attention)
from .landscape import filter_normalized_direction, landscape_1d, landscape_2d

__all__ = ["attention_distance", "average_attention_map", "capture_attention", "filter_normalized_direction",
           "head_similarity", "landscape_1d", "landscape_2d", "patch_attention"]
