"""`earshot export`: probabilities from onnxruntime match PyTorch, with the metadata a runtime needs."""

import json

import numpy as np
import pytest
import torch

from earshot.checkpoint import load_checkpoint
from earshot.cli import main
from earshot.models import list_models


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
    for backend in ("torch", "onnx"):  # the CLI: same labels either way (float32 both)
        assert main(["predict", str(ckpt if backend == "torch" else model), *map(str, files), "--format", "json",
                     "--backend", backend, "--precision", "fp32"]) == 0
        tops.append([{t["label"]: t["score"] for t in r["top"]} for r in json.loads(capsys.readouterr().out)])
    for a, b in zip(*tops):  # the same best label; the rest may swap only where two scores tie within 1e-4
        assert next(iter(a)) == next(iter(b))
        for label in a.keys() & b.keys():
            assert abs(a[label] - b[label]) <= 1e-4
        if a.keys() != b.keys():  # a label in one top-3 only: at the cut, tied with the other's third
            assert abs(min(a.values()) - min(b.values())) <= 1e-4
    ref = [Predictor.load(ckpt, precision="fp32").predict(f).probs for f in files]  # parity is against float32
    script = ("import sys, json; from earshot.inference.onnx_backend import OnnxPredictor; "
              f"p = OnnxPredictor({str(model)!r}); "
              f"out = [p.predict(f).probs.tolist() for f in {[str(f) for f in files]!r}]; "
              "print(json.dumps({'torch': 'torch' in sys.modules, 'probs': out}))")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["torch"] is False
    assert np.abs(np.array(got["probs"]) - np.array(ref)).max() <= 1e-4


def test_detector_exports_and_detects_the_same_events_on_onnx_runtime(sed_run, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install earshot[onnx])")
    pytest.importorskip("onnxscript")
    from earshot.inference.onnx_backend import OnnxPredictor
    from earshot.inference.predictor import Predictor
    from tests.conftest import tone, write_wav

    ckpt = sed_run / "checkpoints" / "best.ckpt"
    model = tmp_path / "sed.onnx"
    assert main(["export", str(ckpt), "-o", str(model)]) == 0  # a CRNN: the GRU needs the TorchScript exporter
    rng = np.random.default_rng(4)
    x = (0.02 * rng.standard_normal(16000 * 8)).astype(np.float32)
    x[16000 * 2 : 16000 * 3] += tone(16000, 1.0, 1500.0)
    x[16000 * 5 : 16000 * 6] += tone(16000, 1.0, 220.0)
    f = write_wav(tmp_path / "scene.wav", x, 16000, "FLOAT")
    ref, got = Predictor.load(ckpt, precision="fp32").detect(f), OnnxPredictor(model).detect(f)
    assert np.abs(ref.frames - got.frames).max() <= 1e-4 and np.abs(ref.probs - got.probs).max() <= 1e-4
    assert [e[2] for e in ref.events] == [e[2] for e in got.events]
    assert np.allclose([e[:2] for e in ref.events], [e[:2] for e in got.events], atol=0.05)


def _real_clips(sr: int, n: int) -> np.ndarray:
    from earshot.audio.io import fix_length, load_audio
    from tests.conftest import require_shared

    digits = sorted((require_shared("free-spoken-digit") / "recordings").glob("*.wav"))
    events = sorted((require_shared("dcase2016-task2") / "train" / "sound").glob("*.wav"))
    waves = [load_audio(f, sr)[0] for f in (digits[0], digits[1500], events[0], events[150])]
    return np.stack([fix_length(np.tile(w, int(np.ceil(n / len(w)))), n) for w in waves])


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_exports_with_parity_on_real_clips(name, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install earshot[onnx])")
    pytest.importorskip("onnxscript")
    from earshot.inference.export import export_model, max_difference
    from earshot.models import create_model
    from earshot.tasks import create_task

    torch.manual_seed(0)
    model = create_model(name, 5).eval()
    sr = model.sample_rate
    n = model.input_samples or max(model.input.min_samples, 2 * sr)
    for task_name in ("classification", "detection") if name in ("crnn", "cnn9") else ("classification",):
        task = create_task(task_name, list("abcde"))
        out = export_model(model, task, {"clip_seconds": n / sr, "hop_seconds": n / sr, "pooling": "mean"},
                           tmp_path / f"{task_name}.onnx")
        for length in [n] if model.input_samples else [n, int(1.5 * n)]:  # dynamic length too
            assert max_difference(out, model, task, _real_clips(sr, length)) <= 1e-4
