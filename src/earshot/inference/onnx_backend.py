"""``earshot predict --backend onnx``: an exported model (``earshot export``) on ONNX Runtime.

Nothing here imports torch: the windowing, pooling, stitching and decoding are the numpy code the
PyTorch predictor uses (:class:`~earshot.inference.windowed.WindowedInference`), the task is
rebuilt from the model's metadata, and only the forward pass changes. So an exported model can be
deployed with ``numpy``, ``soundfile``, ``soxr``, ``scipy`` and ``onnxruntime``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from earshot.errors import EarshotError
from earshot.inference.windowed import WindowedInference


def _session(path: Path, threads: int | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise EarshotError(f"the ONNX backend needs onnxruntime: pip install -e \".[onnx]\" ({e})") from None
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise EarshotError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None


class OnnxPredictor(WindowedInference):
    """The :class:`~earshot.inference.predictor.Predictor` interface over an exported ``.onnx``."""

    def __init__(self, path: str | Path, batch_size: int = 64, threads: int | None = None):
        from earshot.tasks import create_task

        self.path = Path(path)
        if not self.path.is_file():
            raise EarshotError(f"{self.path}: no such ONNX model (make one with `earshot export CHECKPOINT`)")
        self.session = _session(self.path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = {"task", "inference", "sample_rate", "frame_hop"} - set(meta)
        if missing:
            raise EarshotError(f"{self.path} lacks earshot's metadata ({sorted(missing)}): export it again "
                               "with `earshot export` from this version")
        t = json.loads(meta["task"])
        self.task = create_task(t.pop("name"), t.pop("labels"), **t)
        self.meta = meta
        inf = json.loads(meta["inference"])
        self.sample_rate = int(meta["sample_rate"])
        self.win = int(round(inf["clip_seconds"] * self.sample_rate))
        self.hop = max(1, int(round(inf["hop_seconds"] * self.sample_rate)))
        self.pooling = inf["pooling"]
        self.batch_size = batch_size
        self.frame_hop = float(meta["frame_hop"])
        self.fixed_input = meta.get("fixed_input") == "true"
        self.min_samples = int(meta.get("min_samples", 1))
        self._outputs_names = [o.name for o in self.session.get_outputs()]

    def window_outputs(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.session.run(self._outputs_names, {"waveform": np.ascontiguousarray(windows, np.float32)})
        return out[0], (out[1] if self.task.frame_outputs else None)


def load_onnx(path: str | Path, threads: int | None = None) -> OnnxPredictor:
    """``earshot.inference.onnx_backend.load_onnx("model.onnx").predict("dog.wav")``."""
    return OnnxPredictor(path, threads=threads)
