"""Self-describing checkpoints: the model, front-end, head, labels and task state travel with the
weights. Training writes them and inference reads them; both import this module, not each other.

A checkpoint is a Lightning checkpoint (``state_dict`` with ``model.`` keys, optimizer and loop
state for resuming) plus an ``earshot`` entry. It is always read with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from earshot.atomic import atomic_write
from earshot.errors import EarshotError
from earshot.models.registry import AudioModel, create_model
from earshot.tasks import Task, create_task

FORMAT = 2


@dataclass
class LoadedCheckpoint:
    model: AudioModel
    task: Task
    meta: dict[str, Any]


def build_meta(model: AudioModel, task: Task, window_seconds: float, hop_seconds: float, pooling: str,
               config: dict[str, Any]) -> dict[str, Any]:
    """The ``earshot`` entry every checkpoint carries."""
    from earshot import __version__

    return {
        "format": FORMAT,
        "version": __version__,
        "model": model.describe(),
        "task": task.describe(),
        "inference": {"clip_seconds": window_seconds, "hop_seconds": hop_seconds, "pooling": pooling},
        "config": config,
    }


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoints/best.ckpt``."""
    path = Path(path)
    if path.is_dir():
        for cand in (path / "checkpoints" / "best.ckpt", path / "best.ckpt"):
            if cand.exists():
                return cand
    if not path.exists():
        raise EarshotError(f"{path}: checkpoint not found")
    return path


def read(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict (tensors and plain data only: ``weights_only=True``)."""
    path = resolve(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise EarshotError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or "earshot" not in ckpt:
        raise EarshotError(f"{path}: not an earshot checkpoint (no 'earshot' entry)")
    if ckpt["earshot"].get("format") != FORMAT:
        raise EarshotError(f"{path}: checkpoint format {ckpt['earshot'].get('format')} is not the format {FORMAT} "
                           "this earshot reads; retrain with this version")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild model and task from a checkpoint alone."""
    ckpt = read(path, map_location)
    meta = ckpt["earshot"]
    m = meta["model"]
    args = dict(m["args"])
    model = create_model(m["name"], args.pop("n_classes"), frontend=m["frontend"], head=m["head"], **args)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    model.eval()
    t = dict(meta["task"])
    return LoadedCheckpoint(model, create_task(t.pop("name"), t.pop("labels"), **t), meta)


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash keeps the old file."""
    atomic_write(path, lambda f: torch.save(obj, f))


def update_task_state(path: str | Path, task: Task) -> None:
    """Store the task's current state (e.g. thresholds tuned on validation) in a checkpoint file."""
    ckpt = read(path)
    ckpt["earshot"]["task"] = task.describe()
    save_atomic(ckpt, resolve(path))
