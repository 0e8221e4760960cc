"""The Lightning module: a generic loop around a model and a task."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch

from earshot.config import AugmentConfig, OptimConfig
from earshot.data.augment import filter_augment, mixup_apply, mixup_draw, spec_augment
from earshot.data.loading import pool_windows, stitch_clips
from earshot.models.registry import AudioModel
from earshot.tasks import Task
from earshot.distributed import gather
from earshot.training.mean_teacher import MeanTeacher
from earshot.training.schedules import step_schedule

log = logging.getLogger("earshot")


class EarshotModule(L.LightningModule):
    """Trains ``model`` with ``task.loss``; validates by pooling window probabilities per clip and
    scoring them with ``task.evaluate``."""

    def __init__(self, model: AudioModel, task: Task, optim: OptimConfig, meta: dict[str, Any],
                 val_targets: np.ndarray | None = None, pooling: str = "mean",
                 augment: AugmentConfig | None = None, seed: int = 0, monitor: str | None = None,
                 mean_teacher: MeanTeacher | None = None, val_clips: list[Any] | None = None):
        super().__init__()
        self.aug = augment or AugmentConfig()
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.model = model
        self.task = task
        self.optim_cfg = optim
        self.meta = meta  # stored in every checkpoint under "earshot"
        self.val_targets = val_targets  # one target per validation clip
        self.pooling = pooling
        self.monitor = monitor or task.monitor  # the metric that picks the best checkpoint
        self._val: list[tuple[np.ndarray, np.ndarray]] = []
        self.mean_teacher = mean_teacher  # consistency with an EMA teacher (training/mean_teacher.py)
        self.val_clips = val_clips  # frame tasks score validation clips from their frames
        self._frames: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(audio)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        a = self.aug
        mix = a.mixup_alpha > 0 and len(batch["audio"]) > 1
        perm, lam = mixup_draw(len(batch["audio"]), a.mixup_alpha, self.gen) if mix else (None, 1.0)
        audio = batch["audio"]  # (B, N)
        if perm is not None and a.mixup_on == "waveform":
            audio = mixup_apply(audio, perm, lam)
        feats = self.model.features(audio)  # (B, T, F) log-mel, or (B, N) waveform
        if perm is not None and a.mixup_on == "logmel":
            feats = mixup_apply(feats, perm, lam)
        if a.filter_augment:
            norm = getattr(getattr(self.model, "input", None), "norm", None)
            per_db = 1.0 / norm.std if hasattr(norm, "std") else None  # features standardised per band
            feats = filter_augment(feats, self.gen, tuple(a.filter_db), tuple(a.filter_bands), a.filter_min_bins, per_db)
        if a.specaugment:
            feats = spec_augment(feats, self.gen, a.time_masks, a.time_mask_frames, a.freq_masks, a.freq_mask_bins)
        out = self.model.forward_features(feats)
        loss = self.task.loss(out, batch)
        if perm is not None:  # the loss is linear in the target: mix the two losses
            other = {k: (v[perm.to(v.device)] if torch.is_tensor(v) else v) for k, v in batch.items()}
            loss = lam * loss + (1 - lam) * self.task.loss(out, other)
        if self.mean_teacher is not None:
            cons = self.mean_teacher.consistency(feats, out, self.global_step)
            self.log("train/consistency", cons, on_step=False, on_epoch=True, batch_size=len(batch["audio"]))
            loss = loss + cons
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["audio"]))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.mean_teacher is not None:
            self.mean_teacher.update(self.model, self.global_step)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model(batch["audio"])  # one row per window
        _, row = torch.unique_consecutive(batch["clip_index"], return_inverse=True)  # window -> its clip's target
        loss = self.task.loss(out, {"target": batch["target"][row]})
        self.log("val/loss", loss, batch_size=len(batch["audio"]), sync_dist=True)
        self._val.append((self.task.probabilities(out).cpu().numpy(), batch["clip_index"].cpu().numpy()))
        if self.task.frame_outputs:  # (W, T', C) frames and where each window starts
            self._frames.append((self.task.frame_probabilities(out).cpu().numpy(), batch["start"].cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if self.val_targets is None:
            return
        # under DDP each rank scored its own clips: every rank gathers all of them, then pools and scores
        parts = gather((self._val, self._frames))
        self._val = [v for p in parts for v in p[0]]
        self._frames = [f for p in parts for f in p[1]]
        if not self._val:
            return
        probs = np.concatenate([v[0] for v in self._val])
        idx = np.concatenate([v[1] for v in self._val])
        self._val.clear()
        clip_probs = pool_windows(probs, idx, len(self.val_targets), self.pooling)
        if self.task.frame_outputs and self.val_clips is not None:
            report = self.task.validation_report(self.val_clips, clip_probs, self._timelines(idx),
                                                 self.model.frame_hop_seconds)
        else:
            report = self.task.evaluate(clip_probs, self.val_targets)
        for k, v in report.items():
            if isinstance(v, float):
                self.log(f"val/{k}", v, prog_bar=k == self.monitor)
        if self.monitor in report and report[self.monitor] is None:  # e.g. no class with positives and negatives
            if not getattr(self, "_warned", False):
                log.warning("val/%s cannot be computed on these validation clips; logged as -1, so the first "
                            "epoch counts as best. Use a larger validation split.", self.monitor)
                self._warned = True
            self.log(f"val/{self.monitor}", -1.0)

    def _timelines(self, idx: np.ndarray) -> list[np.ndarray]:
        """Each validation clip's stitched frame probabilities ``(T, C)``."""
        frames = [f for fs, _ in self._frames for f in fs]
        starts = np.concatenate([s for _, s in self._frames])
        self._frames.clear()
        return stitch_clips(frames, starts, idx, self.val_clips, self.model.sample_rate, self.model.frame_hop_seconds)

    def param_groups(self) -> list[dict[str, Any]]:
        """The head (and any other module) at ``lr``; the backbone's blocks, in order, at
        ``lr * backbone_lr_scale * layer_decay ** (blocks above it)``; the input's fitted parameters
        (none are trained today) with the backbone's first block."""
        o = self.optim_cfg
        if o.backbone_lr_scale == 1.0 and o.layer_decay == 1.0:
            return [{"params": list(self.parameters()), "lr": o.lr}]
        blocks = [m for m in self.model.backbone.children() if any(True for _ in m.parameters())]
        own = [p for p in self.model.backbone.parameters(recurse=False)]
        groups, seen = [], set()
        for i, m in enumerate(blocks):
            scale = o.backbone_lr_scale * o.layer_decay ** (len(blocks) - 1 - i)
            ps = list(m.parameters()) + (own if i == 0 else [])
            groups.append({"params": ps, "lr": o.lr * scale})
            seen.update(id(p) for p in ps)
        rest = [p for p in self.parameters() if id(p) not in seen]
        return groups + [{"params": rest, "lr": o.lr}]

    def on_train_epoch_start(self) -> None:
        n = self.optim_cfg.freeze_backbone_epochs
        frozen = self.current_epoch < n
        for p in self.model.backbone.parameters():
            p.requires_grad_(not frozen)
        if n and self.current_epoch in (0, n):
            log.info("epoch %d: backbone %s", self.current_epoch, "frozen" if frozen else "trained from now on")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.current_epoch < self.optim_cfg.freeze_backbone_epochs:
            self.model.backbone.eval()  # frozen means its batch-norm statistics too

    def configure_optimizers(self) -> Any:
        o = self.optim_cfg
        groups = self.param_groups()
        if o.name == "adamw":
            opt = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                  nesterov=o.momentum > 0)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": step_schedule(opt, o, total, per_epoch),
                                                   "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.meta["task"] = self.task.describe()
        checkpoint["earshot"] = self.meta
