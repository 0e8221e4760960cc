"""The front-end sits inside the model graph, so the whole model exports to ONNX."""

import warnings

import numpy as np
import pytest
import torch

from earshot.models import create_model


def _exported_session(ort, model, tmp_path):
    """``model`` exported with dynamic batch and length (traced on 2 x 8000 samples), loaded in onnxruntime."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, (torch.randn(2, 8000),), dynamo=True, dynamic_shapes=(
            {0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=1024, max=10**7)},))
    path = tmp_path / "m.onnx"
    prog.save(str(path))
    return ort.InferenceSession(str(path))


def test_model_with_frontend_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install earshot[onnx])")
    pytest.importorskip("onnxscript", reason="onnxscript not installed (pip install earshot[onnx])")
    m = create_model("cnn_small", 4, frontend={"sample_rate": 8000, "n_fft": 256, "hop_length": 80}).eval()
    sess = _exported_session(ort, m, tmp_path)
    for n in (8000, 13000):  # other lengths and batch sizes than traced
        x = torch.randn(3, n)
        with torch.no_grad():
            ref = m(x)["clip_logits"].numpy()
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        assert out.shape == (3, 4) and np.abs(out - ref).max() < 1e-4


def test_pcen_frontend_exports_to_onnx(tmp_path):
    """PCEN's smoother is a depthwise convolution, so a model with it exports for any length."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install earshot[onnx])")
    pytest.importorskip("onnxscript", reason="onnxscript not installed (pip install earshot[onnx])")
    m = create_model("cnn_small", 3, frontend={"sample_rate": 8000, "n_fft": 256, "hop_length": 80, "log": "pcen"}).eval()
    sess = _exported_session(ort, m, tmp_path)
    for n in (8000, 20000):
        x = torch.randn(2, n) * 0.1
        with torch.no_grad():
            ref = m(x)["clip_logits"].numpy()
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        assert np.abs(out - ref).max() < 1e-3
