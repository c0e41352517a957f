"""The LightningModule: a thin layer that wires a plain model, the front end and the objectives to Lightning.

Training batches are either crops with 10 ms frame labels (the fast + isolated-window objective of
`objectives.window_losses`) or single 0.63 s windows with one label each (NeMo's segment training: binary
cross-entropy on the window's speech-minus-background logit). Validation scores whole items in fast mode,
as `fdvad vad` does, and logs window AUROC and F1 at 0.5 (torchmetrics, synchronised across processes).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import BinaryAUROC, BinaryF1Score

from ..eval.metrics import frames_to_windows
from ..features import FeatureExtractor
from ..vad.infer import WindowScorer, WindowSpec
from .objectives import spec_augment, window_losses
from .recipe import Recipe
from .schedules import constant, warmup_cosine, warmup_hold_poly


class VADTrainingModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, features: FeatureExtractor, recipe: Recipe):
        super().__init__()
        self.model = model
        self.features = features
        self.recipe = recipe
        self.spec = WindowSpec()
        # one AUROC/F1 pair per validation set, in make_loaders' order ("val_auroc", then "val_NAME_auroc")
        self.val_prefixes = recipe.data.validation_prefixes()
        self.val_aurocs = torch.nn.ModuleList(BinaryAUROC() for _ in self.val_prefixes)
        self.val_f1s = torch.nn.ModuleList(BinaryF1Score(threshold=0.5) for _ in self.val_prefixes)
        self._scorer: WindowScorer | None = None

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.recipe.train.seed, self.global_rank, self.global_step])

    def training_step(self, batch, batch_idx):
        audio, labels = batch
        rng = self._rng()
        d = self.recipe.data
        with torch.no_grad():
            feats = self.features(audio)
            feats = spec_augment(feats, rng, p=d.spec_augment_prob, freq_masks=d.freq_masks,
                                 freq_width=d.freq_width, time_masks=d.time_masks, time_width=d.time_width)
        if self.recipe.data.labels == "frame":
            loss_fast, loss_exact = window_losses(self.model, feats, labels, rng)
            if loss_fast is None:  # a window-only model: the isolated windows are the whole objective
                loss = loss_exact
            else:
                loss = loss_fast + self.recipe.train.exact_loss_weight * loss_exact
                self.log("loss_fast", loss_fast, on_step=True, prog_bar=False)
            self.log("loss_exact", loss_exact, on_step=True, prog_bar=False)
        else:
            lengths = torch.full((feats.shape[0],), feats.shape[2], dtype=torch.long)
            logits = self.model(feats, lengths)
            loss = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], labels)
        self.log("loss", loss, on_step=True, prog_bar=True)
        self.log("lr", max(g["lr"] for g in self.trainer.optimizers[0].param_groups), on_step=True, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._scorer = WindowScorer(self.model, self.features, self.spec, mode="fast")

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        audio, frames = batch  # one whole item
        probs = torch.from_numpy(self._scorer(audio[0].cpu().numpy()))
        labels = frames_to_windows(frames[0].cpu().numpy(), self.spec.shift_frames) >= 0.5
        n = min(len(probs), len(labels))
        target = torch.from_numpy(labels[:n]).long().to(self.device)
        self.val_aurocs[dataloader_idx].update(probs[:n].to(self.device), target)
        self.val_f1s[dataloader_idx].update(probs[:n].to(self.device), target)

    def on_validation_epoch_end(self) -> None:
        for prefix, auroc, f1 in zip(self.val_prefixes, self.val_aurocs, self.val_f1s):
            if not auroc.update_called:  # a set that was not scored this round (no items)
                continue
            self.log(prefix + "auroc", auroc.compute(), prog_bar=prefix == "val_", sync_dist=False,
                     add_dataloader_idx=False)
            self.log(prefix + "f1", f1.compute(), prog_bar=prefix == "val_", sync_dist=False,
                     add_dataloader_idx=False)
            auroc.reset()
            f1.reset()
        self._scorer = None

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self):
        o = self.recipe.optim
        return make_optimizer(param_groups(self.model, o.weight_decay, o.layer_decay), self.recipe)


# Parameters below the first block (a transformer's patch embedding, CLS token, absolute positions): layer -1.
STEM_PARAMETERS = ("patch_embed.", "cls_token", "pos_embed")
# Never weight-decayed besides 1-D tensors (as the official FD code): tokens, positions, relative bias tables.
NO_DECAY_PARAMETERS = ("cls_token", "pos_embed", "rel_pos_bias.table")


def layer_of(name: str, n_layers: int) -> int:
    """Layer index of a parameter for layer-wise lr decay: encoder block k -> k, a transformer's stem -> -1,
    anything else (the head, final norms, a shared relative position bias) -> top (n_layers)."""
    parts = name.split(".")
    if len(parts) > 2 and parts[0] in ("encoder", "blocks") and parts[1].isdigit():
        return int(parts[1])
    if name.startswith(STEM_PARAMETERS):
        return -1
    return n_layers


def param_groups(model: torch.nn.Module, weight_decay: float, layer_decay: float = 1.0) -> list[dict]:
    """AdamW/SGD groups: no weight decay on 1-D tensors (biases, norms) and NO_DECAY_PARAMETERS; with
    layer_decay < 1, encoder block i of n gets lr x layer_decay^(n - i), a transformer's stem
    x layer_decay^(n + 1) and the head x1 (FD's fine-tuning rule, scale_i = decay^(depth + 1 - i))."""
    encoder = getattr(model, "encoder", None) or getattr(model, "blocks", None)
    n = len(encoder) if isinstance(encoder, (torch.nn.ModuleList, torch.nn.Sequential)) else 0
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer = layer_of(name, n) if n and layer_decay != 1.0 else 0  # one scale for all without decay
        decayed = p.dim() > 1 and not name.endswith(NO_DECAY_PARAMETERS)
        g = groups.setdefault((layer, decayed), {"params": [], "weight_decay": weight_decay if decayed else 0.0,
                                                 "lr_scale": layer_decay ** (n - layer) if n and layer_decay != 1.0
                                                 else 1.0})
        g["params"].append(p)
    return list(groups.values())


def make_optimizer(groups: list[dict], recipe: Recipe) -> dict:
    """The recipe's optimiser and per-step schedule over `groups` (each may carry an lr_scale)."""
    o, steps = recipe.optim, recipe.train.steps
    for g in groups:
        g["lr"] = o.lr * g.pop("lr_scale", 1.0)
    if o.name == "sgd":
        opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    else:
        opt = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas))
    min_ratio = o.min_lr / o.lr
    if o.schedule == "warmup_hold_poly":
        factor = warmup_hold_poly(steps, o.warmup_ratio, o.hold_ratio, min_ratio, o.power)
    elif o.schedule == "cosine":
        factor = warmup_cosine(steps, o.warmup_ratio, min_ratio)
    else:
        factor = constant(steps, o.warmup_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
