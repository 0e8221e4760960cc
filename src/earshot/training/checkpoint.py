"""Self-describing checkpoints: the model, front-end, labels and task travel with the weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from earshot.errors import EarshotError
from earshot.models.registry import AudioModel, create_model
from earshot.tasks import create_task


@dataclass
class LoadedCheckpoint:
    model: AudioModel
    task: Any
    meta: dict[str, Any]


def build_meta(model: AudioModel, task: Any, clip_seconds: float, hop_seconds: float, pooling: str,
               config: dict[str, Any]) -> dict[str, Any]:
    """The ``earshot`` entry every checkpoint carries."""
    from earshot import __version__

    return {
        "format": 1,
        "version": __version__,
        "model": model.describe(),
        "task": task.describe(),
        "inference": {"clip_seconds": clip_seconds, "hop_seconds": hop_seconds, "pooling": pooling},
        "config": config,
    }


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild model and task from a checkpoint alone."""
    path = Path(path)
    if path.is_dir():
        for cand in (path / "checkpoints" / "best.ckpt", path / "best.ckpt"):
            if cand.exists():
                path = cand
                break
    if not path.exists():
        raise EarshotError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise EarshotError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    meta = ckpt.get("earshot")
    if meta is None:
        raise EarshotError(f"{path}: not an earshot checkpoint (no 'earshot' entry)")
    m = meta["model"]
    args = dict(m["args"])
    n_classes = args.pop("n_classes")
    model = create_model(m["name"], n_classes, frontend=m["frontend"], **args)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    model.eval()
    t = dict(meta["task"])
    task = create_task(t.pop("name"), t.pop("labels"), **t)
    return LoadedCheckpoint(model, task, meta)
