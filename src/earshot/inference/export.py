"""``earshot export CHECKPOINT --format onnx``: the whole model, front-end included, as one ONNX graph.

The input is a mono waveform ``(batch, samples)`` at the model's sample rate, both axes dynamic.
The outputs are the task's probabilities ``(batch, C)`` (softmax with the fitted temperature, or
sigmoid) and, for detection, frame probabilities ``(batch, frames, C)``. The model's metadata
(``metadata_props``) holds what a runtime needs to use it without earshot: labels, the task and
its state (thresholds, temperature, decoding), the model description with the front-end
settings, the inference windowing and the earshot version.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from earshot.errors import EarshotError


def _fixed_input_dims(path: Path) -> list[str]:
    """The waveform input's axes that an export pinned to a number (batch, samples)."""
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return [name for name, d in zip(("batch", "samples"), dims) if d.HasField("dim_value")]


def _export(wrapper: torch.nn.Module, example: tuple[torch.Tensor], names: list[str], shortest: int, out: Path,
            name: str) -> str:
    """Export with torch's dynamo exporter; a model it cannot take (a GRU) goes through the
    TorchScript exporter. Either way the front-end's spectrum is computed by a convolution: unfold
    with a dynamic length is beyond the TorchScript exporter, and ONNX Runtime runs the convolution
    faster than its DFT operator. Returns which exporter wrote ``out``."""
    from earshot.features.frontends import LogMel

    wrapper = copy.deepcopy(wrapper)
    for mod in wrapper.modules():
        if isinstance(mod, LogMel):
            mod.use_conv_stft()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            samples = torch.export.Dim("samples", min=shortest, max=10**8)
            prog = torch.onnx.export(wrapper, example, dynamo=True, verbose=False, input_names=["waveform"], output_names=names,
                                     dynamic_shapes=({0: torch.export.Dim("batch"), 1: samples},))
            prog.save(str(out))
            fixed = _fixed_input_dims(out)
            if not fixed:
                return "dynamo"
            first = f"the graph fixed the input's {' and '.join(fixed)} instead of leaving it dynamic"
        except Exception as e:
            first = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        axes = {"waveform": {0: "batch", 1: "samples"}, names[0]: {0: "batch"}}
        if len(names) > 1:
            axes[names[1]] = {0: "batch", 1: "frames"}
        try:
            torch.onnx.export(wrapper, example, str(out), dynamo=False, input_names=["waveform"], output_names=names,
                              dynamic_axes=axes, opset_version=17)
            return "torchscript"
        except Exception as e:  # neither exporter: say why, both times
            raise EarshotError(f"{name} could not be exported to ONNX. dynamo: {first}; torchscript: "
                               f"{type(e).__name__}: {str(e).splitlines()[0][:300]}") from None


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
    from earshot.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    return export_model(ck.model, ck.task, ck.meta["inference"], out, min_seconds)


def export_model(model: torch.nn.Module, task: Any, inference: dict[str, Any], out: str | Path,
                 min_seconds: float | None = None) -> Path:
    """Write ``out`` (.onnx) for a model and its task; ``inference`` is the checkpoint's windowing
    (``clip_seconds``, ``hop_seconds``, ``pooling``)."""
    try:
        import onnx
    except ImportError as e:
        raise EarshotError(f"ONNX export needs the [onnx] extra: pip install -e \".[onnx]\" ({e})") from None
    from earshot import __version__

    model = model.eval()
    wrapper = _Probabilities(model, task).eval()
    sr = model.sample_rate
    shortest = max(model.input.min_samples, model.input_samples or 0, int((min_seconds or 0) * sr))
    n = max(shortest, int(inference["clip_seconds"] * sr))
    names = ["probabilities", "frame_probabilities"][: 1 + task.frame_outputs]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.randn(2, n) * 0.1,)
    exporter = _export(wrapper, example, names, shortest, out, model.name)
    m = onnx.load(str(out))
    meta = {"labels": json.dumps(task.labels),  # the rows of `probabilities` (a merge maps them in `task`)
            "task": json.dumps(task.describe()), "model": json.dumps(model.describe()),
            "inference": json.dumps(inference), "sample_rate": str(sr), "earshot_version": __version__,
            "frame_hop": repr(float(model.frame_hop_seconds)), "min_samples": str(shortest),
            "fixed_input": "true" if model.input_samples is not None else "false", "exporter": exporter,
            "input": f"mono waveform (batch, samples) at {sr} Hz, samples >= {shortest}"}
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(out))
    return out


def max_difference(onnx_path: str | Path, model: torch.nn.Module, task: Any, waves: Any) -> float:
    """Max |ONNX Runtime - PyTorch| over the probabilities (and frame probabilities) of a batch of
    waveforms ``(B, N)`` at the model's rate."""
    import numpy as np
    import onnxruntime as ort

    x = np.ascontiguousarray(waves, np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
        ref = [task.probabilities(out)] + ([task.frame_probabilities(out)] if task.frame_outputs else [])
    got = sess.run(None, {"waveform": x})
    return max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
