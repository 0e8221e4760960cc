"""Inference from a checkpoint (PyTorch) or an exported model (ONNX Runtime).

The names below load on first use, so ``earshot.inference.onnx_backend`` runs without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Prediction", "Predictor", "list_audio", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from earshot.inference import predictor

        return getattr(predictor, name)
    raise AttributeError(name)
