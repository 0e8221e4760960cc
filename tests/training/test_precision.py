"""Mixed precision and pinned memory chosen by the hardware."""

from __future__ import annotations


def test_precision_and_pinning_follow_the_hardware(monkeypatch):
    """``trainer.precision=auto``: bf16-mixed where bf16 is native, float16 with loss scaling on
    older GPUs, float32 elsewhere; batches are pinned only when a GPU will take them. (No GPU is
    needed: CUDA's answers are stood in for.)"""
    import torch

    import earshot.inference.predictor as predictor
    from earshot.training.run import training_precision, uses_gpu

    assert training_precision("32-true", "auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training_precision("auto", "auto") == "bf16-mixed" and uses_gpu("auto") and uses_gpu("gpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert training_precision("auto", "gpu") == "16-mixed"
    assert not uses_gpu("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    native = predictor.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert training_precision("auto", "auto") == ("bf16-mixed" if native else "32-true")
