"""The CUDA path: front-end, models, predictor and a Lightning fit on a GPU, against the CPU.

Every test here skips without a CUDA device (CI has none); they run wherever one is present, e.g.
``python -m pytest tests/test_cuda.py`` on a GPU machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (these tests check the GPU path)")


@pytest.fixture(autouse=True)
def full_float32(monkeypatch):
    """Plain float32 on the GPU for the comparisons (PyTorch lets cuDNN convolutions use TF32)."""
    if torch.cuda.is_available():
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


@pytest.mark.parametrize("name", ["default", "fsdd", "vggish"])
def test_logmel_on_gpu_matches_cpu(name):
    from earshot.features.frontends import LogMel, LogMelConfig

    c = {"default": LogMelConfig(),
         "fsdd": LogMelConfig(sample_rate=8000, n_fft=512, win_length=256, hop_length=80, n_mels=64, fmin=20.0),
         "vggish": LogMelConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64,
                                fmin=125.0, fmax=7500.0, center=False, log_offset=0.01)}[name]
    x = torch.randn(5, 24011) * 0.1
    fe = LogMel(c).eval()
    with torch.inference_mode():
        ref = fe(x)
        gpu = fe.to("cuda")(x.cuda())
        with torch.autocast("cuda", dtype=torch.bfloat16):  # the front-end stays float32 under autocast
            mixed = fe(x.cuda())
    assert gpu.dtype == mixed.dtype == torch.float32
    assert float((gpu.cpu() - ref).abs().max()) < 1e-3  # dB
    assert torch.equal(gpu, mixed)


@pytest.mark.parametrize("name", ["cnn_small", "crnn", "resnet_small", "cnn9", "mobilenet_small", "samplecnn",
                                  "samplecnn_rese2", "cnn1d", "panns_cnn10", "vggish"])
def test_model_on_gpu_matches_cpu(name):
    from earshot.models import create_model

    torch.manual_seed(0)
    model = create_model(name, 7).eval()
    n = model.input_samples or model.sample_rate
    x = torch.randn(3, n) * 0.1
    with torch.inference_mode():
        ref = model(x)["clip_logits"]
        model.cuda()
        out = model(x.cuda())["clip_logits"]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = model(x.cuda())["clip_logits"]
    assert torch.isfinite(out).all() and torch.isfinite(half).all()
    assert rel(out.cpu(), ref) < 1e-3
    assert rel(half.float().cpu(), ref) < 5e-2  # bf16: about 3 significant digits, through every layer


@pytest.fixture(scope="module")
def gpu_run(tiny_dataset, tmp_path_factory):
    """The tiny synthetic dataset trained on the GPU in bf16-mixed (the default there is float32)."""
    from earshot.config import load_config
    from earshot.training.run import train

    out = tmp_path_factory.mktemp("gpu-runs")
    cfg = load_config(None, [f"data.manifest={tiny_dataset}", f"out_dir={out}", "name=gpu", "trainer.max_epochs=12",
                             "trainer.min_steps=0", "trainer.progress_bar=false", "trainer.accelerator=gpu",
                             "model.name=cnn_small", "data.clip_seconds=0.8", "optim.lr=3e-3", "data.batch_size=8",
                             "data.num_workers=2", "trainer.precision=bf16-mixed"])
    return train(cfg)


def test_fit_on_gpu_in_bf16(gpu_run):
    cfg = (gpu_run / "config.yaml").read_text()
    assert "accelerator: gpu" in cfg
    m = json.loads((gpu_run / "metrics.json").read_text())
    assert m["accuracy"] > 0.6  # 4 classes: chance is 0.25; the CPU fixture's bar
    ck = torch.load(gpu_run / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    assert ck["earshot"]["model"]["name"] == "cnn_small"
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values() if v.is_floating_point())


def test_gpu_checkpoint_predicts_the_same_on_cpu_and_gpu(gpu_run):
    """A checkpoint trained on the GPU loads on either device; the GPU in bf16 agrees with the CPU in
    float32 on every clear top label and within bf16's error on the scores."""
    from earshot.data.synth import synth_clip
    from earshot.inference.predictor import Predictor

    ckpt = gpu_run / "checkpoints" / "best.ckpt"
    gpu, cpu = Predictor.load(ckpt, "cuda", precision="bf16"), Predictor.load(ckpt, "cpu", precision="fp32")
    assert Predictor.load(ckpt, "cuda").precision == "fp32"  # the GPU's default
    rng = np.random.default_rng(3)
    clips = [synth_clip(c, 16000, rng, duration=3.0) for c in ("tone", "clicks", "noise_burst", "chirp")]
    for x in clips:
        a, b = gpu.predict_array(x, 16000), cpu.predict_array(x, 16000)
        assert np.abs(a.probs - b.probs).max() < 0.05
        if b.probs.max() - np.sort(b.probs)[-2] > 0.1:  # a clear winner must stay the winner
            assert a.label == b.label
