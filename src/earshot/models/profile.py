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


def registry_table(n_classes: int = 10) -> list[str]:
    """One line per registered model: parameters, input, rate, front-end or input length, description."""
    from dataclasses import asdict

    from earshot.models.registry import create_model, list_models, model_spec

    rows = [("name", "params", "input", "rate", "front-end / input", "description")]
    for name in list_models():
        spec = model_spec(name)
        m = create_model(name, n_classes)
        fe = asdict(m.frontend_config)
        shape = (f"{fe['n_mels']} mels/{fe['n_fft']}/{fe['hop_length']}" if spec.input == "logmel"
                 else f"{spec.input_samples or 'any'} samples")
        rows.append((name, f"{count_parameters(m) / 1e6:.2f}M", spec.input, f"{fe['sample_rate']} Hz", shape,
                     spec.description))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    return lines + ["", f"params are counted for {n_classes} classes; front-end is mels/n_fft/hop "
                        "(model.frontend.*), the head is model.head.*"]
