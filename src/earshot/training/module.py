"""The Lightning module: a generic loop around a model and a task."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from earshot.config import AugmentConfig, DataConfig, OptimConfig
from earshot.data.augment import mixup_apply, mixup_draw, spec_augment
from earshot.data.loading import pool_windows
from earshot.models.registry import AudioModel


class EarshotModule(L.LightningModule):
    """Trains ``model`` with ``task.loss``; validates by pooling window predictions per clip."""

    def __init__(self, model: AudioModel, task: Any, optim: OptimConfig, data: DataConfig, meta: dict[str, Any],
                 n_val_clips: int = 0, augment: AugmentConfig | None = None, seed: int = 0):
        super().__init__()
        self.aug = augment or AugmentConfig()
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.model = model
        self.task = task
        self.optim_cfg = optim
        self.data_cfg = data
        self.meta = meta  # stored in every checkpoint under "earshot"
        self.n_val_clips = n_val_clips
        self._val: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(audio)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        a = self.aug
        mix = a.mixup_alpha > 0 and len(batch["audio"]) > 1
        perm, lam = mixup_draw(len(batch["audio"]), a.mixup_alpha, self.gen) if mix else (None, 1.0)
        audio = batch["audio"]  # (B, N)
        if perm is not None and a.mixup_on == "waveform":
            audio = mixup_apply(audio, perm, lam)
        feats = self.model.features(audio)  # (B, T, F), normalised
        if perm is not None and a.mixup_on == "logmel":
            feats = mixup_apply(feats, perm, lam)
        if a.specaugment:
            feats = spec_augment(feats, self.gen, a.time_masks, a.time_mask_frames, a.freq_masks, a.freq_mask_bins)
        out = self.model.backbone(feats)
        loss = self.task.loss(out, batch)
        if perm is not None:  # the loss is linear in the target: mix the two losses
            other = {k: (v[perm.to(v.device)] if torch.is_tensor(v) else v) for k, v in batch.items()}
            loss = lam * loss + (1 - lam) * self.task.loss(out, other)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["audio"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model(batch["audio"])
        probs = self.task.probabilities(out)
        self._val.append((probs.cpu().numpy(), batch["clip_index"].cpu().numpy(), batch["target"].cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        probs = np.concatenate([v[0] for v in self._val])
        idx = np.concatenate([v[1] for v in self._val])
        tgt = np.concatenate([v[2] for v in self._val])
        self._val.clear()
        clip_probs = pool_windows(probs, idx, self.n_val_clips, self.data_cfg.eval_pooling)
        targets = np.zeros(self.n_val_clips, np.int64)
        targets[idx] = tgt
        rep = self.task.evaluate(clip_probs, targets)
        loss = F.nll_loss(torch.log(torch.as_tensor(clip_probs).clamp_min(1e-12)), torch.as_tensor(targets))
        self.log("val/loss", loss.float(), prog_bar=False)
        for k, v in rep.items():
            if isinstance(v, float):
                self.log(f"val/{k}", v, prog_bar=k == self.task.monitor)

    def configure_optimizers(self) -> Any:
        o = self.optim_cfg
        if o.name == "adamw":
            opt = torch.optim.AdamW(self.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        elif o.name == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)
        else:
            raise ValueError(f"unknown optimizer {o.name!r} (adamw or sgd)")
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warm = int(o.warmup_epochs * per_epoch)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if o.schedule == "constant":
                return 1.0
            t = (step - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["earshot"] = self.meta
