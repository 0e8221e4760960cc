"""Mean teacher (Tarvainen & Valpola 2017), as in the DCASE Task 4 baselines since 2019.

The teacher is an exponential moving average of the student's weights. On every clip of a batch,
labelled or not, the student's frame and clip probabilities are pulled towards the teacher's
(mean squared error), with a weight that ramps up from zero.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F


class MeanTeacher(nn.Module):
    """Holds the EMA teacher; :meth:`consistency` is the loss, :meth:`update` follows each optimizer step."""

    def __init__(self, student: nn.Module, decay: float = 0.999, weight: float = 2.0, rampup_steps: int = 1000):
        super().__init__()
        self.teacher = copy.deepcopy(student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.decay, self.weight, self.rampup_steps = decay, weight, max(1, rampup_steps)

    def ramp(self, step: int) -> float:
        """Sigmoid ramp-up ``exp(-5 (1 - t)^2)`` over the first ``rampup_steps`` steps."""
        t = min(1.0, step / self.rampup_steps)
        return self.weight * math.exp(-5.0 * (1.0 - t) ** 2)

    def consistency(self, feats: torch.Tensor, student_out: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        """Weighted MSE between student and teacher probabilities, frames and clips, on ``feats``."""
        self.teacher.train(student_out["clip_logits"].requires_grad)
        with torch.no_grad():
            t = self.teacher.forward_features(feats)
        loss = F.mse_loss(student_out["clip_logits"].float().sigmoid(), t["clip_logits"].float().sigmoid())
        if "frame_logits" in student_out:
            loss = loss + F.mse_loss(student_out["frame_logits"].float().sigmoid(), t["frame_logits"].float().sigmoid())
        return self.ramp(step) * loss

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> None:
        """teacher = a * teacher + (1 - a) * student, with ``a`` below ``decay`` early on; buffers copied."""
        a = min(self.decay, 1.0 - 1.0 / (step + 1))
        for pt, ps in zip(self.teacher.parameters(), student.parameters()):
            pt.mul_(a).add_(ps.detach(), alpha=1.0 - a)
        for bt, bs in zip(self.teacher.buffers(), student.buffers()):
            bt.copy_(bs)
