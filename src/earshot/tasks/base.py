"""The task protocol: everything that depends on what a label means lives behind it.

A task builds targets from a clip and a crop, computes the loss, turns logits into
probabilities, decodes them into labels, scores them, draws its plots and carries its own
state (e.g. tuned thresholds) in the checkpoint. Training, inference, the CLI and the report
call these methods and never branch on the task's kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from earshot.data.manifest import Clip, SkipReport

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Crop:
    """Where a training example sits in its clip: ``start`` and ``duration`` in seconds, and the
    model's frame hop (seconds between frames of ``frame_logits``), for frame-level targets."""

    start: float
    duration: float
    frame_hop: float


class Task(Protocol):
    """What every task implements (see :class:`~earshot.tasks.classification.ClassificationTask`)."""

    name: str
    labels: list[str]
    monitor: str  # validation metric that picks the best checkpoint (higher is better)
    headline: tuple[str, ...]  # the metrics printed after training and evaluation, most important first

    def admit(self, clips: Sequence[Clip], where: str, skipped: SkipReport) -> list[Clip]:
        """The clips this task can learn from or score; the rest are reported in ``skipped``."""

    def target(self, clip: Clip, crop: Crop | None = None) -> np.ndarray:
        """The training target of ``clip`` (of one crop of it, when given)."""

    def sampling_keys(self, clip: Clip) -> list[str]:
        """The classes a clip counts for when sampling is balanced."""

    def prepare(self, train: Sequence[Clip]) -> None:
        """Fit task state on the training clips (e.g. positive weights)."""

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training loss of a batch; ``batch['target']`` holds stacked :meth:`target` values."""

    def probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Clip probabilities ``(B, C)`` from the model's outputs."""

    def tune(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """Fit decision state on validation probabilities (e.g. thresholds); returns what it chose."""

    def decode(self, probs: np.ndarray, top_k: int | None = None) -> list[tuple[str, float]]:
        """``(label, probability)`` pairs a user sees for one clip's probabilities ``(C,)``."""

    def evaluate(self, probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """Every metric of the task, plus per-class figures, as a JSON-ready dict."""

    def judge(self, probs: np.ndarray, target: np.ndarray) -> tuple[bool, float]:
        """Is one clip's prediction right, and how confident was it (for "most confidently wrong")?"""

    def plots(self, report: dict[str, Any], out_dir: Path, prefix: str = "") -> dict[str, Path]:
        """Write the task's figures for an evaluation report; returns name -> file."""

    def per_class_table(self, report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of the per-class table in reports."""

    def describe(self) -> dict[str, Any]:
        """Name, labels and state: enough for :func:`create_task` to rebuild the task."""

    verb: str  # the CLI verb whose output this task's checkpoints make: "predict" or "detect"
    frame_outputs: bool  # scoring needs each clip's frame probabilities (detection)

    def tune_clips(self, clips: Sequence[Clip], probs: np.ndarray, frames: Sequence[np.ndarray] | None,
                   hop: float) -> dict[str, Any]:
        """:meth:`tune` on validation clips (``frames``: per-clip frame probabilities when
        :attr:`frame_outputs`)."""

    def score_clips(self, clips: Sequence[Clip], probs: np.ndarray, frames: Sequence[np.ndarray] | None,
                    hop: float) -> dict[str, Any]:
        """:meth:`evaluate` on labelled clips, with frame probabilities when :attr:`frame_outputs`."""


    def validation_report(self, clips: Sequence[Clip], probs: np.ndarray, frames: Sequence[np.ndarray],
                          hop: float) -> dict[str, Any]:
        """Frame tasks only: the metrics logged after each validation epoch."""


class ClipScoring:
    """``tune_clips`` and ``score_clips`` for tasks that decide per clip (classification, tagging)."""

    verb = "predict"
    frame_outputs = False

    def tune_clips(self, clips: Sequence[Clip], probs: np.ndarray, frames: Any, hop: float) -> dict[str, Any]:
        return self.tune(probs, np.stack([self.target(c) for c in clips]))  # type: ignore[attr-defined]

    def score_clips(self, clips: Sequence[Clip], probs: np.ndarray, frames: Any, hop: float) -> dict[str, Any]:
        return self.evaluate(probs, np.stack([self.target(c) for c in clips]))  # type: ignore[attr-defined]
