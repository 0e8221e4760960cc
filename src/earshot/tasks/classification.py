"""Single-label clip classification: targets, loss and decoding."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from earshot.data.manifest import Clip
from earshot.metrics.classification import classification_report


class ClassificationTask:
    """Softmax cross-entropy over ``labels``; one label per clip."""

    name = "classification"
    monitor = "accuracy"  # the validation metric that picks the best checkpoint

    def __init__(self, labels: Sequence[str], label_smoothing: float = 0.0):
        self.labels = list(labels)
        self.index = {lab: i for i, lab in enumerate(self.labels)}
        self.label_smoothing = label_smoothing

    def target(self, clip: Clip) -> int:
        """Integer class index of a clip."""
        return self.index[clip.label]

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy, weighted per clip by ``batch['weight']`` (B,) when present."""
        logits = outputs["clip_logits"]  # (B, C)
        per = F.cross_entropy(logits, batch["target"], label_smoothing=self.label_smoothing, reduction="none")
        w = batch.get("weight")
        return (per * w).sum() / w.sum() if w is not None else per.mean()

    def probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, C)`` softmax of the clip logits."""
        return outputs["clip_logits"].float().softmax(-1)

    def decode(self, probs: np.ndarray, top_k: int = 3) -> list[tuple[str, float]]:
        """Top-k ``(label, probability)`` pairs for one clip's probabilities ``(C,)``."""
        order = np.argsort(-probs)[: max(1, top_k)]
        return [(self.labels[i], float(probs[i])) for i in order]

    def evaluate(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        return classification_report(probs, targets, self.labels)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "label_smoothing": self.label_smoothing}


TASKS = {"classification": ClassificationTask}


def create_task(name: str, labels: Sequence[str], **kwargs: Any) -> ClassificationTask:
    """Build a task by name."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](labels, **kwargs)
