"""Single-label clip classification: softmax cross-entropy, top-k decoding, accuracy and MAP@k, and a
softmax temperature fitted on validation (calibration; it never changes the arg-max)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from earshot.data.manifest import Clip, SkipReport
from earshot.errors import ConfigError
from earshot.metrics.calibration import expected_calibration_error, fit_temperature, nll, rescale
from earshot.metrics.classification import classification_report
from earshot.tasks.base import ClipScoring, Crop


class ClassificationTask(ClipScoring):
    """Exactly one label per clip, out of ``labels``."""

    name = "classification"
    monitor = "accuracy"
    headline = ("accuracy", "balanced_accuracy", "top3_accuracy", "map@3")

    def __init__(self, labels: Sequence[str], label_smoothing: float = 0.0, calibrate: bool = True,
                 temperature: float = 1.0, **_: Any):
        self.labels = list(labels)
        self.index = {lab: i for i, lab in enumerate(self.labels)}
        self.label_smoothing = label_smoothing
        self.calibrate = calibrate
        self.temperature = float(temperature)  # probabilities = softmax(logits / temperature)

    def admit(self, clips: Sequence[Clip], where: str, skipped: SkipReport) -> list[Clip]:
        """Clips with one known label. Several labels on a clip means the data is multi-label: an error."""
        multi = [c for c in clips if len(c.labels) > 1]
        if multi:
            raise ConfigError(f"{len(multi)} {where} clip(s) have several labels (e.g. {multi[0].path}: "
                              f"{multi[0].labels}); classification needs one label per clip. For multi-label "
                              "data set task.name=tagging")
        out = []
        for c in clips:
            if not c.labels:
                skipped.add(c.path, f"{where} clip has no label; classification needs exactly one")
            elif c.labels[0] not in self.index:
                skipped.add(c.path, f"{where} clip label {c.labels[0]!r} is absent from the training labels")
            else:
                out.append(c)
        return out

    def target(self, clip: Clip, crop: Crop | None = None) -> np.ndarray:
        """The class index, as a 0-d int64 array."""
        return np.asarray(self.index[clip.labels[0]], np.int64)

    def sampling_keys(self, clip: Clip) -> list[str]:
        return list(clip.labels)

    def prepare(self, train: Sequence[Clip]) -> None:
        """Nothing to fit."""

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy, weighted per clip by ``batch['weight']`` (B,) when present."""
        logits = outputs["clip_logits"].float()  # (B, C)
        per = F.cross_entropy(logits, batch["target"], label_smoothing=self.label_smoothing, reduction="none")
        w = batch.get("weight")
        return (per * w).sum() / w.sum().clamp_min(1e-8) if w is not None else per.mean()

    def probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return (outputs["clip_logits"].float() / self.temperature).softmax(-1)

    def tune(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """The softmax temperature that minimises validation NLL (``calibrate``), with the ECE and NLL
        before and after. The arg-max, hence accuracy, is unchanged."""
        if not self.calibrate:
            return {}
        targets = np.asarray(targets).reshape(-1)
        t = fit_temperature(probs, targets)
        after = rescale(probs, t)
        out = {"temperature": self.temperature * t, "val_ece_before": expected_calibration_error(probs, targets),
               "val_ece_after": expected_calibration_error(after, targets), "val_nll_before": nll(probs, targets),
               "val_nll_after": nll(after, targets)}
        self.temperature *= t
        return out

    def decode(self, probs: np.ndarray, top_k: int | None = None) -> list[tuple[str, float]]:
        """Top-k ``(label, probability)`` pairs (k = 3 unless given)."""
        order = np.argsort(-probs)[: max(1, 3 if top_k is None else top_k)]
        return [(self.labels[i], float(probs[i])) for i in order]

    def evaluate(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        targets = np.asarray(targets).reshape(-1)
        out = classification_report(probs, targets, self.labels)
        if self.temperature != 1.0:  # the same clips without the fitted temperature, for comparison
            out["ece_uncalibrated"] = expected_calibration_error(rescale(probs, 1.0 / self.temperature), targets)
        return out

    def judge(self, probs: np.ndarray, target: np.ndarray) -> tuple[bool, float]:
        return bool(int(np.argmax(probs)) == int(target)), float(np.max(probs))

    def plots(self, report: dict[str, Any], out_dir: Path, prefix: str = "") -> dict[str, Path]:
        from earshot.report.plots import class_accuracy_plot, confusion_plot

        return {"class_accuracy": class_accuracy_plot(report, out_dir / f"{prefix}class_accuracy.png"),
                "confusion_matrix": confusion_plot(report, out_dir / f"{prefix}confusion_matrix.png")}

    def per_class_table(self, report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        acc, ap, sup = report["per_class_accuracy"], report["per_class_ap"], report["support"]
        return ["class", "clips", "accuracy", "AP"], [[lab, sup[lab], acc[lab], ap[lab]] for lab in self.labels]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "label_smoothing": self.label_smoothing,
                "calibrate": self.calibrate, "temperature": self.temperature}
