"""Model cost: parameters and multiply-accumulates per second of audio."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from earshot.models.registry import AudioModel, count_parameters


def macs_per_second(model: AudioModel, seconds: float = 1.0) -> int:
    """MACs of one forward pass over ``seconds`` of audio, divided by ``seconds``.

    Counts matrix products and convolutions (the mel projection included; the FFT is not).
    """
    x = torch.zeros(1, int(model.sample_rate * seconds))
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    model.train(was_training)
    return int(fc.get_total_flops() / 2 / seconds)


def model_cost(model: AudioModel) -> dict[str, int]:
    return {"params": count_parameters(model), "macs_per_second": macs_per_second(model, 2.0)}
