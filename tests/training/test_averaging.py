"""``trainer.ema_decay``: an exponential moving average of the weights is validated, saved and
evaluated, and a run with it still resumes exactly."""

from __future__ import annotations

import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from earshot.errors import ConfigError
from earshot.training.averaging import WarmupEMA
from tests.training.test_resume import only_run, overrides, run_training, scores


def test_the_average_follows_the_ramped_decay():
    net = torch.nn.Linear(1, 1, bias=False)
    avg = AveragedModel(net, avg_fn=WarmupEMA(0.5), use_buffers=True)
    expected = None
    for i, w in enumerate([1.0, 3.0, -2.0, 5.0, 0.5]):
        with torch.no_grad():
            net.weight.fill_(w)
        avg.update_parameters(net)
        if expected is None:
            expected = w  # the first update copies
        else:
            d = min(0.5, (1.0 + i) / (10.0 + i))  # (1 + n) / (10 + n) after n = i earlier updates
            expected = d * expected + (1 - d) * w
        assert avg.module.weight.item() == pytest.approx(expected, rel=1e-6)


def test_a_decay_outside_zero_one_is_a_clear_error():
    with pytest.raises(ConfigError, match="ema_decay"):
        WarmupEMA(1.0)


@pytest.fixture(scope="module")
def ema_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ema")
    r = run_training(["train", *overrides(tiny_dataset, out, "ema"), "trainer.ema_decay=0.9"])
    assert r.returncode == 0, r.stderr[-3000:]
    return only_run(out)


def test_checkpoints_hold_the_average_and_the_raw_weights(ema_run):
    from earshot.checkpoint import load_checkpoint

    ck = torch.load(ema_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    avg, raw = ck["state_dict"], ck["current_model_state"]
    weights = [k for k in avg if k.startswith("model.") and avg[k].is_floating_point()]
    assert weights and set(weights) <= set(raw)
    assert any(not torch.equal(avg[k], raw[k]) for k in weights)
    model = load_checkpoint(ema_run / "checkpoints" / "best.ckpt").model  # what predict and evaluate load
    loaded = {f"model.{k}": v for k, v in model.state_dict().items()}
    assert all(torch.equal(loaded[k], avg[k]) for k in weights)


def test_a_killed_run_with_the_average_resumes_to_the_same_metrics(tiny_dataset, tmp_path, ema_run):
    r = run_training(["train", *overrides(tiny_dataset, tmp_path, "killed"), "trainer.ema_decay=0.9"],
                     stop_at=15, how="kill")
    assert r.returncode == -9
    run = only_run(tmp_path)
    r = run_training(["train", "--resume", str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    got, want = scores(run), scores(ema_run)
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) for k in got) <= 1e-6
