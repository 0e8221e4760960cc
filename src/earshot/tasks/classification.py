"""Single-label clip classification: softmax cross-entropy, top-k decoding, accuracy and MAP@k, and a
softmax temperature fitted on validation (calibration; it never changes the arg-max)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from earshot.data.manifest import Clip, SkipReport
from earshot.errors import ConfigError
from earshot.metrics.calibration import expected_calibration_error, fit_temperature, nll, rescale
from earshot.metrics.classification import classification_report
from earshot.tasks.base import ClipScoring, Crop

if TYPE_CHECKING:
    import torch


class ClassificationTask(ClipScoring):
    """Exactly one label per clip, out of ``labels``.

    ``merge`` (seed 003's class split/merge) maps each output class to the finer training classes
    it is made of, e.g. ``{Barking: [Barking], Other: [Other_vacuum, Other_door]}``: the model
    trains on the fine classes, and evaluation, prediction and reports sum their probabilities
    into the output classes. Evaluation clips may carry either kind of label.
    """

    name = "classification"
    monitor = "accuracy"
    headline = ("accuracy", "balanced_accuracy", "top3_accuracy", "map@3")

    def __init__(self, labels: Sequence[str], label_smoothing: float = 0.0, calibrate: bool = True,
                 temperature: float = 1.0, merge: dict[str, Any] | None = None, **_: Any):
        self.labels = list(labels)
        self.index = {lab: i for i, lab in enumerate(self.labels)}
        self.label_smoothing = label_smoothing
        self.calibrate = calibrate
        self.temperature = float(temperature)  # probabilities = softmax(logits / temperature)
        self.merge = self._check_merge(merge) if merge else None
        self.out_labels = list(self.merge) if self.merge else self.labels
        fine_to_out = {f: i for i, (k, fs) in enumerate((self.merge or {}).items()) for f in fs}
        self.to_out = np.array([fine_to_out.get(lab, i) for i, lab in enumerate(self.labels)], np.int64)
        self.out_index = {lab: i for i, lab in enumerate(self.out_labels)}

    def _check_merge(self, merge: dict[str, Any]) -> dict[str, list[str]]:
        """``{output class: [training classes]}``; a string or null value stands for one class (null:
        the key itself). Every training class must land in exactly one output class."""
        out: dict[str, list[str]] = {}
        owner: dict[str, str] = {}
        for k, v in merge.items():
            fine = [k] if v is None else [v] if isinstance(v, str) else list(v)
            if not fine:
                raise ConfigError(f"task.merge: output class {k!r} has no training class")
            for f in fine:
                if f in owner:
                    raise ConfigError(f"task.merge: {f!r} is under both {owner[f]!r} and {k!r}")
                if f not in self.index:
                    raise ConfigError(f"task.merge: {f!r} (under {k!r}) is not a training label, so {k!r} would "
                                      f"be scored on a class the model never learns; training labels: {self.labels}")
                owner[f] = k
            out[str(k)] = [str(f) for f in fine]
        unmapped = [lab for lab in self.labels if lab not in owner]
        if unmapped:
            raise ConfigError(f"task.merge leaves training label(s) {unmapped} unmapped; put each under an output "
                              "class (write `X: X` to keep a class as it is)")
        return out

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
            elif self.merge and c.labels[0] in self.out_index and c.labels[0] not in self.index:
                if where == "train":
                    skipped.add(c.path, f"training clip label {c.labels[0]!r} is an output class of task.merge; "
                                        f"training needs one of its classes {self.merge[c.labels[0]]}")
                else:
                    out.append(c)
            elif c.labels[0] not in self.index:
                skipped.add(c.path, f"{where} clip label {c.labels[0]!r} is absent from the training labels")
            else:
                out.append(c)
        return out

    def target(self, clip: Clip, crop: Crop | None = None) -> np.ndarray:
        """The class index, as a 0-d int64 array. With ``merge``, an evaluation clip labelled with an
        output class gets ``len(labels) + its index`` (never trained on)."""
        lab = clip.labels[0]
        return np.asarray(self.index[lab] if lab in self.index else len(self.labels) + self.out_index[lab], np.int64)

    def _out(self, probs: np.ndarray, targets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and targets over the output classes (``merge`` sums the fine classes)."""
        if not self.merge:
            return probs, targets
        p = np.zeros(probs.shape[:-1] + (len(self.out_labels),), np.float64)
        np.add.at(p.T, self.to_out, np.asarray(probs, np.float64).T)
        if targets is None:
            return p, None
        t = np.asarray(targets).reshape(-1)
        fine = t < len(self.labels)
        return p, np.where(fine, self.to_out[np.minimum(t, len(self.labels) - 1)], t - len(self.labels))

    def sampling_keys(self, clip: Clip) -> list[str]:
        return list(clip.labels)

    def prepare(self, train: Sequence[Clip]) -> None:
        """Nothing to fit."""

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy, weighted per clip by ``batch['weight']`` (B,) when present."""
        import torch
        from torch.nn import functional as F

        logits = outputs["clip_logits"].float()  # (B, C)
        target = batch["target"]
        if self.merge:  # evaluation clips labelled with an output class have no fine target: left out
            target = torch.where(target < logits.shape[-1], target, torch.full_like(target, -100))
        per = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing, reduction="none")
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
        fine = targets < len(self.labels)  # with merge, clips labelled with an output class do not count
        probs, targets = probs[fine], targets[fine]
        if not len(targets):
            return {}
        t = fit_temperature(probs, targets)
        after = rescale(probs, t)
        out = {"temperature": self.temperature * t, "val_ece_before": expected_calibration_error(probs, targets),
               "val_ece_after": expected_calibration_error(after, targets), "val_nll_before": nll(probs, targets),
               "val_nll_after": nll(after, targets)}
        self.temperature *= t
        return out

    def decode(self, probs: np.ndarray, top_k: int | None = None) -> list[tuple[str, float]]:
        """Top-k ``(label, probability)`` pairs over the output classes (k = 3 unless given)."""
        probs = self._out(np.asarray(probs))[0]
        order = np.argsort(-probs)[: max(1, 3 if top_k is None else top_k)]
        return [(self.out_labels[i], float(probs[i])) for i in order]

    def evaluate(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        raw = rescale(probs, 1.0 / self.temperature) if self.temperature != 1.0 else None
        probs, targets = self._out(np.asarray(probs), np.asarray(targets).reshape(-1))
        out = classification_report(probs, targets, self.out_labels)
        if raw is not None:  # the same clips without the fitted temperature, for comparison
            out["ece_uncalibrated"] = expected_calibration_error(self._out(raw)[0], targets)
        return out

    def judge(self, probs: np.ndarray, target: np.ndarray) -> tuple[bool, float]:
        p, t = self._out(np.asarray(probs)[None], np.asarray(target).reshape(1))
        return bool(int(np.argmax(p[0])) == int(t[0])), float(np.max(p[0]))

    def plots(self, report: dict[str, Any], out_dir: Path, prefix: str = "") -> dict[str, Path]:
        from earshot.report.plots import class_accuracy_plot, confusion_plot

        return {"class_accuracy": class_accuracy_plot(report, out_dir / f"{prefix}class_accuracy.png"),
                "confusion_matrix": confusion_plot(report, out_dir / f"{prefix}confusion_matrix.png")}

    def per_class_table(self, report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        acc, ap, sup = report["per_class_accuracy"], report["per_class_ap"], report["support"]
        return ["class", "clips", "accuracy", "AP"], [[lab, sup[lab], acc[lab], ap[lab]] for lab in self.out_labels]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "label_smoothing": self.label_smoothing,
                "calibrate": self.calibrate, "temperature": self.temperature, "merge": self.merge}
