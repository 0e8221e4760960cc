"""``trainer.max_minutes``: as many epochs as fit in a time budget, the cosine decay fitted to them."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from earshot.config import OptimConfig
from earshot.errors import ConfigError
from earshot.training import budget as budget_mod
from earshot.training.budget import TimeBudget
from earshot.training.schedules import StepFactor, step_schedule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_trainer(per_epoch: int, max_epochs: int) -> SimpleNamespace:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = step_schedule(opt, OptimConfig(lr=1.0, warmup_epochs=1), per_epoch * max_epochs, per_epoch)
    return SimpleNamespace(current_epoch=0, should_stop=False, fit_loop=SimpleNamespace(max_epochs=max_epochs),
                           lr_scheduler_configs=[SimpleNamespace(scheduler=sched)])


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(budget_mod.time, "monotonic", c)
    return c


def started(minutes: float, per_epoch: int, max_epochs: int) -> tuple[TimeBudget, SimpleNamespace]:
    """A budget whose fit has just started, and its trainer."""
    trainer, tb = fake_trainer(per_epoch, max_epochs), TimeBudget(minutes, max_epochs)
    tb.on_train_start(trainer, None)
    return tb, trainer


def run_epochs(tb: TimeBudget, trainer: SimpleNamespace, clock: Clock, seconds: list[float]) -> None:
    for s in seconds:
        trainer.current_epoch = len(tb.history)
        tb.on_train_epoch_start(trainer, None)
        clock.now += s
        tb.on_train_epoch_end(trainer, None)


def test_the_plan_fills_the_budget_and_stops_when_it_is_spent(clock):
    tb, trainer = started(minutes=1.0, per_epoch=10, max_epochs=100)
    run_epochs(tb, trainer, clock, [12.0])  # a slow first epoch: 48 s left, 4 more of 12 s
    assert tb.planned == 5 and trainer.fit_loop.max_epochs == 5 and not trainer.should_stop
    factor = trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0]
    assert factor.total == 50  # the cosine now ends with epoch 5
    run_epochs(tb, trainer, clock, [8.0] * 6)  # faster epochs: the plan grows, then the budget runs out
    assert [h["planned"] for h in tb.history] == [5, 7, 7, 7, 7, 7, 7]
    assert trainer.should_stop  # 60 s spent after the 7th epoch
    assert tb.elapsed == pytest.approx(60.0)


def test_the_plan_never_passes_max_epochs_and_a_budget_of_one_epoch_stops_after_it(clock):
    tb, trainer = started(minutes=10.0, per_epoch=4, max_epochs=3)
    run_epochs(tb, trainer, clock, [1.0])
    assert tb.planned == 3 and trainer.fit_loop.max_epochs == 3
    short, trainer = started(minutes=0.1, per_epoch=4, max_epochs=30)  # 6 s, and the first epoch takes 10
    run_epochs(short, trainer, clock, [10.0])
    assert short.planned == 1 and trainer.should_stop


def test_a_resumed_budget_keeps_its_plan_and_the_time_already_spent(clock):
    tb, trainer = started(minutes=1.0, per_epoch=10, max_epochs=100)
    run_epochs(tb, trainer, clock, [10.0, 10.0])
    clock.now += 3.0  # a mid-epoch checkpoint 3 s into the third epoch
    state = tb.state_dict()
    assert state["elapsed"] == pytest.approx(23.0) and state["planned"] == 6
    again, trainer2 = TimeBudget(minutes=1.0, max_epochs=100), fake_trainer(per_epoch=10, max_epochs=100)
    again.load_state_dict(state)
    clock.now += 500.0  # the process was down for a while: that time is not the run's
    again.on_train_start(trainer2, None)
    assert trainer2.fit_loop.max_epochs == 6
    assert trainer2.lr_scheduler_configs[0].scheduler.lr_lambdas[0].total == 60
    trainer2.current_epoch = 2
    again.on_train_epoch_start(trainer2, None)
    clock.now += 7.0
    again.on_train_epoch_end(trainer2, None)
    assert again.elapsed == pytest.approx(30.0)


def test_step_factor_warms_up_then_decays_to_zero_at_the_planned_end():
    f = StepFactor("cosine", warm=10, total=100, per_epoch=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0, abs=1e-12)
    f.plan_epochs(5)
    assert f.total == 50 and f(30) == pytest.approx(0.5) and f(50) == pytest.approx(0.0, abs=1e-12)
    assert StepFactor("constant", 0, 100, 10)(80) == 1.0
    assert math.isclose(StepFactor("cosine", 0, 10, 10)(0), 1.0)


def test_the_budget_must_be_positive():
    with pytest.raises(ConfigError, match="max_minutes"):
        TimeBudget(0.0, 10)


def test_a_training_run_within_a_budget_stops_annealed_and_reports_its_plan(tiny_dataset, tmp_path):
    from earshot.config import load_config
    from earshot.training.run import train

    cfg = load_config(None, [f"data.manifest={tiny_dataset}", f"out_dir={tmp_path}", "name=budget",
                             "trainer.max_epochs=200", "trainer.max_minutes=0.1", "trainer.min_steps=0",
                             "trainer.progress_bar=false", "trainer.accelerator=cpu", "model.name=cnn_small",
                             "data.clip_seconds=0.8", "data.batch_size=16", "trainer.baseline=never"])
    run = train(cfg)
    m = json.loads((run / "metrics.json").read_text())
    plan = m["time_budget"]
    assert plan["seconds"] == pytest.approx(6.0) and plan["max_epochs"] == 200
    epochs = plan["epochs"]
    assert 1 <= m["epochs"] < 200 and epochs[-1]["planned"] == m["epochs"] == len(epochs)
    last = epochs[-1]
    assert last["elapsed"] <= 6.0 + 2 * max(e["epoch_seconds"] for e in epochs)  # at most an epoch or so over
    from earshot.training.run import training_precision

    env = m["environment"]  # what it trained on: auto resolved for this CPU
    assert env["precision"] == training_precision("auto", "cpu") and env["device"].startswith("cpu (")
    assert env["torch"] == torch.__version__
    ck = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ck["lr_schedulers"][0]["_last_lr"][0] < 0.15 * cfg.optim.lr  # annealed, not cut off mid-schedule
