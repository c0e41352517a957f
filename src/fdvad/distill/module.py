"""The LightningModule of `fdvad distill`: the FeatureDistiller on crops of unlabelled audio.

Teacher and student see the same augmented view: one waveform augmentation (data loader) and one SpecAugment
draw per batch, applied once to the features both receive. Labels in the corpus are not used.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from ..features import FeatureExtractor
from ..train.module import make_optimizer, param_groups
from ..train.objectives import spec_augment
from ..train.recipe import Recipe
from .fd import FeatureDistiller


class DistillModule(L.LightningModule):
    def __init__(self, distiller: FeatureDistiller, features: FeatureExtractor, recipe: Recipe):
        super().__init__()
        self.distiller = distiller
        self.features = features
        self.recipe = recipe

    def training_step(self, batch, batch_idx):
        audio, _ = batch
        d = self.recipe.data
        rng = np.random.default_rng([self.recipe.train.seed, self.global_rank, self.global_step])
        with torch.no_grad():
            feats = spec_augment(self.features(audio), rng, p=d.spec_augment_prob, freq_masks=d.freq_masks,
                                 freq_width=d.freq_width, time_masks=d.time_masks, time_width=d.time_width)
        out = self.distiller(feats)
        for name, value in out.terms.items():
            self.log(name, value, on_step=True, prog_bar=True)
        self.log("lr", max(g["lr"] for g in self.trainer.optimizers[0].param_groups), on_step=True, prog_bar=True)
        return out.loss

    def validation_step(self, batch, batch_idx):
        audio, _ = batch
        out = self.distiller(self.features(audio))
        self.log("val_loss_fd", out.loss, on_epoch=True, sync_dist=True, batch_size=1)

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self):
        o = self.recipe.optim
        groups = param_groups(self.distiller.student, o.weight_decay)
        groups.append({"params": list(self.distiller.projector.parameters()), "weight_decay": o.weight_decay})
        return make_optimizer(groups, self.recipe)
