"""Fine-tuning a pretrained backbone: a frozen start and learning rates per layer."""

from __future__ import annotations

import pytest
import torch

from earshot.config import OptimConfig, load_config
from earshot.models.registry import create_model
from earshot.tasks import create_task
from earshot.training.module import EarshotModule


def test_layer_wise_learning_rates():
    model = create_model("panns_cnn6", 3)
    module = EarshotModule(model, create_task("classification", list("abc")),
                           OptimConfig(lr=1e-3, backbone_lr_scale=0.1, layer_decay=0.5), meta={})
    groups = module.param_groups()
    lrs = [g["lr"] for g in groups]
    # bn0, conv_block1..4 from the bottom up, then the head
    assert lrs == pytest.approx([1e-4 * 0.5**4, 1e-4 * 0.5**3, 1e-4 * 0.5**2, 1e-4 * 0.5, 1e-4, 1e-3])
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))
    head = {id(p) for p in model.head.parameters()}
    assert {id(p) for p in groups[-1]["params"]} == head


def test_a_frozen_backbone_keeps_its_pretrained_weights_while_the_head_learns(trained_run, tiny_dataset, tmp_path):
    from earshot.checkpoint import load_checkpoint
    from earshot.training.run import train

    src = trained_run / "checkpoints" / "best.ckpt"
    # another dataset's statistics would shift the frozen backbone's input: they come from the checkpoint
    from earshot.data.manifest import read_manifest, write_manifest

    clips = read_manifest(tiny_dataset)
    manifest = write_manifest(tmp_path / "half.jsonl", clips[::2])
    cfg = load_config(None, [f"data.manifest={manifest}", f"out_dir={tmp_path}", "name=probe",
                             "trainer.max_epochs=2", "trainer.min_steps=0", "trainer.progress_bar=false", "trainer.accelerator=cpu",
                             "model.name=cnn_small", f"model.pretrained={src}", "optim.freeze_backbone_epochs=2",
                             "data.clip_seconds=0.8", "optim.lr=3e-3", "data.batch_size=8"])
    run = train(cfg)
    before = load_checkpoint(src).model.state_dict()
    after = load_checkpoint(run / "checkpoints" / "last.ckpt").model.state_dict()
    for k, v in before.items():
        if k.startswith(("backbone.", "input.")):
            assert torch.equal(after[k], v), k  # weights and batch-norm statistics untouched
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("head."))
