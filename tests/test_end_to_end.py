"""End-to-end runs on tiny synthetic data: train, evaluate, predict, resume, and the CLI."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import earshot
from earshot.audio.io import resample
from earshot.cli import build_parser, main
from earshot.config import load_config
from earshot.data.manifest import read_manifest, write_manifest
from earshot.data.synth import synth_clip
from earshot.errors import DataError
from earshot.training.run import train
from tests.conftest import write_wav


def test_run_folder_has_everything(trained_run):
    for f in ("config.yaml", "metrics.json", "summary.json", "skipped.json", "class_accuracy.png",
              "confusion_matrix.png", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (trained_run / f).exists(), f
    assert any((trained_run / "tensorboard").iterdir())
    m = json.loads((trained_run / "metrics.json").read_text())
    assert m["split"] == "test" and m["n_clips"] > 0
    assert m["accuracy"] > 0.6  # 4 classes: chance is 0.25
    assert len(m["confusion_matrix"]) == 4 and "map@3" in m


def test_checkpoint_describes_itself(trained_run):
    ck = torch.load(trained_run / "checkpoints" / "best.ckpt", weights_only=True)
    meta = ck["earshot"]
    assert meta["model"]["name"] == "cnn_small"
    assert meta["model"]["frontend"]["sample_rate"] == 16000
    assert meta["task"]["labels"] == ["chirp", "clicks", "noise_burst", "tone"]
    assert meta["version"] == earshot.__version__
    assert meta["config"]["data"]["clip_seconds"] == 0.8
    assert not torch.all(ck["state_dict"]["model.input.norm.std"] == 1)  # normalisation was fitted


def test_python_api_predicts_any_rate_and_channels(trained_run, tmp_path):
    pred = earshot.load(trained_run / "checkpoints" / "best.ckpt")
    rng = np.random.default_rng(5)
    hits = 0
    for cls in ("tone", "clicks", "noise_burst", "chirp"):
        x = synth_clip(cls, 44100, rng, duration=1.2)
        p = write_wav(tmp_path / f"{cls}.wav", np.stack([x, x], 1), sr=44100)
        r = pred.predict(p)
        assert r.notes == ["mixed 2 channels down to mono", "resampled 44100 Hz -> 16000 Hz"]
        assert len(r.top) == 3 and abs(r.probs.sum() - 1) < 1e-5
        ref = pred.predict_array(resample(sf.read(p, dtype="float32")[0].mean(1), 44100, 16000), 16000)
        assert np.abs(r.probs - ref.probs).max() < 1e-4  # the file path equals mixing down and resampling first
        hits += r.label == cls
    assert hits >= 2  # a 12-epoch model on 4 classes: well above chance (1 in 4)
    long = pred.predict_array(np.concatenate([synth_clip("clicks", 16000, rng, 2.0)] * 10), 16000)
    assert long.label in pred.labels


def test_predict_cli_survives_bad_files(trained_run, tmp_path, capsys):
    d = tmp_path / "in"
    write_wav(d / "good.wav", synth_clip("tone", 22050, np.random.default_rng(0), 1.0), sr=22050)
    (d / "broken.wav").write_text("not audio at all" * 20)
    (d / "empty.flac").write_bytes(b"")
    ckpt = str(trained_run / "checkpoints" / "best.ckpt")
    assert main(["predict", ckpt, str(d), "--format", "csv", "--top-k", "2"]) == 0
    out, err = capsys.readouterr()
    rows = out.strip().splitlines()
    assert rows[0] == "file,label1,score1,label2,score2" and len(rows) == 2 and "good.wav" in rows[1]
    assert "error: " in err and "broken.wav: not a readable audio file" in err and "empty.flac: empty file" in err
    assert "resampled 22050 Hz -> 16000 Hz" in err and "Traceback" not in err
    assert main(["predict", ckpt, str(d / "good.wav"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["label"]
    assert main(["predict", ckpt, str(d / "broken.wav")]) == 1  # every file failed


def test_evaluate_cli_writes_metrics_and_plots(trained_run, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", str(trained_run / "checkpoints" / "best.ckpt"), str(tiny_dataset),
                 "--split", "test", "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["split"] == "test" and rep["n_clips"] == 20
    assert set(rep["per_class_accuracy"]) == {"chirp", "clicks", "noise_burst", "tone"}
    assert (out / "class_accuracy.png").stat().st_size > 1000 and (out / "confusion_matrix.png").exists()
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_skips_clips_with_labels_the_model_lacks(trained_run, tiny_dataset, tmp_path):
    clips = read_manifest(tiny_dataset)
    clips[0].labels = ["trumpet"]
    m = write_manifest(tmp_path / "m.jsonl", clips)
    rep = earshot.load(trained_run).evaluate(read_manifest(m))
    assert rep["skipped"] == 1 and rep["n_clips"] == len(clips) - 1


def test_training_skips_bad_files_and_strict_fails(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset.parent, data)
    m = data / "manifest.jsonl"
    clips = read_manifest(m)
    train_clips = [c for c in clips if c.split == "train"]
    assert train_clips[0].path.startswith(str(data))  # manifest paths are relative: the copy is self-contained
    Path(train_clips[0].path).unlink()  # deleted after prepare
    bad = Path(train_clips[1].path)
    bad.write_bytes(bad.read_bytes()[:100])  # truncated after prepare
    base = [f"data.manifest={m}", f"out_dir={tmp_path / 'runs'}", "trainer.max_epochs=1", "trainer.min_steps=0", "trainer.progress_bar=false",
            "trainer.accelerator=cpu", "model.name=cnn_small", "data.clip_seconds=0.5"]
    run = train(load_config(None, base))
    sk = json.loads((run / "skipped.json").read_text())
    assert sk["count"] == 2
    assert {s["reason"].split(":")[0].split(" (")[0] for s in sk["skipped"]} == {"file not found", "truncated WAV"}
    with pytest.raises(Exception, match="file not found"):
        train(load_config(None, [*base, "data.strict=true"]))


def test_unknown_val_label_is_reported_not_fatal(tiny_dataset, tmp_path):
    clips = read_manifest(tiny_dataset)
    val = next(c for c in clips if c.split == "val")
    val.labels = ["never_in_train"]
    m = write_manifest(tmp_path / "m.jsonl", clips)
    run = train(load_config(None, [f"data.manifest={m}", f"out_dir={tmp_path}", "trainer.max_epochs=1", "trainer.min_steps=0",
                                   "trainer.progress_bar=false", "trainer.accelerator=cpu", "data.clip_seconds=0.5"]))
    sk = json.loads((run / "skipped.json").read_text())
    assert any("'never_in_train' is absent from the training labels" in s["reason"] for s in sk["skipped"])


def test_resume_continues_from_last_checkpoint(trained_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    cfg = (run / "config.yaml").read_text().replace("max_epochs: 12", "max_epochs: 13")
    (run / "config.yaml").write_text(cfg)
    before = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert main(["train", "--resume", str(run)]) == 0
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert after == before + 1


def test_missing_manifest_is_one_clean_line(tmp_path, capsys):
    assert main(["train", "optim.lr=1e-3", f"data.manifest={tmp_path / 'none.jsonl'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "manifest not found" in err and "Traceback" not in err
    with pytest.raises(DataError):
        train(load_config(None, [f"data.manifest={tmp_path / 'none.jsonl'}"]))


def test_prepare_cli_prints_a_summary(class_folder, tmp_path, capsys):
    (class_folder / "tone" / "empty.wav").write_bytes(b"")
    out = tmp_path / "m.jsonl"
    assert main(["prepare", "folder", str(class_folder), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "clips: 18" in text and "classes: 3" in text and "skipped: 1" in text and "empty file" in text
    assert main(["prepare", "folder", str(class_folder), "-o", str(out), "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err


def test_models_cli_lists_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in earshot.list_models():
        assert name in out
    assert "logmel" in out and "32000 Hz" in out


def test_every_command_has_help():
    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command")
    assert set(sub.choices) == {"quickstart", "prepare", "synthesize", "train", "evaluate", "predict", "detect", "models", "cv",
                                "submit", "report", "download", "baseline", "embed", "train-head", "serve", "client", "export",
                                "cache", "merge-cache"}
    for name, sp in sub.choices.items():
        assert sp.description, name
    r = subprocess.run([sys.executable, "-m", "earshot.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "quickstart" in r.stdout and "examples:" in r.stdout


def test_quickstart_runs_offline_on_its_built_in_data(tmp_path, capsys):
    from earshot.quickstart import run_quickstart

    run = run_quickstart(tmp_path / "qs", n_per_class=10, overrides=["trainer.max_epochs=1", "trainer.min_steps=0", "trainer.progress_bar=false"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["split"] == "test" and len(m["labels"]) == 6 and m["n_clips"] > 0
    assert (tmp_path / "qs" / "data" / "manifest.jsonl").exists() and (run / "checkpoints" / "best.ckpt").exists()
