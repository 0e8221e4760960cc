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


def test_onnx_backend_predicts_like_pytorch_without_importing_torch(trained_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install earshot[onnx])")
    pytest.importorskip("onnxscript")
    import subprocess
    import sys

    from earshot.inference.predictor import Predictor
    from tests.conftest import write_wav

    ckpt = trained_run / "checkpoints" / "best.ckpt"
    model = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "-o", str(model)]) == 0
    sr = Predictor.load(ckpt).sample_rate
    rng = np.random.default_rng(3)
    files = [write_wav(tmp_path / f"c{i}.wav", (rng.standard_normal(int(sr * s)) * 0.1).astype(np.float32), sr, "FLOAT")
             for i, s in enumerate((0.5, 3.7))]
    capsys.readouterr()
    tops = []
    for backend in ("torch", "onnx"):  # the CLI: same labels either way
        assert main(["predict", str(ckpt if backend == "torch" else model), *map(str, files), "--format", "json",
                     "--backend", backend]) == 0
        tops.append([[t["label"] for t in r["top"]] for r in json.loads(capsys.readouterr().out)])
    assert tops[0] == tops[1]
    ref = [Predictor.load(ckpt).predict(f).probs for f in files]
    script = ("import sys, json; from earshot.inference.onnx_backend import OnnxPredictor; "
              f"p = OnnxPredictor({str(model)!r}); "
              f"out = [p.predict(f).probs.tolist() for f in {[str(f) for f in files]!r}]; "
              "print(json.dumps({'torch': 'torch' in sys.modules, 'probs': out}))")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["torch"] is False
    assert np.abs(np.array(got["probs"]) - np.array(ref)).max() <= 1e-4
