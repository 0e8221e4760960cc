"""The ESC-50 recipes run unchanged on the dataset's real layout (a tiny mimic of it here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from earshot.cli import main
from tests.conftest import write_wav
from tests.models.test_pretrained import published_state, save_panns

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def esc50(tmp_path) -> Path:
    """ROOT/audio/*.wav (44.1 kHz, 5 s) and ROOT/meta/esc50.csv, 2 classes x 2 clips x 5 folds."""
    from earshot.data.synth import synth_clip

    root = tmp_path / "ESC-50-master"
    rng = np.random.default_rng(0)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, cat in enumerate(("tone", "noise_burst")):
            for take in "AB":
                name = f"{fold}-{100 + target}-{take}-{target}.wav"
                write_wav(root / "audio" / name, synth_clip(cat, 44100, rng, duration=5.0), 44100)
                rows.append(f"{name},{fold},{target},{cat},False,{100 + target},{take}")
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def run_cv(recipe: str, esc50: Path, tmp_path: Path, *extra: str) -> dict:
    over = [f"data.manifest={tmp_path / 'esc50.jsonl'}", f"data.prepare.root={esc50}", f"out_dir={tmp_path / 'runs'}",
            "trainer.max_epochs=1", "trainer.min_steps=0", "trainer.progress_bar=false", "trainer.accelerator=cpu", "data.batch_size=4",
            "folds=1", *extra]
    assert main(["cv", str(REPO / "recipes" / recipe), *over]) == 0
    return json.loads(next((tmp_path / "runs").glob("*-cv.json")).read_text())


def test_esc50_scratch_recipe_runs_on_the_layout(esc50, tmp_path):
    s = run_cv("esc50_scratch.yaml", esc50, tmp_path)
    fold = json.loads((Path(s["folds"][0]["run"]) / "metrics.json").read_text())
    assert fold["n_clips"] == 4 and fold["split"] == "test"  # fold 1 is the test split


def test_esc50_finetune_recipe_runs_with_a_published_checkpoint(esc50, tmp_path, caplog):
    ckpt = save_panns(published_state("panns_cnn6"), tmp_path / "Cnn6_mAP=0.343.pth")
    s = run_cv("esc50_panns_cnn14.yaml", esc50, tmp_path, "model.name=panns_cnn6", f"model.pretrained={ckpt}")
    assert s["folds"][0]["accuracy"] is not None
    assert "clips at 44100 Hz are resampled" in caplog.text  # the checkpoint's 32 kHz, said out loud


@pytest.mark.slow
def test_esc50_finetune_recipe_unchanged_with_cnn14(esc50, tmp_path):
    ckpt = save_panns(published_state("panns_cnn14"), tmp_path / "Cnn14_mAP=0.431.pth")
    assert run_cv("esc50_panns_cnn14.yaml", esc50, tmp_path, f"model.pretrained={ckpt}")["folds"][0]["accuracy"] >= 0
