"""Memory layout: channels_last changes speed, never outputs."""

import pytest
import torch

from earshot.models import create_model


def _conv_weights(model):
    return [p for p in model.parameters() if p.dim() == 4]


def test_fast_layout_keeps_outputs_and_follows_the_registry():
    torch.manual_seed(0)
    x = torch.randn(3, 16000) * 0.1
    for name in ("resnet_small", "crnn", "cnn1d"):
        model = create_model(name, 5).eval()
        with torch.no_grad():
            before = model(x)
            model.fast_layout()
            after = model(x)
        for k in before:
            assert torch.allclose(before[k], after[k], atol=1e-4), (name, k)
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(model)), name
    cnn14 = create_model("panns_cnn14", 5).fast_layout()  # measured slower in channels_last: stays NCHW
    assert all(w.is_contiguous() for w in _conv_weights(cnn14))


def test_training_and_prediction_use_the_fast_layout(trained_run):
    from earshot.inference.predictor import Predictor

    p = Predictor.load(trained_run / "checkpoints" / "best.ckpt")
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(p.model))
    state = torch.load(trained_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    trained = [v for k, v in state.items() if v.dim() == 4]
    assert trained and all(v.is_contiguous(memory_format=torch.channels_last) for v in trained)


def test_batchnorm_folds_into_convolutions_with_the_same_outputs():
    torch.manual_seed(0)
    x = torch.randn(2, 16000) * 0.1
    for name, expect in (("resnet_small", 21), ("cnn1d", 3), ("crnn", None)):
        model = create_model(name, 4).eval()
        for m in model.modules():  # statistics far from the identity, so that a wrong fold shows
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
        with torch.no_grad():
            before = model(x)
            n = model.fold_batchnorm()
            after = model(x)
        if expect is not None:
            assert n == expect, name
        for k in before:
            assert torch.allclose(before[k], after[k], rtol=1e-4, atol=1e-5), (name, k)
    with pytest.raises(RuntimeError, match="inference"):
        create_model("resnet_small", 4).train().fold_batchnorm()
