"""Mixed precision and pinned memory chosen by the hardware."""

from __future__ import annotations


def test_precision_and_pinning_follow_the_hardware(monkeypatch):
    """``trainer.precision=auto``: bf16-mixed on CPUs where bf16 is native, float32 elsewhere and on
    every GPU (bf16 was slower there); batches are pinned only when a GPU will take them. (No GPU is
    needed: CUDA's answers are stood in for.)"""
    import torch

    import earshot.inference.predictor as predictor
    from earshot.training.run import training_precision, uses_gpu

    assert training_precision("32-true", "auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training_precision("auto", "auto") == "32-true" and uses_gpu("auto") and uses_gpu("gpu")  # fp32 on GPUs
    assert predictor.resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert training_precision("bf16-mixed", "gpu") == "bf16-mixed" and predictor.resolve_precision("bf16", torch.device("cuda")) == "bf16"
    assert not uses_gpu("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    native = predictor.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert training_precision("auto", "auto") == ("bf16-mixed" if native else "32-true")
