"""Learning-rate schedules: warm-up + cosine or constant (per step), and SampleCNN's stages."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from earshot.config import OptimConfig

log = logging.getLogger("earshot")


class StepFactor:
    """The per-step learning-rate factor of :func:`step_schedule`. A callable object rather than a
    closure, so that its plan (``total`` steps) can change during training (``trainer.max_minutes``
    refits it to the epochs that fit the budget) and travels in checkpoints with the scheduler."""

    def __init__(self, schedule: str, warm: int, total: int, per_epoch: int):
        self.schedule, self.warm, self.total, self.per_epoch = schedule, warm, total, per_epoch

    def plan_epochs(self, epochs: int) -> None:
        """Decay over ``epochs`` epochs in all (the warm-up is unchanged)."""
        self.total = max(1, epochs * self.per_epoch)

    def __call__(self, step: int) -> float:
        if step < self.warm:
            return (step + 1) / self.warm
        if self.schedule in ("constant", "staged"):
            return 1.0
        t = (step - self.warm) / max(1, self.total - self.warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def step_schedule(opt: torch.optim.Optimizer, o: OptimConfig, total_steps: int, steps_per_epoch: int
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up for ``warmup_epochs``, then cosine decay to 0 or a constant rate.

    The staged schedule has no warm-up and a constant rate: :class:`StagedLearningRate` changes it.
    """
    warm = 0 if o.schedule == "staged" else int(o.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(opt, StepFactor(o.schedule, warm, total_steps, steps_per_epoch))


class StagedLearningRate(Callback):
    """SampleCNN's staged training (seed 002).

    When the monitored validation metric has not improved for ``patience`` epochs, the stage
    ends: the best weights so far are reloaded, the optimizer's momentum is reset and the
    learning rate is multiplied by ``lr_decay``. Training stops when stage ``num_stages`` ends.
    """

    def __init__(self, monitor: str, patience: int = 2, lr_decay: float = 0.2, num_stages: int = 5):
        self.monitor, self.patience, self.lr_decay, self.num_stages = monitor, patience, lr_decay, num_stages
        self.stage, self.wait, self.best = 1, 0, -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if value > self.best:
            self.best, self.wait = value, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in pl_module.model.state_dict().items()})
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.history.append({"stage": self.stage, "epoch": trainer.current_epoch, "best": self.best})
        if self.stage >= self.num_stages:
            log.info("stage %d of %d ended: stopping", self.stage, self.num_stages)
            trainer.should_stop = True
            return
        if self.best_state is not None:
            pl_module.model.load_state_dict(self.best_state)
        for opt in trainer.optimizers:
            opt.state.clear()  # fresh momentum, as a new optimizer in the seed
            for g in opt.param_groups:
                g["lr"] *= self.lr_decay
        for cfg in trainer.lr_scheduler_configs:  # keep the (constant) scheduler from undoing the decay
            cfg.scheduler.base_lrs = [b * self.lr_decay for b in cfg.scheduler.base_lrs]
        self.stage += 1
        self.wait = 0
        log.info("stage %d: best weights reloaded, learning rate x%g", self.stage, self.lr_decay)

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "wait": self.wait, "best": self.best, "best_state": self.best_state,
                "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage, self.wait, self.best = state["stage"], state["wait"], state["best"]
        self.best_state, self.history = state["best_state"], state["history"]
