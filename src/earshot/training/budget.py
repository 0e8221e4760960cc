"""A training time budget: as many epochs as fit in ``trainer.max_minutes``, with the learning-rate
schedule fitted to them.

Machines of the same kind differ by 2x in speed from one day to the next, and an AVX2 CPU without
bf16 trains the office SED recipe about 2x slower again than one with AMX (benchmarks/RESULTS.md). A
fixed number of epochs then either overruns a wall-clock budget or leaves part of it unused. With a
budget, after every epoch (validation included) the time left is divided by the mean duration of
the epochs so far (the first left out once there are others): the run plans that many more epochs,
capped by ``trainer.max_epochs``, and the cosine decay is stretched or shortened to end with the
last of them, so the run finishes annealed rather than cut off in mid-schedule. The first plan comes
after the first epoch, which ends in the warm-up of the default schedules (``optim.warmup_epochs: 1``).

The budget covers the fit (training and validation); the data set-up before it and the test
evaluation after it come on top. An interrupted run resumes with the time it had left.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from lightning.pytorch.callbacks import Callback

from earshot.errors import ConfigError
from earshot.training.schedules import StepFactor

log = logging.getLogger("earshot")


class TimeBudget(Callback):
    """Plans the epochs of a run from the time left and the last epoch's duration."""

    def __init__(self, minutes: float, max_epochs: int):
        if not minutes > 0:
            raise ConfigError(f"trainer.max_minutes must be > 0 (0 turns the budget off), got {minutes}")
        self.budget = 60.0 * minutes
        self.max_epochs = max_epochs
        self.elapsed = 0.0  # seconds of fit before this process (a resumed run)
        self.planned: int | None = None
        self.history: list[dict[str, float]] = []
        self._start = self._epoch_start = 0.0
        self._running = False

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start, self._running = time.monotonic() - self.elapsed, True
        if self.planned is not None:  # resumed: the plan the interrupted run had made
            self._apply(trainer, self.planned)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_start = time.monotonic()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # after the epoch's validation
        now = time.monotonic()
        took, self.elapsed = now - self._epoch_start, now - self._start
        done = trainer.current_epoch + 1
        left = self.budget - self.elapsed
        self.history.append({"epoch": done, "epoch_seconds": round(took, 1), "elapsed": round(self.elapsed, 1)})
        # an epoch's expected length: the mean of those after the first (which also starts the loader's
        # workers and fills its caches); the last one alone made the plan flicker by an epoch
        times = [h["epoch_seconds"] for h in self.history]
        est = sum(times[1:]) / (len(times) - 1) if len(times) > 1 else times[0]
        planned = min(self.max_epochs, done + max(0, math.floor(left / max(est, 1e-6))))
        self.history[-1]["planned"] = planned
        if planned != self.planned:
            log.info("time budget: epoch %d took %.0f s, %.0f s of %.0f left: %d epochs in all", done, took,
                     max(0.0, left), self.budget, planned)
        self.planned = planned
        self._apply(trainer, planned)
        if planned <= done:
            trainer.should_stop = True

    @staticmethod
    def _apply(trainer: Any, epochs: int) -> None:
        trainer.fit_loop.max_epochs = epochs
        for cfg in trainer.lr_scheduler_configs:
            for fn in getattr(cfg.scheduler, "lr_lambdas", []):
                if isinstance(fn, StepFactor):
                    fn.plan_epochs(epochs)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._running = False

    def state_dict(self) -> dict[str, Any]:
        if self._running:  # a mid-epoch checkpoint (trainer.checkpoint_every_n_steps) has the time to now
            self.elapsed = time.monotonic() - self._start
        return {"elapsed": self.elapsed, "planned": self.planned, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.elapsed, self.planned = float(state["elapsed"]), state["planned"]
        self.history = list(state.get("history", []))
