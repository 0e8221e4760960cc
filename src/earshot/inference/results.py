"""What inference returns, in numpy alone: a clip's prediction, its detected events, a window's scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Prediction:
    """What the task decoded for one input (top-k labels, or the tags above their thresholds), plus
    the full probability vector and any notes."""

    source: str
    top: list[tuple[str, float]]
    probs: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        """The most probable decoded label (None when a tagger finds no tag above its threshold)."""
        return self.top[0][0] if self.top else None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.source, "top": [{"label": lab, "score": round(s, 6)} for lab, s in self.top],
                "notes": self.notes}


@dataclass
class Detection:
    """Events found in one input: ``(onset, offset, label, confidence)``, the clip's tag
    probabilities ``(C,)`` and frame probabilities ``(T, C)`` every ``hop`` seconds."""

    source: str
    events: list[tuple[float, float, str, float]]
    probs: np.ndarray
    frames: np.ndarray
    hop: float
    duration: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.source, "duration": round(self.duration, 3),
                "events": [{"onset": on, "offset": off, "label": lab, "confidence": conf}
                           for on, off, lab, conf in self.events], "notes": self.notes}


@dataclass
class WindowScores:
    """One window of a long recording: its span in seconds and the task's probabilities ``(C,)``."""

    source: str
    start: float
    end: float
    probs: np.ndarray
