"""An exponential moving average of the weights, validated and saved in place of the raw weights.

``trainer.ema_decay=0.999`` keeps ``ema = d * ema + (1 - d) * weights`` after every optimizer step,
as timm's ``ModelEmaV3`` and the DCASE Task 4 baselines' teacher do. Early in training the decay
ramps up as ``min(d, (1 + n) / (10 + n))`` over the first ``n`` updates, so the average is not held
back by the random initial weights. Validation, the best and last checkpoints and the final
evaluation all use the averaged weights; a checkpoint also keeps the raw ones, so that
``earshot train --resume`` continues training from them exactly.

Built on Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging`, which swaps the weights
in for validation and writes both states into checkpoints.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import WeightAveraging

from earshot.errors import ConfigError


class WarmupEMA:
    """``avg_fn`` for :class:`torch.optim.swa_utils.AveragedModel`: EMA with a ramped decay."""

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"trainer.ema_decay must be in (0, 1) (0 turns it off), got {decay}")
        self.decay = decay

    def rate(self, n_averaged: int) -> float:
        """The decay used for the update after ``n_averaged`` earlier ones."""
        return min(self.decay, (1.0 + n_averaged) / (10.0 + n_averaged))

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, n_averaged: torch.Tensor) -> torch.Tensor:
        d = self.rate(int(n_averaged))
        return averaged * d + current * (1.0 - d)


class EMAWeights(WeightAveraging):
    """Lightning's weight averaging with :class:`WarmupEMA`, updated after every optimizer step."""

    def __init__(self, decay: float):
        super().__init__(avg_fn=WarmupEMA(decay), use_buffers=True)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None
