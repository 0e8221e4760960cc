"""Recipes on real recordings from ../shared/data (skipped when it is absent)."""

import json

from earshot.config import load_config
from earshot.data.manifest import write_manifest
from earshot.data.sources import prepare_fsdd
from earshot.training.run import train
from tests.conftest import REPO, require_shared


def test_fsdd_recipe_loads():
    cfg = load_config(REPO / "recipes" / "fsdd.yaml")
    assert cfg.model.frontend["sample_rate"] == 8000 and cfg.data.prepare["source"] == "fsdd"


def test_fsdd_subset_trains_far_above_chance(tmp_path):
    root = require_shared("free-spoken-digit")
    res = prepare_fsdd(root)
    assert len(res.clips) == 3000 and len(res.skipped) == 0
    keep = [c for c in res.clips if c.extra["index"] < 7 or 10 <= c.extra["index"] < 20]  # test 0-4, val 5-6
    m = write_manifest(tmp_path / "fsdd_subset.jsonl", keep)
    cfg = load_config(REPO / "recipes" / "fsdd.yaml", [
        f"data.manifest={m}", f"out_dir={tmp_path}", "trainer.max_epochs=6", "trainer.min_steps=0", "trainer.progress_bar=false",
        "data.batch_size=16"])
    run = train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n_clips"] == 300
    assert metrics["accuracy"] > 0.6, metrics["accuracy"]  # chance is 0.1
