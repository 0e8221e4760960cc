"""Training switches, cross-validation, Kaggle submission and the HTML report, on tiny data."""

import csv
import json
import re
import warnings
import shutil
import subprocess

import numpy as np
import pytest

from earshot.cli import main
from earshot.config import load_config
from earshot.data.manifest import read_manifest, write_manifest
from earshot.data.synth import synth_clip
from earshot.errors import DataError
from earshot.inference.submission import kaggle_submission, validate_submission
from earshot.report.html import build_report
from earshot.training.cv import cross_validate
from earshot.training.run import train
from tests.conftest import write_wav

BASE = ["trainer.progress_bar=false", "trainer.accelerator=cpu", "data.clip_seconds=0.5", "data.batch_size=8"]


def test_all_augmentations_and_balanced_sampling_train(tiny_dataset, tmp_path):
    cfg = load_config(None, [f"data.manifest={tiny_dataset}", f"out_dir={tmp_path}", "trainer.max_epochs=2", "trainer.min_steps=0", *BASE,
                             "augment.mixup_alpha=0.4", "augment.mixup_on=logmel", "augment.specaugment=true",
                             "augment.filter_augment=true",
                             "augment.shift=wrap", "augment.shift_seconds=0.1", "augment.noise_prob=0.5",
                             "augment.gain_db=6", "data.balanced=true", "task.label_smoothing=0.1",
                             "optim.name=sgd", "optim.lr=0.01", "trainer.monitor=map@3", "trainer.patience=3"])
    run = train(cfg)
    assert json.loads((run / "metrics.json").read_text())["n_clips"] == 20


def test_same_seed_reproduces_a_run(tiny_dataset, tmp_path):
    over = [f"data.manifest={tiny_dataset}", "trainer.max_epochs=1", "trainer.min_steps=0", *BASE, "augment.mixup_alpha=0.4",
            "augment.noise_prob=0.5", "augment.specaugment=true"]
    a = train(load_config(None, [*over, f"out_dir={tmp_path / 'a'}"]))
    b = train(load_config(None, [*over, f"out_dir={tmp_path / 'b'}"]))
    pa = (a / "predictions.jsonl").read_text()
    assert pa == (b / "predictions.jsonl").read_text()


def test_clip_shorter_than_one_stft_window_is_noted_and_kept(tiny_dataset, tmp_path):
    clips = read_manifest(tiny_dataset)
    short = write_wav(tmp_path / "short.wav", synth_clip("tone", 16000, np.random.default_rng(0), 0.01))  # 160 samples
    c = clips[0]
    clips.append(type(c)(id="short", path=str(short), duration=0.01, sample_rate=16000, channels=1,
                         labels=list(c.labels), split="train"))
    m = write_manifest(tmp_path / "m.jsonl", clips)
    run = train(load_config(None, [f"data.manifest={m}", f"out_dir={tmp_path}", "trainer.max_epochs=1", "trainer.min_steps=0", *BASE]))
    sk = json.loads((run / "skipped.json").read_text())
    assert sk["count"] == 0
    assert any("shorter than the model's input (160 < 512 samples" in n["reason"] for n in sk["notes"])


def test_cross_validation_over_folds(tiny_dataset, tmp_path):
    clips = read_manifest(tiny_dataset)
    for i, c in enumerate(clips):
        c.fold = 1 + i % 3
    m = write_manifest(tmp_path / "folds.jsonl", clips)
    cfg = load_config(None, [f"data.manifest={m}", f"out_dir={tmp_path}", "name=cvtest", "trainer.max_epochs=1", "trainer.min_steps=0",
                             *BASE])
    s = cross_validate(cfg, [1, 2])
    assert [r["fold"] for r in s["folds"]] == [1, 2]
    accs = s["accuracy"]["values"]
    assert s["accuracy"]["mean"] == pytest.approx(np.mean(accs)) and s["accuracy"]["std"] == pytest.approx(np.std(accs))
    for r in s["folds"]:
        test_ids = {json.loads(line)["id"] for line in open(f"{r['run']}/predictions.jsonl")}
        assert test_ids == {c.id for c in clips if c.fold == r["fold"]}
    assert (tmp_path / "cvtest-cv.json").exists()


def test_cv_needs_folds_in_the_manifest(tiny_dataset, tmp_path, capsys):
    assert main(["cv", f"data.manifest={tiny_dataset}", f"out_dir={tmp_path}", "folds=1,2"]) == 2
    assert "have no fold" in capsys.readouterr().err


def test_kaggle_submission_keeps_sample_order(trained_run, tmp_path):
    audio = tmp_path / "audio_test"
    rng = np.random.default_rng(2)
    names = []
    for i, cls in enumerate(["clicks", "tone", "chirp", "noise_burst"]):
        names.append(f"{i:08x}.wav")
        write_wav(audio / names[-1], synth_clip(cls, 44100, rng, 1.0), sr=44100)
    (audio / "corrupt.wav").write_bytes(b"RIFF....garbage")
    names.insert(2, "corrupt.wav")
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("fname,label\n" + "".join(f"{n},Laughter Hi-hat Flute\n" for n in reversed(names)))
    out = tmp_path / "sub.csv"
    r = kaggle_submission(trained_run, audio, sample, out)
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["fname", "label"] and [x[0] for x in rows[1:]] == list(reversed(names))
    assert all(len(x[1].split()) == 3 for x in rows[1:])
    assert len(r["failed"]) == 1 and "corrupt.wav" in r["failed"][0]
    bad = tmp_path / "bad.csv"
    bad.write_text("fname,label\n" + "".join(f"{n},tone\n" for n in names))
    with pytest.raises(DataError, match="rows differ"):
        validate_submission(bad, sample, 3, ["tone"])
    assert main(["submit", str(trained_run / "checkpoints" / "best.ckpt"), str(audio), "--format", "kaggle",
                 "-o", str(tmp_path / "cli.csv")]) == 0
    assert (tmp_path / "cli.csv").read_text() == out.read_text()


def test_report_is_self_contained_html(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    preds[0]["top"][0] = ["noise_burst" if preds[0]["labels"] != ["noise_burst"] else "tone", 0.99]  # one sure miss
    (run / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    out = build_report(run)
    page = out.read_text()
    for needle in ("Training curves", "Per class", "Confusion matrix", "Most confidently wrong", "<audio controls",
                   "data:audio/wav;base64,", "data:image/png;base64,", "max_epochs"):
        assert needle in page, needle
    assert "src='http" not in page and 'src="http' not in page  # nothing fetched from a server
    shot = tmp_path / "shot.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed: the HTML was checked, not rendered")
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
                        f"--screenshot={shot}", "--window-size=1200,3000", f"file://{out}"],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20000, r.stderr[-2000:]
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          f"--user-data-dir={tmp_path / 'prof2'}", "--dump-dom", f"file://{out}"],
                         capture_output=True, text=True, timeout=120).stdout
    assert "Most confidently wrong" in dom and dom.count("<img") >= 4


def test_training_without_validation_keeps_the_last_epoch(tiny_dataset, tmp_path):
    clips = [c for c in read_manifest(tiny_dataset) if c.split != "val"]
    m = write_manifest(tmp_path / "noval.jsonl", clips)
    over = [f"data.manifest={m}", f"out_dir={tmp_path}", "trainer.max_epochs=2", "trainer.min_steps=0", *BASE]
    with pytest.raises(DataError, match="data.val_fraction=0"):
        train(load_config(None, [*over, "data.val_fraction=0.0001"]))
    run = train(load_config(None, [*over, "data.val_fraction=0"]))
    m = json.loads((run / "metrics.json").read_text())
    assert m["selection"] == "last epoch (no validation)" and m["split"] == "test"
    with warnings.catch_warnings():  # the report of such a run: only what it has, and no warning printed
        warnings.simplefilter("error")
        page = build_report(run).read_text()
    assert "validation metrics" not in page and "Training curves" in page
    assert re.search(r"splits</td><td>test \d+ · train \d+<", page), page.split("<h2>Data")[1][:600]
    assert "{" not in page.split("<main>")[1].split("<details>")[0]
    assert "training time" in page and "train_seconds" not in page.split("<details>")[0]
    assert (run / "checkpoints" / "best.ckpt").read_bytes() == (run / "checkpoints" / "last.ckpt").read_bytes()
