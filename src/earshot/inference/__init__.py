"""Inference from a checkpoint."""

from earshot.inference.predictor import Prediction, Predictor, list_audio, load

__all__ = ["Prediction", "Predictor", "list_audio", "load"]
