"""Seeds 000 and 004 end to end on a tiny mimic of the FSDKaggle2018 layout."""

import csv

import numpy as np
import pytest

from earshot.cli import main
from tests.conftest import REPO, write_wav

CLASSES = {"Bark": "clicks", "Cello": "harmonic", "Hi-hat": "noise_burst"}


@pytest.fixture(scope="module")
def fsdkaggle(tmp_path_factory):
    from earshot.data.synth import synth_clip

    root = tmp_path_factory.mktemp("FSDKaggle2018")
    rng = np.random.default_rng(0)
    train, test = ["fname,label,manually_verified"], ["fname,label,usage"]
    for label, kind in CLASSES.items():
        for i in range(16):
            name = f"{abs(hash((label, i))) % 10**8:08x}.wav"
            write_wav(root / "audio_train" / name, synth_clip(kind, 32000, rng, rng.uniform(0.3, 3.0)), sr=32000)
            train.append(f"{name},{label},{int(i % 3 != 0)}")
        for i in range(3):
            name = f"t{label}{i}.wav"
            write_wav(root / "audio_test" / name, synth_clip(kind, 32000, rng, 1.0), sr=32000)
            test.append(f"{name},{label},Public")
    (root / "train.csv").write_text("\n".join(train) + "\n")
    (root / "test_post_competition_scoring_clips.csv").write_text("\n".join(test) + "\n")
    names = [r.split(",")[0] for r in test[1:]]
    (root / "sample_submission.csv").write_text("fname,label\n" + "".join(f"{n},Bark Cello Hi-hat\n" for n in names))
    return root


@pytest.mark.parametrize("recipe,model", [("dcase2018_task2_kong.yaml", "kong2018_cnn"),
                                          ("kaggle_freesound_cnn1d.yaml", "cnn1d_dense_dropout")])
def test_seed_recipe_trains_and_submits(fsdkaggle, tmp_path, recipe, model, capsys):
    over = [f"data.prepare.root={fsdkaggle}", f"data.manifest={tmp_path / 'm.jsonl'}", f"out_dir={tmp_path}",
            "trainer.max_epochs=1", "trainer.min_steps=0", "trainer.progress_bar=false", "data.batch_size=8", "data.clip_seconds=1.0"]
    assert main(["train", str(REPO / "recipes" / recipe), *over]) == 0
    run = next(tmp_path.glob("*/checkpoints/best.ckpt")).parent.parent
    assert f"name: {model}" in (run / "config.yaml").read_text()
    out = tmp_path / "submission.csv"
    assert main(["submit", str(run / "checkpoints" / "best.ckpt"), str(fsdkaggle / "audio_test"), "--format",
                 "kaggle", "-o", str(out)]) == 0
    rows = list(csv.reader(open(out)))
    sample = list(csv.reader(open(fsdkaggle / "sample_submission.csv")))
    assert [r[0] for r in rows] == [r[0] for r in sample]
    assert all(set(r[1].split()) <= set(CLASSES) and len(r[1].split()) == 3 for r in rows[1:])
