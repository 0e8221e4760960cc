"""Seed 002 (SampleCNN) recipes: every recipe loads, and the MagnaTagATune recipe runs end to end on a
tiny mimic of the dataset's layout (multi-label, mp3, split by folder, staged SGD)."""

import json

import numpy as np
import pytest
import soundfile as sf

from earshot.cli import main
from earshot.config import load_config
from tests.conftest import REPO


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")))
def test_every_recipe_loads(recipe):
    cfg = load_config(REPO / "recipes" / recipe)
    assert cfg.name


@pytest.fixture(scope="module")
def mtt(tmp_path_factory):
    from earshot.data.synth import synth_clip

    root = tmp_path_factory.mktemp("mtt")
    rng = np.random.default_rng(0)
    tags = ["clicks", "harmonic", "noise_burst", "quiet"]  # "quiet" never appears: dropped from the top 3
    lines = ["\t".join(f'"{h}"' for h in ["clip_id", *tags, "mp3_path"])]
    for i in range(24):
        folder = "0123456789abcdef"[i % 16]
        present = [t for j, t in enumerate(tags[:3]) if (i >> j) & 1] or ["clicks"]
        x = sum(synth_clip(t, 22050, rng, 3.0) for t in present)
        path = root / "mp3" / folder / f"song{i:02d}.mp3"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x / np.abs(x).max() * 0.5, 22050, format="MP3")
        lines.append("\t".join(f'"{v}"' for v in [i, *[int(t in present) for t in tags], f"{folder}/song{i:02d}.mp3"]))
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    return root


def test_mtt_recipe_trains_a_samplecnn_tagger(mtt, tmp_path, capsys):
    over = [f"data.prepare.root={mtt}", "data.prepare.n_tags=3", f"data.manifest={tmp_path / 'mtt.jsonl'}",
            f"data.audio_cache={tmp_path / 'cache'}", "data.num_workers=0", f"out_dir={tmp_path / 'runs'}",
            "model.name=samplecnn_basic", "data.batch_size=4", "trainer.max_epochs=2", "trainer.min_steps=0", "trainer.progress_bar=false",
            "trainer.accelerator=cpu"]
    assert main(["train", str(REPO / "recipes" / "samplecnn_mtt.yaml"), *over]) == 0
    out = capsys.readouterr().out
    assert "tagging evaluated on the test split" in out and "roc_auc_macro" in out
    run = next((tmp_path / "runs").iterdir())
    m = json.loads((run / "metrics.json").read_text())
    assert m["labels"] == ["clicks", "harmonic", "noise_burst"] and m["n_clips"] == 3  # folders d, e and f
    assert len(list((tmp_path / "cache" / "22050hz").glob("*.npy"))) >= 15  # train + val decoded once
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text())))
    assert cfg["optim"]["schedule"] == "staged" and cfg["task"]["name"] == "tagging"
