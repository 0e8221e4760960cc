"""Memory layout: channels_last changes speed, never outputs."""

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
