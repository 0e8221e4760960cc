"""``earshot export CHECKPOINT --format onnx``: the whole model, front-end included, as one ONNX graph.

The input is a mono waveform ``(batch, samples)`` at the model's sample rate, both axes dynamic.
The outputs are the task's probabilities ``(batch, C)`` (softmax with the fitted temperature, or
sigmoid) and, for detection, frame probabilities ``(batch, frames, C)``. The model's metadata
(``metadata_props``) holds what a runtime needs to use it without earshot: labels, the task and
its state (thresholds, temperature, decoding), the model description with the front-end
settings, the inference windowing and the earshot version.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from earshot.errors import EarshotError


class _Probabilities(torch.nn.Module):
    """Waveform -> the task's probabilities (and frame probabilities for frame tasks)."""

    def __init__(self, model: torch.nn.Module, task: Any):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, wave: torch.Tensor) -> Any:
        out = self.model(wave)
        probs = self.task.probabilities(out)
        if self.task.frame_outputs:
            return probs, self.task.frame_probabilities(out)
        return probs


def export_onnx(checkpoint: str | Path, out: str | Path, min_seconds: float | None = None) -> Path:
    """Write ``out`` (.onnx) for ``checkpoint``; returns its path."""
    try:
        import onnx
    except ImportError as e:
        raise EarshotError(f"ONNX export needs the [onnx] extra: pip install -e \".[onnx]\" ({e})") from None
    from earshot import __version__
    from earshot.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    model = ck.model.eval()
    wrapper = _Probabilities(model, ck.task).eval()
    sr = model.sample_rate
    shortest = max(model.input.min_samples, model.input_samples or 0, int((min_seconds or 0) * sr))
    n = max(shortest, int(ck.meta["inference"]["clip_seconds"] * sr))
    names = ["probabilities", "frame_probabilities"][: 1 + ck.task.frame_outputs]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.randn(2, n) * 0.1,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            samples = torch.export.Dim("samples", min=shortest, max=10**8)
            prog = torch.onnx.export(wrapper, example, dynamo=True, input_names=["waveform"], output_names=names,
                                     dynamic_shapes=({0: torch.export.Dim("batch"), 1: samples},))
        except Exception as e:  # a model that cannot export says why (today: the CRNN's GRU)
            raise EarshotError(f"{model.name} could not be exported to ONNX: {type(e).__name__}: "
                               f"{str(e).splitlines()[0][:300]}") from None
    prog.save(str(out))
    m = onnx.load(str(out))
    meta = {"labels": json.dumps(ck.task.labels),  # the rows of `probabilities` (a merge maps them in `task`)
            "task": json.dumps(ck.task.describe()), "model": json.dumps(model.describe()),
            "inference": json.dumps(ck.meta["inference"]), "sample_rate": str(sr), "earshot_version": __version__,
            "frame_hop": repr(float(model.frame_hop_seconds)), "min_samples": str(shortest),
            "fixed_input": "true" if model.input_samples is not None else "false",
            "input": f"mono waveform (batch, samples) at {sr} Hz, samples >= {shortest}"}
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(out))
    return out
