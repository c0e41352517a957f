"""Feature Distillation for any PyTorch model, after Wei et al. 2022 (arXiv 2205.14141) and its official code.

    distiller = FeatureDistiller(teacher, student, example_input=batch)
    out = distiller(batch)            # both models see the same (augmented) batch
    out.loss.backward()               # only the student and the projector get gradients

What it computes, as the official code does:
  - the teacher is frozen: no gradients, eval mode at every step (so its drop path and dropout are off), run
    under torch.no_grad();
  - feature maps: by default the output of `forward_features` (or, for Hugging Face models, the
    `last_hidden_state`); any module can be chosen instead by its dotted path (`teacher_layer="blocks.11"`),
    read with a forward hook while the model runs;
  - target = the teacher's map, through the teacher's own final norm if one is named (`teacher_norm="norm"`),
    then whitened by a LayerNorm without scale and bias (eps 1e-5) over the channels of each position (time
    step, token or pixel);
  - prediction = a 1x1 convolution (Conv1d with bias, PyTorch's default init) from student channels to
    teacher channels; when the two maps have different numbers of positions (another frame rate, another
    token count) the prediction is resized to the teacher's by linear (1-D) or bilinear (2-D) interpolation;
    when both models' time grids are given (`teacher_frames=FrameGrid(0.032, 0.016)`,
    `student_frames=FrameGrid(0.01, 0.0)`), the student's 1-D map is instead read at the time of each teacher
    frame's centre by linear interpolation between its two nearest frames (edges: the first / last frame), so
    the two maps line up in seconds whatever their lengths;
  - loss = smooth-L1 with beta = 2, averaged over all elements.
Maps are read as channels-first (B, C, T) or (B, C, H, W) unless `*_channels_dim=-1` says the channels are last
(transformer token sequences (B, N, C); Hugging Face `last_hidden_state` is detected as such).

A teacher that reads another input than the student (a waveform teacher for a log-mel student) gets its own:
`distiller(batch, teacher_inputs=waveform)`; a teacher map computed beforehand (a cache of whole-file features,
see `teacher_cache.py`) is passed as `distiller(batch, teacher_map=map)` and the teacher is not run.

Options for the paper's ablations: `whiten=False`, `projector=False` (student and teacher channels must then
match), `beta`, `pool=True` (match the position-averaged feature vector instead of the map). Logit targets are
a choice of layer (the heads' module paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError

WHITEN_EPS = 1e-5
DEFAULT_BETA = 2.0


def whiten(x: torch.Tensor, eps: float = WHITEN_EPS) -> torch.Tensor:
    """LayerNorm without scale or bias over dim 1 (channels) of a (B, C, P) map, at each position."""
    return F.layer_norm(x.transpose(1, 2), (x.shape[1],), eps=eps).transpose(1, 2)


def smooth_l1(prediction: torch.Tensor, target: torch.Tensor, beta: float = DEFAULT_BETA) -> torch.Tensor:
    """Mean smooth-L1: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere."""
    return F.smooth_l1_loss(prediction, target, beta=beta, reduction="mean")


def _module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n][:12]
        raise ConfigError(f"no module {path!r} in {type(model).__name__}; some of its modules: "
                          f"{', '.join(names)}") from None


def _as_tensor(output) -> tuple[torch.Tensor, bool]:
    """(tensor, channels_last_hint) from a module output: a tensor, a tuple (first item) or a model output."""
    if isinstance(output, torch.Tensor):
        return output, False
    hidden = getattr(output, "last_hidden_state", None)
    if isinstance(hidden, torch.Tensor):
        return hidden, True
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0], False
    raise ConfigError(f"cannot take a feature map from a {type(output).__name__} output; choose a layer whose "
                      "output is a tensor")


@dataclass
class FeatureTap:
    """Where a model's feature map comes from and how to read it."""

    layer: str | None = None  # dotted module path; None: forward_features (or last_hidden_state)
    channels_dim: int | None = None  # 1: channels first; -1: channels last; None: auto (see module docstring)
    norm: str | None = None  # dotted path of a norm applied to the map (the teacher's own final norm)

    def read(self, model: nn.Module, inputs: tuple) -> torch.Tensor:
        """The map as (B, C, P) or (B, C, H, W), channels first."""
        if self.layer is None:
            if hasattr(model, "forward_features"):
                raw, last = _as_tensor(model.forward_features(*inputs))
            else:
                raw, last = _as_tensor(model(*inputs))
        else:
            captured = []
            handle = _module(model, self.layer).register_forward_hook(lambda m, i, o: captured.append(o))
            try:
                model(*inputs)
            finally:
                handle.remove()
            if not captured:
                raise ConfigError(f"module {self.layer!r} did not run in {type(model).__name__}'s forward")
            raw, last = _as_tensor(captured[-1])
        channels_last = self.channels_dim == -1 or (self.channels_dim is None and last)
        if self.norm is not None:
            norm = _module(model, self.norm)
            raw = norm(raw) if channels_last else norm(raw.movedim(1, -1)).movedim(-1, 1)
        if raw.dim() < 3:
            raw = raw.unsqueeze(-1) if not channels_last else raw.unsqueeze(1)  # (B, C): one position
        if channels_last:
            raw = raw.movedim(-1, 1)
        return raw


@dataclass(frozen=True)
class FrameGrid:
    """Where a 1-D map's positions sit in time: position p is centred at `offset_s + p * hop_s` seconds."""

    hop_s: float
    offset_s: float = 0.0


def align_to(s_map: torch.Tensor, student: FrameGrid, teacher: FrameGrid, n_teacher: int) -> torch.Tensor:
    """(B, C, T) student map read at the centres of `n_teacher` teacher frames: (B, C, n_teacher), each the
    linear interpolation of the two student frames around that time (clamped to the first / last frame)."""
    centres = teacher.offset_s + teacher.hop_s * torch.arange(n_teacher, dtype=torch.float64, device=s_map.device)
    pos = ((centres - student.offset_s) / student.hop_s).clamp(0, s_map.shape[2] - 1)
    left = pos.floor().long().clamp(max=s_map.shape[2] - 1)
    right = (left + 1).clamp(max=s_map.shape[2] - 1)
    frac = (pos - left).to(s_map.dtype)
    return s_map[:, :, left] * (1 - frac) + s_map[:, :, right] * frac


@dataclass
class FDOutput:
    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # every loss term by name, for logging
    prediction: torch.Tensor | None = None
    target: torch.Tensor | None = None


class FeatureDistiller(nn.Module):
    def __init__(self, teacher: nn.Module, student: nn.Module, *, example_input=None,
                 teacher_layer: str | None = None, student_layer: str | None = None,
                 teacher_norm: str | None = None, teacher_channels_dim: int | None = None,
                 student_channels_dim: int | None = None, teacher_channels: int | None = None,
                 student_channels: int | None = None, whiten: bool = True, projector: bool = True,
                 beta: float = DEFAULT_BETA, pool: bool = False, teacher_frames: FrameGrid | None = None,
                 student_frames: FrameGrid | None = None, example_teacher_input=None):
        super().__init__()
        if not beta > 0:
            raise ConfigError(f"beta must be > 0, got {beta}")
        for name, value in (("teacher_channels_dim", teacher_channels_dim), ("student_channels_dim", student_channels_dim)):
            if value not in (None, 1, -1):
                raise ConfigError(f"{name} must be 1 (channels first), -1 (channels last) or None, got {value}")
        self.teacher = teacher
        self.student = student
        self.teacher_tap = FeatureTap(teacher_layer, teacher_channels_dim, teacher_norm)
        self.student_tap = FeatureTap(student_layer, student_channels_dim)
        self.whiten, self.beta, self.pool = whiten, beta, pool
        if (teacher_frames is None) != (student_frames is None):
            raise ConfigError("give both teacher_frames and student_frames (time grids), or neither")
        self.teacher_frames, self.student_frames = teacher_frames, student_frames
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if teacher_channels is None or student_channels is None:
            if example_input is None:
                raise ConfigError("give example_input (one batch) or both teacher_channels and student_channels")
            inputs = self._inputs(example_input)
            t_inputs = inputs if example_teacher_input is None else self._inputs(example_teacher_input)
            t_map, s_map = self._maps(inputs, t_inputs, no_student_grad=True)
            teacher_channels = teacher_channels or t_map.shape[1]
            student_channels = student_channels or s_map.shape[1]
        if projector:
            self.projector: nn.Module = nn.Conv1d(student_channels, teacher_channels, kernel_size=1)
        else:
            if student_channels != teacher_channels:
                raise ConfigError(f"without a projector the student's channels ({student_channels}) must equal "
                                  f"the teacher's ({teacher_channels})")
            self.projector = nn.Identity()

    # -- parts ----------------------------------------------------------------------------------------
    def projector_parameters(self) -> int:
        return sum(p.numel() for p in self.projector.parameters())

    def student_parameters(self) -> list[nn.Parameter]:
        """What the optimiser trains: the student and the projector."""
        return [p for p in self.student.parameters() if p.requires_grad] + list(self.projector.parameters())

    def train(self, mode: bool = True) -> FeatureDistiller:
        super().train(mode)
        self.teacher.eval()  # always: the teacher runs as at inference
        return self

    @staticmethod
    def _inputs(batch) -> tuple:
        return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)

    def _maps(self, inputs: tuple, teacher_inputs: tuple, no_student_grad: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
        self.teacher.eval()
        with torch.no_grad():
            t_map = self.teacher_tap.read(self.teacher, teacher_inputs)
        if no_student_grad:
            with torch.no_grad():
                s_map = self.student_tap.read(self.student, inputs)
        else:
            s_map = self.student_tap.read(self.student, inputs)
        return t_map, s_map

    # -- forward --------------------------------------------------------------------------------------
    def target(self, t_map: torch.Tensor) -> torch.Tensor:
        t = t_map.float().flatten(2)
        if self.pool:
            t = t.mean(dim=2, keepdim=True)
        return whiten(t) if self.whiten else t

    def predict(self, s_map: torch.Tensor, t_map: torch.Tensor) -> torch.Tensor:
        s = s_map
        if self.teacher_frames is not None:  # known time grids: the student read at each teacher frame's time
            if s.dim() != 3 or t_map.dim() != 3:
                raise ConfigError("teacher_frames / student_frames align 1-D (B, C, T) maps only")
            s = align_to(s, self.student_frames, self.teacher_frames, t_map.shape[2])
        elif s.shape[2:] != t_map.shape[2:]:  # another frame rate / token grid: resize to the teacher's positions
            mode = "linear" if s.dim() == 3 else "bilinear"
            s = F.interpolate(s, size=t_map.shape[2:], mode=mode, align_corners=False)
        s = s.flatten(2)
        if self.pool:
            s = s.mean(dim=2, keepdim=True)
        return self.projector(s)

    def forward(self, batch, teacher_inputs=None, teacher_map: torch.Tensor | None = None) -> FDOutput:
        """`batch` is what the student reads; the teacher reads `teacher_inputs` (default: the same batch), or is
        not run at all when its map is given (`teacher_map`, channels first)."""
        inputs = self._inputs(batch)
        if teacher_map is not None:
            t_map = teacher_map.detach()
            s_map = self.student_tap.read(self.student, inputs)
        else:
            t_inputs = inputs if teacher_inputs is None else self._inputs(teacher_inputs)
            t_map, s_map = self._maps(inputs, t_inputs)
        target = self.target(t_map)
        prediction = self.predict(s_map, t_map)
        loss = smooth_l1(prediction.float(), target, self.beta)
        return FDOutput(loss, {"loss_fd": loss.detach()}, prediction, target)
