"""`earshot export`: probabilities from onnxruntime match PyTorch, with the metadata a runtime needs."""

import json

import numpy as np
import pytest
import torch

from earshot.checkpoint import load_checkpoint
from earshot.cli import main


def test_exported_checkpoint_matches_pytorch_with_metadata(trained_run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install earshot[onnx])")
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 0
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    ck = load_checkpoint(ckpt)
    assert json.loads(meta["labels"]) == ck.task.labels and json.loads(meta["task"])["name"] == "classification"
    assert int(meta["sample_rate"]) == ck.model.sample_rate and "temperature" in json.loads(meta["task"])
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    for n in (12800, 20000):  # other lengths and batch sizes than traced
        x = torch.randn(3, n) * 0.1
        with torch.no_grad():
            ref = ck.task.probabilities(ck.model(x)).numpy()
        out = sess.run(None, {"waveform": x.numpy()})[0]
        assert out.shape == ref.shape and np.abs(out - ref).max() <= 1e-4
