"""Interrupted runs lose nothing but the steps since their last checkpoint, and resume exactly.

- Every random draw of a training step is a function of ``(seed, step)`` or
  ``(seed, epoch, position)``: the data order and each example's crop and augmentation come from
  :class:`~earshot.data.loading.EpochSampler`, and :class:`Resumable` re-seeds torch's generator
  (dropout) and the module's generator (SpecAugment, mixup) before each step. A run resumed from
  any checkpoint therefore takes the same steps as one that never stopped.
- ``trainer.checkpoint_every_n_steps`` writes ``last.ckpt`` every N optimizer steps, not only at
  the end of an epoch; the loader's position in its epoch is saved with it.
- Ctrl-C (SIGINT) finishes the current step, writes ``last.ckpt``, stops, and the command prints
  how to resume. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch

from earshot.data.loading import _mix
from earshot.distributed import any_rank
from earshot.errors import EarshotError


class Interrupted(EarshotError):
    """Training stopped on request; ``run`` can be resumed with ``earshot train --resume RUN``."""

    exit_code = 130  # the shell's code for a Ctrl-C

    def __init__(self, run: Path, step: int):
        self.run, self.step = run, step
        super().__init__(f"interrupted after step {step}: {run / 'checkpoints' / 'last.ckpt'} holds it; "
                         f"resume with: earshot train --resume {run}")


class StopRequested(Exception):
    """Raised after the checkpoint of a Ctrl-C is written, to leave ``fit`` before anything else
    (validation, an epoch-end checkpoint) runs and overwrites it."""


class Resumable(L.Callback):
    """Per-step seeding, the loader's position, step checkpoints and a clean Ctrl-C."""

    def __init__(self, seed: int, ckdir: Path, every_n_steps: int = 0, loader: Any = None):
        self.seed, self.ckdir, self.every = seed, Path(ckdir), every_n_steps
        self.loader = loader  # the training ResumableLoader
        self.interrupted = False
        self._previous: Any = None

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Hand the loader its place in the epoch. (Lightning 2.6 does this itself only when the
        checkpoint is restored before the loader is first set up, which ``fit(ckpt_path=...)`` does
        not; doing it twice is harmless.)"""
        states = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {}).get("combined_loader")
        if states and self.loader is not None and hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(states[0])

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.verbose = trainer.is_global_zero
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # every rank: Ctrl-C reaches them all
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exc: BaseException) -> None:
        self.on_train_end(trainer, module)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupted:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.interrupted = True
        if getattr(self, "verbose", True):
            print("\nstopping after this step (Ctrl-C again to stop at once) ...", flush=True)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        step, rank = trainer.global_step, trainer.global_rank
        own = () if rank == 0 else (rank,)  # under DDP each rank draws its own
        torch.manual_seed(_mix(self.seed, step, 1, *own))  # dropout and anything else on torch's generator
        gen = getattr(module, "gen", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(_mix(self.seed, step, 2, *own))  # SpecAugment, mixup

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loader = trainer.train_dataloader
        if hasattr(loader, "consumed"):
            loader.consumed = batch_idx + 1
        step = trainer.global_step
        self.interrupted = any_rank(self.interrupted)  # every rank stops at the same step
        if self.interrupted or (self.every and step % self.every == 0):
            trainer.save_checkpoint(self.ckdir / "last.ckpt")
        if self.interrupted:
            raise StopRequested()
