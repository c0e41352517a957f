"""A small audio transformer VAD (BEiT-style blocks) that classifies a 0.63 s window of log-mel, like MarbleNet.

Input (B, 80, T) log-mel. Patches of `patch_frames` 10 ms frames x all mel bands become tokens (a strided
Conv1d), a CLS token is prepended, then `depth` pre-norm blocks (attention + MLP, each branch scaled by a
learned per-channel layer scale and dropped by drop path), a final LayerNorm. `forward_features` returns that
token map channels-first (B, C, 1 + N), CLS included, as Feature Distillation's official code takes the
teacher's last tokens; `forward_head` averages the patch tokens (CLS excluded), normalises and classifies
(the official fine-tuning head).

Position encoding (`position`):
  absolute         a learned embedding added to the tokens (ViT);
  relative         every block has its own relative position bias table added to its attention logits (BEiT);
  shared_relative  one zero-initialised table at model level, added to the logits of every block (Feature
                   Distillation's student). `unshare_relative_position_bias()` copies it into per-block tables
                   for fine-tuning, as the official code does when it loads a distilled student.
A 1-D table has 2 * max_tokens - 1 rows for token-token distances (farther pairs share the end rows) plus
three for CLS -> token, token -> CLS and CLS -> CLS, one column per head.

A transformer attends to the whole input, so a window's score depends only on its own window when each is
classified alone: the model has no `frame_logits`, and fdvad scores it in exact mode (one pass per window).
Attention maps come back from `forward_features(..., return_attention=True)`; they also pass through each
block's `attn_drop` module, where fdvad.analysis reads them without any option.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from ..errors import ConfigError
from .marblenet import drop_path

POSITIONS = ("absolute", "relative", "shared_relative")


@dataclass
class AudioTransformerConfig:
    in_features: int = 80
    num_classes: int = 2
    patch_frames: int = 3  # 30 ms tokens: a 63-frame window is 21 tokens
    dim: int = 96
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    max_tokens: int = 32  # relative tables cover distances up to max_tokens - 1; the absolute table this many
    position: str = "shared_relative"
    layer_scale_init: float = 0.1  # BEiT's for small models
    drop_path_rate: float = 0.0
    extra: dict = field(default_factory=dict)  # free-form notes, ignored by the model

    def validate(self) -> None:
        if self.position not in POSITIONS:
            raise ConfigError(f"position must be one of {POSITIONS}, not {self.position!r}")
        if self.dim % self.num_heads:
            raise ConfigError(f"dim ({self.dim}) must be a multiple of num_heads ({self.num_heads})")
        for name in ("patch_frames", "dim", "depth", "num_heads", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ConfigError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioTransformerConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown AudioTransformer settings {sorted(unknown)}; valid: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg


class RelativePositionBias(nn.Module):
    """A (2 * max_tokens - 1 + 3, heads) table; `forward(n)` gives the (heads, 1 + n, 1 + n) bias for CLS + n
    tokens. Zero-initialised, so a fresh model starts without any position preference."""

    def __init__(self, max_tokens: int, num_heads: int):
        super().__init__()
        self.max_tokens = max_tokens
        self.table = nn.Parameter(torch.zeros(2 * max_tokens - 1 + 3, num_heads))

    def index(self, n: int) -> torch.Tensor:
        m = self.max_tokens
        pos = torch.arange(n)
        rel = (pos[:, None] - pos[None, :]).clamp(-(m - 1), m - 1) + (m - 1)
        idx = torch.empty(n + 1, n + 1, dtype=torch.long)
        idx[1:, 1:] = rel
        idx[0, 1:] = 2 * m - 1  # CLS -> token
        idx[1:, 0] = 2 * m  # token -> CLS
        idx[0, 0] = 2 * m + 1  # CLS -> CLS
        return idx

    def forward(self, n: int) -> torch.Tensor:
        return self.table[self.index(n).to(self.table.device)].permute(2, 0, 1)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, rel_pos_bias: RelativePositionBias | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_bias = rel_pos_bias  # this block's own table (position "relative"), else None
        self.attn_drop = nn.Dropout(0.0)  # the softmaxed attention passes through here: analysis hooks read it

    def forward(self, x: torch.Tensor, shared_bias: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        logits = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
        if self.rel_pos_bias is not None:
            logits = logits + self.rel_pos_bias(n - 1)
        if shared_bias is not None:
            logits = logits + shared_bias
        if key_mask is not None:
            logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        attn = self.attn_drop(logits.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out), attn


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, layer_scale_init: float, drop_path_rate: float,
                 own_rel_pos_bias: RelativePositionBias | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, own_rel_pos_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.gamma1 = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.gamma2 = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor, shared_bias: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        a, attn = self.attn(self.norm1(x), shared_bias, key_mask)
        x = x + drop_path(self.gamma1 * a, self.drop_path_rate, self.training)
        x = x + drop_path(self.gamma2 * self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
        return x, attn


class AudioTransformer(nn.Module):
    """Input: features (B, in_features, T). Output of `forward`: logits (B, num_classes)."""

    arch = "audio_transformer"

    def __init__(self, config: AudioTransformerConfig | None = None, **overrides):
        super().__init__()
        config = config or AudioTransformerConfig()
        if overrides:
            config = AudioTransformerConfig.from_dict({**config.to_dict(), **overrides})
        config.validate()
        self.config = c = config
        self.patch_embed = nn.Conv1d(c.in_features, c.dim, kernel_size=c.patch_frames, stride=c.patch_frames)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + c.max_tokens, c.dim)) if c.position == "absolute" else None
        self.rel_pos_bias = RelativePositionBias(c.max_tokens, c.num_heads) if c.position == "shared_relative" else None
        rates = torch.linspace(0, c.drop_path_rate, c.depth).tolist()
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.mlp_ratio, c.layer_scale_init, rate,
                             RelativePositionBias(c.max_tokens, c.num_heads) if c.position == "relative" else None)
            for rate in rates)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.fc_norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.head = nn.Linear(c.dim, c.num_classes)
        self.num_features = c.dim
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # relative position tables stay at zero (BEiT and the FD code do not initialise them)

    @property
    def receptive_field(self) -> int:
        """Input frames one window's score depends on: the window itself (exact mode)."""
        return 64

    def tokens(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 1 + N, dim) embedded tokens and a key mask (None when every token is valid). Frames past the
        longest length and the last partial patch are dropped."""
        p = self.config.patch_frames
        if lengths is not None:
            x = x[:, :, : int(lengths.max())]
        n = x.shape[-1] // p
        if n < 1:
            raise ValueError(f"{x.shape[-1]} frames are fewer than one patch of {p}")
        if n > self.config.max_tokens and self.pos_embed is not None:
            raise ValueError(f"{n} tokens exceed the absolute position table of {self.config.max_tokens}")
        t = self.patch_embed(x[:, :, : n * p]).transpose(1, 2)  # (B, N, dim)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], dim=1)
        if self.pos_embed is not None:
            t = t + self.pos_embed[:, : n + 1]
        key_mask = None
        if lengths is not None and bool((lengths // p < n).any()):
            valid = torch.arange(n, device=x.device)[None, :] < (lengths // p).to(x.device)[:, None]
            key_mask = torch.cat([valid.new_ones(len(t), 1), valid], dim=1)
        return t, key_mask

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                         return_attention: bool = False):
        """Token map (B, dim, 1 + N) after the final norm, CLS first; with `return_attention`, also the list of
        every block's attention (B, heads, 1 + N, 1 + N)."""
        t, key_mask = self.tokens(x, lengths)
        shared = self.rel_pos_bias(t.shape[1] - 1) if self.rel_pos_bias is not None else None
        maps = []
        for block in self.blocks:
            t, attn = block(t, shared, key_mask)
            maps.append(attn)
        features = self.norm(t).transpose(1, 2)
        return (features, maps) if return_attention else features

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Mean of the patch tokens (CLS excluded) -> LayerNorm -> Linear: (B, dim, 1 + N) -> (B, classes)."""
        return self.head(self.fc_norm(features[:, :, 1:].mean(dim=-1)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))

    # -- shared relative position bias -> per-block tables (fine-tuning after FD) ----------------------
    def unshare_relative_position_bias(self) -> "AudioTransformer":
        """Give every block its own copy of the shared table and drop the shared one (position becomes
        "relative"); the outputs do not change. In place; returns self."""
        if self.rel_pos_bias is None:
            raise ConfigError(f"this model has no shared relative position bias (position {self.config.position!r})")
        shared = self.rel_pos_bias
        for block in self.blocks:
            own = RelativePositionBias(self.config.max_tokens, self.config.num_heads).to(shared.table.device)
            with torch.no_grad():
                own.table.copy_(shared.table)
            block.attn.rel_pos_bias = own
        self.rel_pos_bias = None
        self.config.position = "relative"
        return self

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A checkpoint's tensors made to fit this model: a shared table is copied into each block's own table
        when this model has per-block tables (as the official FD code loads a student for fine-tuning)."""
        key = "rel_pos_bias.table"
        if key in state and self.config.position == "relative":
            state = dict(state)
            table = state.pop(key)
            for i in range(len(self.blocks)):
                state[f"blocks.{i}.attn.rel_pos_bias.table"] = table.clone()
        return state
