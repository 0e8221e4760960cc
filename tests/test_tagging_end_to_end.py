"""Multi-label tagging from a manifest to a checkpoint with tuned thresholds, predictions and a report."""

import json

import numpy as np
import pytest
import torch

import earshot
from earshot.cli import main
from earshot.config import load_config
from earshot.data.manifest import Clip, read_manifest, write_manifest
from earshot.data.synth import synth_clip
from earshot.report.html import build_report
from earshot.training.run import train
from tests.conftest import write_wav

CLASSES = ("tone", "clicks", "noise_burst")


@pytest.fixture(scope="module")
def tag_manifest(tmp_path_factory):
    """Clips holding 0-2 of three synthetic sound classes at once (every combination appears)."""
    root = tmp_path_factory.mktemp("tags")
    rng = np.random.default_rng(0)
    combos = [(), ("tone",), ("clicks",), ("noise_burst",), ("tone", "clicks"), ("tone", "noise_burst"),
              ("clicks", "noise_burst")]
    clips = []
    for i in range(98):
        labels = combos[i % len(combos)]
        x = 0.01 * rng.standard_normal(8000).astype(np.float32)
        for cls in labels:
            x = x + synth_clip(cls, 16000, rng, duration=0.5) * 3
        p = write_wav(root / f"m{i:03d}.wav", x / max(1.0, np.abs(x).max()))
        split = "test" if i % 7 == 0 or i % 11 == 0 else "val" if i % 5 == 0 else "train"
        clips.append(Clip(id=f"m{i:03d}", path=str(p), duration=0.5, sample_rate=16000, channels=1,
                          labels=sorted(labels), split=split))
    return write_manifest(root / "manifest.jsonl", clips)


@pytest.fixture(scope="module")
def tag_run(tag_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train(load_config(None, [f"data.manifest={tag_manifest}", f"out_dir={out}", "task.name=tagging",
                                    "trainer.max_epochs=10", "trainer.min_steps=0", "trainer.progress_bar=false", "trainer.accelerator=cpu",
                                    "model.name=cnn_small", "data.clip_seconds=0.5", "optim.lr=3e-3",
                                    "data.batch_size=8", "data.balanced=true"]))


def test_tagging_run_scores_and_stores_thresholds(tag_run):
    m = json.loads((tag_run / "metrics.json").read_text())
    assert m["task"] == "tagging" and m["roc_auc_macro"] > 0.65 and m["mAP"] > 0.55  # chance: 0.5 and ~0.43
    assert set(m["per_class_auc"]) == set(CLASSES) and m["negatives_only"] > 0
    assert (tag_run / "class_auc_ap.png").stat().st_size > 1000 and not (tag_run / "confusion_matrix.png").exists()
    meta = torch.load(tag_run / "checkpoints" / "best.ckpt", weights_only=True)["earshot"]
    assert meta["task"]["name"] == "tagging" and len(meta["task"]["thresholds"]) == 3
    assert meta["task"]["thresholds"] != [0.5, 0.5, 0.5]  # tuned on validation
    summary = json.loads((tag_run / "summary.json").read_text())
    assert summary["headline"][0] == "roc_auc_macro"


def test_predict_returns_every_tag_above_its_threshold(tag_run, tmp_path, capsys):
    pred = earshot.load(tag_run)
    rng = np.random.default_rng(9)
    x = synth_clip("tone", 16000, rng, 0.5) * 3 + synth_clip("clicks", 16000, rng, 0.5) * 3
    r = pred.predict_array(x / np.abs(x).max(), 16000)
    thr = dict(zip(pred.labels, pred.task.thresholds))
    assert all(p >= thr[lab] for lab, p in r.top)
    assert {lab for lab, _ in r.top} == {lab for lab, p in zip(pred.labels, r.probs) if p >= thr[lab]}
    f = write_wav(tmp_path / "two.wav", x / np.abs(x).max())
    assert main(["predict", str(tag_run), str(f), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["label"] for t in out[0]["top"]] == [lab for lab, _ in r.top]
    assert main(["predict", str(tag_run), str(f), str(f), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "file,label1,score1,label2,score2,label3,score3"  # room for every tag
    assert len(rows) == 3 and all(len(row.split(",")) == 7 for row in rows)


def test_evaluate_and_report_show_per_class_auc_and_ap(tag_run, tag_manifest, tmp_path, capsys):
    assert main(["evaluate", str(tag_run), str(tag_manifest), "--split", "test", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "roc_auc_macro" in text and "mAP" in text and "accuracy" not in text
    page = build_report(tag_run).read_text()
    assert "ROC-AUC" in page and "threshold" in page and "Confusion" not in page


def test_multi_label_manifest_on_a_single_label_recipe_names_the_fix(tag_manifest, tmp_path, capsys):
    assert main(["train", f"data.manifest={tag_manifest}", f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "classification needs one label per clip" in err and "task.name=tagging" in err
    assert "Traceback" not in err
