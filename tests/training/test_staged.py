"""SampleCNN's staged SGD: reload the best weights and decay the rate when validation stalls."""

from types import SimpleNamespace

import torch

from earshot.training.schedules import StagedLearningRate


def _run(values, patience=2, stages=3):
    model = torch.nn.Linear(2, 1)
    module = SimpleNamespace(model=model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={}, optimizers=[opt], should_stop=False,
                              lr_scheduler_configs=[SimpleNamespace(scheduler=sched)], current_epoch=0)
    cb = StagedLearningRate("val/auc", patience=patience, lr_decay=0.1, num_stages=stages)
    weights, lrs = [], []
    for epoch, v in enumerate(values):
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # the weights of this epoch
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val/auc": torch.tensor(v)}
        cb.on_validation_end(trainer, module)
        weights.append(model.weight[0, 0].item())
        lrs.append(opt.param_groups[0]["lr"])
        if trainer.should_stop:
            break
    return cb, weights, lrs, trainer


def test_a_stalled_stage_reloads_the_best_weights_and_decays_the_rate():
    cb, weights, lrs, trainer = _run([0.5, 0.7, 0.6, 0.65, 0.8, 0.7, 0.7, 0.9, 0.9, 0.9])
    # epoch 1 is best; epochs 2-3 stall (patience 2): stage 2 starts from epoch 1's weights at lr 0.1
    assert weights[3] == 1.0 and lrs[3] == 0.1 and lrs[2] == 1.0
    # epoch 4 improves; 5-6 stall: stage 3 from epoch 4's weights at 0.01; 7 improves; 8-9 stall: stop
    assert weights[6] == 4.0 and lrs[6] == 0.1 * 0.1
    assert trainer.should_stop and len(weights) == 10 and cb.stage == 3
    assert [h["epoch"] for h in cb.history] == [3, 6, 9]


def test_state_survives_a_resume():
    cb, *_ = _run([0.5, 0.4, 0.4], patience=2, stages=5)
    fresh = StagedLearningRate("val/auc")
    fresh.load_state_dict(cb.state_dict())
    assert fresh.stage == 2 and fresh.best == 0.5 and fresh.best_state is not None
