"""The LightningModule of `fdvad distill`: the FeatureDistiller on crops of unlabelled audio.

Teacher and student see the same augmented view: one waveform augmentation (data loader) and one SpecAugment
draw per batch, applied once to the features both receive. Labels in the corpus are not used.

A window-only model (no `frame_logits`: the audio transformer) only ever sees single 0.63 s windows in use, so
when the teacher or the student is one, each crop is cut into consecutive 64-frame windows and those are
distilled instead of the whole crop.

A Silero teacher reads the waveform: its map arrives with the batch (the crop's slice of its features of the
whole stored item, `teacher_cache`) and is not recomputed here, so waveform augmentation and SpecAugment reach
the student's view only. With
`distill.target: probabilities` the teacher's speech probabilities, read at each student frame, take the place
of frame labels in `fdvad train`'s objective (classical distillation, for comparison with FD).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from ..errors import ConfigError
from ..features import FeatureExtractor
from ..train.module import make_optimizer, param_groups
from ..train.objectives import spec_augment, window_losses
from ..train.recipe import Recipe
from .fd import FeatureDistiller, align_to

WINDOW_FRAMES = 64  # a 0.63 s window and the masked frame of exact scoring, as window-only models are used


def distill_views(feats: torch.Tensor, distiller: FeatureDistiller, teacher_reads_waveform: bool = False) -> torch.Tensor:
    """The crop's features, or its consecutive 64-frame windows (B * k, F, 64) when the teacher or the student
    is a window-only model. A waveform teacher's map covers the whole crop, so its student sees the whole crop."""
    if teacher_reads_waveform or all(hasattr(m, "frame_logits") for m in (distiller.teacher, distiller.student)):
        return feats
    w = WINDOW_FRAMES
    if feats.shape[2] < w:
        raise ConfigError(f"data.crop_s gives crops of {feats.shape[2]} frames, shorter than one {w}-frame "
                          "window: use crops of at least 0.64 s")
    return feats.unfold(2, w, w).permute(0, 2, 1, 3).flatten(0, 1)


class DistillModule(L.LightningModule):
    def __init__(self, distiller: FeatureDistiller, features: FeatureExtractor, recipe: Recipe):
        super().__init__()
        self.distiller = distiller
        self.features = features
        self.recipe = recipe

    def training_step(self, batch, batch_idx):
        audio, teacher_map = batch[0], (batch[2] if len(batch) > 2 else None)
        d = self.recipe.data
        rng = np.random.default_rng([self.recipe.train.seed, self.global_rank, self.global_step])
        with torch.no_grad():
            feats = spec_augment(self.features(audio), rng, p=d.spec_augment_prob, freq_masks=d.freq_masks,
                                 freq_width=d.freq_width, time_masks=d.time_masks, time_width=d.time_width)
        terms = self._losses(feats, teacher_map, rng)
        for name, value in terms.items():
            self.log(name, value.detach(), on_step=True, prog_bar=True)
        self.log("lr", max(g["lr"] for g in self.trainer.optimizers[0].param_groups), on_step=True, prog_bar=True)
        return sum(terms.values())

    def validation_step(self, batch, batch_idx):
        audio = batch[0]  # a whole item: a streaming teacher's map of it is exact without any cache
        teacher_map = None
        if self._reads_waveform():
            with torch.no_grad():
                teacher_map = self.distiller.teacher.forward_features(audio)
        terms = self._losses(self.features(audio), teacher_map, np.random.default_rng(0))
        name = "val_loss_kd" if self.recipe.distill.target == "probabilities" else "val_loss_fd"
        self.log(name, sum(terms.values()), on_epoch=True, sync_dist=True, batch_size=1)

    def _reads_waveform(self) -> bool:
        return self.recipe.distill.teacher == "silero"

    def _losses(self, feats: torch.Tensor, teacher_map: torch.Tensor | None, rng) -> dict[str, torch.Tensor]:
        if self.recipe.distill.target == "probabilities":
            probs = self.distiller.teacher.forward_head(teacher_map).unsqueeze(1)  # (B, 1, K)
            d = self.distiller
            soft = align_to(probs, d.teacher_frames, d.student_frames, feats.shape[2]).squeeze(1)
            loss_fast, loss_exact = window_losses(d.student, feats, soft, rng)
            return {"loss_kd_fast": loss_fast, "loss_kd_exact": self.recipe.train.exact_loss_weight * loss_exact}
        return {"loss_fd": self.distiller(distill_views(feats, self.distiller, self._reads_waveform()),
                                             teacher_map=teacher_map).loss}

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self):
        o = self.recipe.optim
        groups = param_groups(self.distiller.student, o.weight_decay)
        groups.append({"params": list(self.distiller.projector.parameters()), "weight_decay": o.weight_decay})
        return make_optimizer(groups, self.recipe)
