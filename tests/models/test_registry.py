import pytest
import torch

from earshot.models import count_parameters, create_model, list_models, model_spec


@pytest.mark.parametrize("name", list_models())
def test_every_model_returns_clip_and_frame_logits(name):
    m = create_model(name, n_classes=5).eval()
    for seconds in (0.25, 1.0, 2.3):  # short, typical and odd lengths
        x = torch.randn(2, int(m.sample_rate * seconds))
        out = m(x)
        assert out["clip_logits"].shape == (2, 5)
        if "frame_logits" in out:
            assert out["frame_logits"].shape[0] == 2 and out["frame_logits"].shape[2] == 5
    assert count_parameters(m) > 0
    assert model_spec(name).input in ("logmel", "waveform")


@pytest.mark.parametrize("name", list_models())
def test_every_model_learns_a_batch(name):
    torch.manual_seed(0)
    m = create_model(name, n_classes=3, frontend={"sample_rate": 8000, "n_fft": 256, "hop_length": 80, "n_mels": 32})
    x = torch.randn(6, 4000)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(m(x)["clip_logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5


def test_kong2018_defaults_follow_the_seed():
    fe = create_model("kong2018_cnn", 41).frontend_config
    assert (fe.sample_rate, fe.n_fft, fe.hop_length, fe.n_mels, fe.fmin) == (32000, 2048, 1024, 64, 50.0)


def test_unknown_names_are_clear():
    with pytest.raises(KeyError, match="unknown model 'resnet999'; known models: "):
        create_model("resnet999", 3)
    with pytest.raises(KeyError, match="unknown front-end setting"):
        create_model("cnn_small", 3, frontend={"n_melz": 3})


def test_describe_rebuilds_the_same_model():
    m = create_model("cnn_small", 4, frontend={"sample_rate": 8000}, dropout=0.3)
    d = m.describe()
    args = dict(d["args"])
    m2 = create_model(d["name"], args.pop("n_classes"), frontend=d["frontend"], **args)
    m2.load_state_dict(m.state_dict())
    assert m2.frontend_config == m.frontend_config and m2.model_args == m.model_args


def test_macs_scale_with_width_and_ignore_length():
    from earshot.models.profile import model_cost

    small, medium = (model_cost(create_model(n, 10)) for n in ("cnn_small", "cnn_medium"))
    assert 3 < medium["macs_per_second"] / small["macs_per_second"] < 5  # twice the width: about 4x the MACs
    assert small["params"] == count_parameters(create_model("cnn_small", 10))
