"""MarbleNet-BxRxC (Jia et al. 2021, as in NVIDIA NeMo): a 1-D time-channel separable CNN that classifies
a 0.63 s window of features as speech / non-speech.

Layout of MarbleNet-3x2x64 (NeMo's marblenet_3x2x64.yaml):
  prologue  128 ch, k 11                         (separable, no residual; stride 2 in NeMo's 20 ms frame-VAD config)
  3 blocks  64 ch, 2 repeats, k 13 / 15 / 17     (separable, residual 1x1 conv + BN)
  epilogue  128 ch, k 29, dilation 2             (separable)
  final     128 ch, k 1                          (plain 1x1 conv)
  head      average pool over time -> Linear(128, 2)
Every conv has no bias and is followed by BatchNorm(eps 1e-3); ReLU between repeats and after each block.

`forward_features` returns the encoder output (B, C, T): the feature map Feature Distillation regresses.
`forward_head` pools it and classifies; `frame_logits` classifies every time step (frame VAD).
Drop path (stochastic depth) drops the convolutional branch of residual blocks, with a rate growing
linearly over depth.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


@dataclass
class MarbleNetConfig:
    in_features: int = 80
    num_classes: int = 2
    num_blocks: int = 3  # B
    repeats: int = 2  # R
    channels: int = 64  # C
    block_kernels: tuple[int, ...] = (13, 15, 17)
    prologue_channels: int = 128
    prologue_kernel: int = 11
    prologue_stride: int = 1  # 2 halves the frame rate (NeMo's 20 ms frame-VAD MarbleNet)
    epilogue_channels: int = 128
    epilogue_kernel: int = 29
    epilogue_dilation: int = 2
    final_channels: int = 128
    bn_eps: float = 1e-3
    drop_path_rate: float = 0.0
    extra: dict = field(default_factory=dict)  # free-form notes, ignored by the model

    def validate(self) -> None:
        if len(self.block_kernels) != self.num_blocks:
            raise ConfigError(f"block_kernels needs {self.num_blocks} entries, got {list(self.block_kernels)}")
        if any(k % 2 == 0 for k in (*self.block_kernels, self.prologue_kernel, self.epilogue_kernel)):
            raise ConfigError("MarbleNet kernel sizes must be odd so that 'same' padding keeps the length")
        if not 1 <= self.prologue_stride <= self.prologue_kernel:
            raise ConfigError(f"prologue_stride must be between 1 and the prologue kernel, got {self.prologue_stride}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ConfigError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_kernels"] = list(self.block_kernels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MarbleNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown MarbleNet settings {sorted(unknown)}; valid: {sorted(known)}")
        d = dict(d)
        if "block_kernels" in d:
            d["block_kernels"] = tuple(d["block_kernels"])
        cfg = cls(**d)
        cfg.validate()
        return cfg


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero the whole branch for a random subset of the batch, rescale the rest."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def _mask_time(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    # NeMo's MaskedConv1d zeroes the steps past each item's length before every convolution.
    if lengths is None:
        return x
    valid = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
    return x * valid.unsqueeze(1).to(x.dtype)


def conv_lengths(conv: nn.Conv1d, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """Valid steps after `conv`, as NeMo's MaskedConv1d counts them."""
    if lengths is None or conv.stride[0] == 1:
        return lengths  # "same" padding keeps the length
    pad, dil, k, s = conv.padding[0], conv.dilation[0], conv.kernel_size[0], conv.stride[0]
    return torch.div(lengths + 2 * pad - dil * (k - 1) - 1, s, rounding_mode="floor") + 1


class ConvBN(nn.Module):
    """[depthwise conv k ->] pointwise 1x1 conv -> BatchNorm. Without `separable`, one plain conv k -> BN.
    A stride applies to the conv with kernel k (the depthwise one when separable), as in NeMo."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dilation: int = 1, separable: bool = True,
                 bn_eps: float = 1e-3, stride: int = 1):
        super().__init__()
        if stride > 1 and dilation > 1:
            raise ConfigError("a conv may have a stride or a dilation above 1, not both (as in NeMo)")
        pad = dilation * (kernel - 1) // 2
        if separable:
            self.depthwise = nn.Conv1d(in_ch, in_ch, kernel, stride=stride, padding=pad, dilation=dilation,
                                       groups=in_ch, bias=False)
            self.pointwise = nn.Conv1d(in_ch, out_ch, 1, bias=False)
        else:
            self.depthwise = None
            self.pointwise = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=pad, dilation=dilation,
                                       bias=False)
        self.bn = nn.BatchNorm1d(out_ch, eps=bn_eps, momentum=0.1)

    def output_lengths(self, lengths: torch.Tensor | None) -> torch.Tensor | None:
        return conv_lengths(self.depthwise if self.depthwise is not None else self.pointwise, lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.depthwise is not None:
            x = self.depthwise(_mask_time(x, lengths))
            lengths = conv_lengths(self.depthwise, lengths)
        return self.bn(self.pointwise(_mask_time(x, lengths)))

    @torch.no_grad()
    def fuse_batchnorm_(self) -> None:
        """Fold the (eval-mode) BatchNorm into the pointwise conv as a scale and a bias. Outputs stay the same
        up to rounding, masked steps included (BN of 0 is exactly the new bias); about 15% less inference time."""
        if isinstance(self.bn, nn.Identity):
            return
        conv, bn = self.pointwise, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                          padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True)
        fused.weight.copy_(conv.weight * scale[:, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        self.pointwise, self.bn = fused, nn.Identity()


class ChannelsLastConv(nn.Module):
    """Inference stand-in for a bias-free or biased Conv1d that keeps activations time-major in memory
    ((B, C, T) views of (B, T, C) storage). On CPU, oneDNN runs depthwise convs ~10x faster in that layout,
    and a 1x1 conv becomes a plain matrix product, so the whole encoder runs without layout copies."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        self.pointwise = conv.kernel_size[0] == 1 and conv.stride[0] == 1 and conv.groups == 1
        w = conv.weight.detach()
        if not self.pointwise and conv.dilation[0] > 1:
            # oneDNN is ~100x slower on dilated convs in this layout: spread the taps into a dense kernel with
            # zeros between them (same output, a few ms instead of hundreds)
            d = conv.dilation[0]
            dense = w.new_zeros(w.shape[0], w.shape[1], d * (w.shape[2] - 1) + 1)
            dense[..., ::d] = w
            w = dense
        self.register_buffer("weight", w[:, :, 0].clone() if self.pointwise
                             else w.unsqueeze(2).contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        # 1-D geometry, as conv_lengths() reads it from a Conv1d
        self.kernel_size, self.stride, self.padding, self.dilation = (conv.kernel_size, conv.stride, conv.padding,
                                                                      conv.dilation)
        self.groups = conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pointwise:
            return F.linear(x.transpose(1, 2), self.weight, self.bias).transpose(1, 2)
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return F.conv2d(x4, self.weight, self.bias, (1, self.stride[0]), (0, self.padding[0]), 1,
                        self.groups).squeeze(2)


class Block(nn.Module):
    """`repeats` ConvBN layers with ReLU between them; optional residual (1x1 conv + BN) added before the
    final ReLU. Drop path applies to the convolutional branch of residual blocks only. A stride (only
    without residual) applies to the first layer; `output_lengths` gives the valid steps of the output."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, repeats: int = 1, dilation: int = 1,
                 residual: bool = False, separable: bool = True, drop_path_rate: float = 0.0, bn_eps: float = 1e-3,
                 stride: int = 1):
        super().__init__()
        if stride > 1 and residual:
            raise ConfigError("a strided MarbleNet block cannot have a residual connection")
        self.layers = nn.ModuleList(
            ConvBN(in_ch if i == 0 else out_ch, out_ch, kernel, dilation, separable, bn_eps, stride if i == 0 else 1)
            for i in range(repeats)
        )
        self.residual = ConvBN(in_ch, out_ch, 1, separable=False, bn_eps=bn_eps) if residual else None
        self.drop_path_rate = drop_path_rate

    def output_lengths(self, lengths: torch.Tensor | None) -> torch.Tensor | None:
        return self.layers[0].output_lengths(lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        out = x
        for i, layer in enumerate(self.layers):
            if i > 0:
                out = F.relu(out)
            out = layer(out, lengths)
            if i == 0:
                lengths = self.output_lengths(lengths)
        if self.residual is not None:
            out = drop_path(out, self.drop_path_rate, self.training) + self.residual(x, lengths)
        return F.relu(out)


class MarbleNet(nn.Module):
    """MarbleNet-BxRxC. Input: features (B, in_features, T). Output of `forward`: logits (B, num_classes)."""

    arch = "marblenet"  # the name fdvad checkpoints record

    def __init__(self, config: MarbleNetConfig | None = None, **overrides):
        super().__init__()
        config = config or MarbleNetConfig()
        if overrides:
            config = MarbleNetConfig.from_dict({**config.to_dict(), **overrides})
        config.validate()
        self.config = c = config
        rates = torch.linspace(0, c.drop_path_rate, c.num_blocks).tolist() if c.num_blocks > 1 else [c.drop_path_rate]
        blocks = [Block(c.in_features, c.prologue_channels, c.prologue_kernel, bn_eps=c.bn_eps,
                        stride=c.prologue_stride)]
        in_ch = c.prologue_channels
        for kernel, rate in zip(c.block_kernels, rates):
            blocks.append(Block(in_ch, c.channels, kernel, repeats=c.repeats, residual=True,
                                drop_path_rate=rate, bn_eps=c.bn_eps))
            in_ch = c.channels
        blocks.append(Block(in_ch, c.epilogue_channels, c.epilogue_kernel, dilation=c.epilogue_dilation, bn_eps=c.bn_eps))
        blocks.append(Block(c.epilogue_channels, c.final_channels, 1, separable=False, bn_eps=c.bn_eps))
        self.encoder = nn.ModuleList(blocks)
        self.head = nn.Linear(c.final_channels, c.num_classes)
        self.num_features = c.final_channels
        self._init_weights()

    def _init_weights(self) -> None:
        # NeMo initialises conv and linear weights with xavier_uniform.
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def output_stride(self) -> int:
        """Input frames per encoder output frame (1, or 2 for NeMo's 20 ms frame-VAD model)."""
        return self.config.prologue_stride

    @property
    def receptive_field(self) -> int:
        """Input frames that influence one output frame (layers after the strided prologue reach
        `output_stride` times as far in input frames)."""
        c = self.config
        later = sum(c.repeats * (k - 1) for k in c.block_kernels) + c.epilogue_dilation * (c.epilogue_kernel - 1)
        return 1 + (c.prologue_kernel - 1) + c.prologue_stride * later

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid encoder steps for `lengths` valid input frames."""
        return self.encoder[0].output_lengths(lengths)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder output (B, C, T') for features (B, in_features, T); T' = ceil(T / output_stride).
        With `lengths`, steps past each item's length are zeroed before every conv (NeMo's masking); the
        prologue's stride shortens the lengths as NeMo's MaskedConv1d does."""
        for block in self.encoder:
            x = block(x, lengths)
            lengths = block.output_lengths(lengths)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Average over time, then classify: (B, C, T) -> logits (B, num_classes)."""
        return self.head(features.mean(dim=-1))

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The head applied to every time step: (B, C, T) -> (B, T, num_classes). Because the head is
        linear, the mean of these over a span equals `forward_head` of that span; fast inference uses it."""
        return self.head(features.transpose(1, 2))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))

    def fused_for_inference(self) -> "MarbleNet":
        """A copy in eval mode with every BatchNorm folded into its conv: for inference only (it cannot be
        trained or saved as a MarbleNet checkpoint; the original is left as it is)."""
        fused = copy.deepcopy(self).eval()
        for module in fused.modules():
            if isinstance(module, ConvBN):
                module.fuse_batchnorm_()
                module.pointwise = ChannelsLastConv(module.pointwise)
                if module.depthwise is not None:
                    module.depthwise = ChannelsLastConv(module.depthwise)
        return fused
