"""earshot: train, evaluate and serve audio classifiers, taggers and sound event detectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from earshot.inference.predictor import Predictor


def load(path: str, device: str | None = None) -> "Predictor":
    """Load a trained checkpoint (or run folder) for prediction: ``earshot.load(p).predict("a.wav")``."""
    from earshot.inference.predictor import Predictor

    return Predictor.load(path, device)


def __getattr__(name: str) -> Any:  # light import: heavy modules load on first use
    if name in ("create_model", "list_models"):
        from earshot import models

        return getattr(models, name)
    if name == "train":
        from earshot.training.run import train

        return train
    raise AttributeError(name)
