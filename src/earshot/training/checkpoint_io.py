"""Lightning's checkpoint writer, made atomic: a checkpoint goes to a temporary file in the same
folder, is flushed and fsynced, then renamed over the old one. A crash or a full disk mid-write
leaves the last good checkpoint in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from earshot.atomic import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(checkpoint, f))
