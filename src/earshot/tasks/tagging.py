"""Multi-label tagging: sigmoid outputs, binary cross-entropy, per-class thresholds tuned on validation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from earshot.data.manifest import Clip, SkipReport
from earshot.metrics.tagging import tagging_report, tune_thresholds
from earshot.tasks.base import ClipScoring, Crop

if TYPE_CHECKING:
    import torch


NO_TAG = "(no tag)"  # the sampling key of an all-negative clip


class TaggingTask(ClipScoring):
    """Any number of labels per clip (none too: an all-negative example)."""

    name = "tagging"
    monitor = "mAP"
    headline = ("roc_auc_macro", "roc_auc_micro", "mAP", "f1_macro", "f1_micro")

    def __init__(self, labels: Sequence[str], threshold: float = 0.5, thresholds: Sequence[float] | None = None,
                 pos_weight: str | Sequence[float] = "none", tune_thresholds: bool = True, **_: Any):
        self.labels = list(labels)
        self.index = {lab: i for i, lab in enumerate(self.labels)}
        self.threshold = float(threshold)
        self.thresholds = np.asarray(thresholds if thresholds is not None else [threshold] * len(self.labels),
                                     np.float64)
        self.pos_weight_mode = pos_weight if isinstance(pos_weight, str) else "given"
        self.pos_weight = None if isinstance(pos_weight, str) else np.asarray(list(pos_weight), np.float32)
        self.tune_thresholds = tune_thresholds

    def admit(self, clips: Sequence[Clip], where: str, skipped: SkipReport) -> list[Clip]:
        """Clips whose tags are all known; a clip without tags is kept as all-negative and noted."""
        out = []
        for c in clips:
            unknown = [lab for lab in c.labels if lab not in self.index]
            if unknown:
                skipped.add(c.path, f"{where} clip tag(s) {unknown} absent from the training labels")
                continue
            if not c.labels:
                skipped.note(c.path, f"{where} clip has no positive tag: kept as an all-negative example")
            out.append(c)
        return out

    def target(self, clip: Clip, crop: Crop | None = None) -> np.ndarray:
        """Multi-hot float32 ``(C,)``."""
        y = np.zeros(len(self.labels), np.float32)
        y[[self.index[lab] for lab in clip.labels]] = 1.0
        return y

    def sampling_keys(self, clip: Clip) -> list[str]:
        return list(clip.labels) or [NO_TAG]

    def prepare(self, train: Sequence[Clip]) -> None:
        """With ``pos_weight='balanced'``, weight each class's positives by n_neg / n_pos (at most 100)."""
        if self.pos_weight_mode != "balanced":
            return
        pos = np.zeros(len(self.labels))
        for c in train:
            pos[[self.index[lab] for lab in c.labels]] += 1
        w = (len(train) - pos) / np.maximum(pos, 1)
        self.pos_weight = np.clip(w, 1.0, 100.0).astype(np.float32)

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Binary cross-entropy per class, weighted per clip by ``batch['weight']`` when present."""
        import torch
        from torch.nn import functional as F

        logits = outputs["clip_logits"].float()  # (B, C)
        pw = torch.as_tensor(self.pos_weight, device=logits.device) if self.pos_weight is not None else None
        per = F.binary_cross_entropy_with_logits(logits, batch["target"].float(), pos_weight=pw,
                                                 reduction="none").mean(1)
        w = batch.get("weight")
        return (per * w).sum() / w.sum().clamp_min(1e-8) if w is not None else per.mean()

    def probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return outputs["clip_logits"].float().sigmoid()

    def tune(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """Per-class thresholds that maximise validation F1 (kept in the checkpoint)."""
        if self.tune_thresholds:
            self.thresholds = tune_thresholds(probs, np.asarray(targets), self.threshold)
        return {"thresholds": {lab: float(t) for lab, t in zip(self.labels, self.thresholds)}}

    def decode(self, probs: np.ndarray, top_k: int | None = None) -> list[tuple[str, float]]:
        """Every tag at or above its threshold, most probable first (``top_k`` caps the count)."""
        on = [i for i in np.argsort(-probs) if probs[i] >= self.thresholds[i]]
        return [(self.labels[i], float(probs[i])) for i in (on if top_k is None else on[:top_k])]

    def evaluate(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        return tagging_report(probs, targets, self.labels, self.thresholds)

    def judge(self, probs: np.ndarray, target: np.ndarray) -> tuple[bool, float]:
        pred = probs >= self.thresholds
        wrong = pred != (np.asarray(target) > 0.5)
        return bool(not wrong.any()), float(np.abs(probs - self.thresholds)[wrong].max()) if wrong.any() else 0.0

    def plots(self, report: dict[str, Any], out_dir: Path, prefix: str = "") -> dict[str, Path]:
        from earshot.report.plots import class_auc_ap_plot

        return {"class_auc_ap": class_auc_ap_plot(report, out_dir / f"{prefix}class_auc_ap.png")}

    def per_class_table(self, report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        auc, ap, f1 = report["per_class_auc"], report["per_class_ap"], report["per_class_f1"]
        thr, sup = report["thresholds"], report["support"]
        return (["class", "positives", "ROC-AUC", "AP", "F1", "threshold"],
                [[lab, sup[lab], auc[lab], ap[lab], f1[lab], thr[lab]] for lab in self.labels])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "threshold": self.threshold,
                "thresholds": [float(t) for t in self.thresholds], "tune_thresholds": self.tune_thresholds,
                "pos_weight": self.pos_weight.tolist() if self.pos_weight is not None else self.pos_weight_mode}
