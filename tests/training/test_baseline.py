import json

import numpy as np
import pytest

from earshot.cli import main
from earshot.data.manifest import SkipReport, read_manifest
from earshot.features.frontends import LogMel, LogMelConfig
from earshot.tasks import create_task
from earshot.training.baseline import clip_features, run_baseline, small_data


def test_features_are_band_statistics():
    lm = LogMel(LogMelConfig())
    x = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    f = clip_features(x, lm)
    assert f.shape == (256,) and np.isfinite(f).all()
    assert (f[128:192] >= f[:64]).all()  # a band's max is at least its mean
    assert clip_features(x[:100], lm).shape == (256,)  # shorter than one window


def test_baseline_learns_the_tiny_dataset_and_skips_bad_files(tiny_dataset, tmp_path):
    clips = read_manifest(tiny_dataset)
    task = create_task("classification", sorted({c.labels[0] for c in clips}))
    train = [c for c in clips if c.split != "test"]
    test = [c for c in clips if c.split == "test"]
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    from dataclasses import replace

    skipped = SkipReport()
    rep = run_baseline(task, train + [replace(train[0], path=str(bad), id="broken")], test, skipped)
    assert rep["accuracy"] > 0.8 and rep["n_clips"] == len(test)
    assert len(skipped) == 1 and "broken.wav" in skipped.items[0].path


def test_tagging_baseline_covers_every_label():
    from earshot.training.baseline import LogMelStatsBaseline

    task = create_task("tagging", ["a", "b", "never"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    y = np.stack([(x[:, 0] > 0), (x[:, 1] > 0), np.zeros(40, bool)], 1).astype(np.float32)
    p = LogMelStatsBaseline(task).fit(x, y).probabilities(x)
    assert p.shape == (40, 3) and (p[:, 2] == 0).all() and task.evaluate(p, y)["mAP"] > 0.9


def test_small_data_rule():
    assert small_data(100, 10) and not small_data(5000, 10)


def test_baseline_command_and_train_prints_it_beside_small_runs(tiny_dataset, trained_run, capsys):
    assert main(["baseline", f"data.manifest={tiny_dataset}"]) == 0
    out = capsys.readouterr().out
    assert "baseline (log-mel statistics + logistic regression) on the test split" in out and "accuracy" in out
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["baseline"]["accuracy"] > 0.5 and metrics["baseline"]["n_train"] > 0
    from earshot.report.console import run_lines

    assert any("baseline (log-mel stats" in line for line in run_lines(trained_run))


def test_small_training_sets_get_enough_optimizer_steps(caplog):
    from earshot.config import load_config
    from earshot.training.run import scale_epochs

    cfg = load_config(None, ["trainer.max_epochs=25"])
    assert scale_epochs(cfg, 4, 120, 10).trainer.max_epochs == 150  # 12 clips per class: 600 steps
    assert "150 epochs instead of 25" in caplog.text
    assert scale_epochs(cfg, 75, 2400, 10).trainer.max_epochs == 25  # a full dataset keeps its recipe
    assert scale_epochs(cfg, 30, 300, 10).trainer.max_epochs == 25   # already 750 steps
    off = load_config(None, ["trainer.max_epochs=25", "trainer.min_steps=0"])
    assert scale_epochs(off, 4, 120, 10).trainer.max_epochs == 25
