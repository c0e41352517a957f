"""The named architectures. Each builder takes the keyword overrides of its model's config dataclass
(MarbleNetConfig, AudioTransformerConfig)."""

from __future__ import annotations

from .marblenet import MarbleNet, MarbleNetConfig
from .registry import register_model
from .transformer import AudioTransformer, AudioTransformerConfig


def _marblenet(num_blocks: int, repeats: int, channels: int, **overrides) -> MarbleNet:
    # NeMo's kernels for B = 3 are 13, 15, 17: every block widens the kernel by 2.
    kernels = tuple(11 + 2 * (i + 1) for i in range(num_blocks))
    config = MarbleNetConfig(num_blocks=num_blocks, repeats=repeats, channels=channels, block_kernels=kernels)
    return MarbleNet(config, **overrides)


@register_model
def marblenet_3x2x64(**overrides) -> MarbleNet:
    """NeMo's default VAD: about 89-91 k parameters."""
    return _marblenet(3, 2, 64, **overrides)


@register_model
def marblenet_3x1x64(**overrides) -> MarbleNet:
    return _marblenet(3, 1, 64, **overrides)


@register_model
def marblenet_3x2x32(**overrides) -> MarbleNet:
    return _marblenet(3, 2, 32, **overrides)


@register_model
def marblenet_5x2x64(**overrides) -> MarbleNet:
    return _marblenet(5, 2, 64, **overrides)


@register_model
def vit_vad_tiny(**overrides) -> AudioTransformer:
    """Audio transformer VAD, 96 wide, 4 blocks of 4 heads, 30 ms tokens: about 0.47 M parameters."""
    return AudioTransformer(AudioTransformerConfig(dim=96, depth=4, num_heads=4), **overrides)


@register_model
def vit_vad_small(**overrides) -> AudioTransformer:
    """Audio transformer VAD, 192 wide, 6 blocks of 6 heads, 30 ms tokens: about 2.7 M parameters."""
    return AudioTransformer(AudioTransformerConfig(dim=192, depth=6, num_heads=6), **overrides)
