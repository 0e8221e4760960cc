"""Sound event detection end to end: synthesize scenes, train a CRNN, evaluate with the official
metrics, write event lists and pictures, detect in a long file, and name the right verb on misuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from earshot.cli import main
from earshot.config import load_config
from earshot.data.manifest import read_manifest, write_manifest
from earshot.training.run import train
from tests.conftest import tone, write_wav

pytest.importorskip("sed_eval")
pytest.importorskip("sed_scores_eval")
SR = 16000


def test_detector_learns_and_reports_official_metrics(sed_run):
    m = json.loads((sed_run / "metrics.json").read_text())
    assert m["task"] == "detection" and m["n_strong_clips"] == 8
    for key in ("event_f1_macro", "event_f1_micro", "event_er", "event_deletion_rate", "event_insertion_rate",
                "segment_f1_micro", "segment_er", "psds1", "psds2", "mAP"):
        assert key in m, key
    assert m["segment_f1_micro"] > 0.7 and m["event_f1_macro"] > 0.3 and m["mAP"] > 0.8
    assert m["psds1"] is not None and 0.0 <= m["psds1"] <= 1.0
    lines = (sed_run / "events.tsv").read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label" and len(lines) > 5
    assert all(len(row.split("\t")) == 4 for row in lines[1:])
    pictures = sorted((sed_run / "events").glob("*.png"))
    assert pictures and pictures[0].stat().st_size > 5000
    assert (sed_run / "class_event_f1.png").exists()
    meta = __import__("torch").load(sed_run / "checkpoints/best.ckpt", weights_only=True)["earshot"]
    assert meta["task"]["name"] == "detection" and "decode" in meta["task"]


def test_detect_cli_long_file_and_json(sed_run, scenes, tmp_path, capsys):
    test = [c for c in read_manifest(scenes) if c.split == "test"]
    import soundfile as sf

    long = np.concatenate([sf.read(c.path)[0] for c in test])  # 24 s: eight 3 s windows
    f = write_wav(tmp_path / "long.wav", long.astype(np.float32))
    ckpt = str(sed_run / "checkpoints/best.ckpt")
    assert main(["detect", ckpt, str(f)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "filename\tonset\toffset\tevent_label"
    onsets = [float(r.split("\t")[1]) for r in rows[1:]]
    assert len(onsets) >= 4 and max(onsets) > 12.0  # events all along the file, not only the first window
    assert main(["detect", ckpt, str(f), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["events"] and "confidence" in data[0]["events"][0]


def test_evaluate_with_a_shorter_hop_between_windows(sed_run, scenes, tmp_path, capsys):
    """``earshot evaluate --hop``: a 24 s clip read in 3 s windows every 1 s instead of the checkpoint's
    hop averages three windows a frame; the timeline keeps its length and the report its keys."""
    from dataclasses import replace

    import soundfile as sf

    from earshot.data.manifest import Event
    from earshot.errors import ConfigError
    from earshot.inference.predictor import Predictor

    test = [c for c in read_manifest(scenes) if c.split == "test"]
    f = write_wav(tmp_path / "long.wav", np.concatenate([sf.read(c.path)[0] for c in test]).astype(np.float32))
    events = [Event(e.onset + 3.0 * i, e.offset + 3.0 * i, e.label) for i, c in enumerate(test) for e in c.events]
    clip = replace(test[0], id="long", path=str(f), duration=24.0, events=events,
                   labels=sorted({e.label for e in events}))
    m = write_manifest(tmp_path / "long.jsonl", [clip])
    ckpt = sed_run / "checkpoints/best.ckpt"
    pred = Predictor.load(ckpt)
    _, [default], _ = pred.clip_outputs([clip])
    pred.set_hop(1.0)
    _, [dense], _ = pred.clip_outputs([clip])
    assert dense.shape == default.shape and not np.allclose(dense, default)
    with pytest.raises(ConfigError, match="positive"):
        pred.set_hop(0.0)
    assert main(["evaluate", str(ckpt), str(m), "--hop", "1", "--out", str(tmp_path / "ev")]) == 0
    rep = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert rep["n_clips"] == 1 and 0.0 <= rep["event_f1_macro"] <= 1.0


def test_verbs_are_named_on_misuse(sed_run, tmp_path, capsys):
    f = write_wav(tmp_path / "x.wav", tone(SR, 1.0))
    assert main(["predict", str(sed_run / "checkpoints/best.ckpt"), str(f)]) == 2
    assert "use `earshot detect" in capsys.readouterr().err


def test_classifier_given_to_detect(tmp_path, capsys):
    from earshot.quickstart import run_quickstart  # noqa: F401  (a classifier checkpoint, built small below)
    from earshot.data.manifest import Clip

    clips = []
    for i in range(12):
        p = write_wav(tmp_path / f"c{i}.wav", tone(SR, 0.5, 300.0 if i % 2 else 1200.0))
        clips.append(Clip(id=f"c{i}", path=str(p), duration=0.5, sample_rate=SR, channels=1,
                          labels=["low" if i % 2 else "high"], split="train" if i < 10 else "test"))
    m = write_manifest(tmp_path / "m.jsonl", clips)
    run = train(load_config(None, [f"data.manifest={m}", f"out_dir={tmp_path / 'runs'}", "model.name=cnn_small",
                                   "trainer.max_epochs=1", "trainer.min_steps=0", "trainer.progress_bar=false", "data.clip_seconds=0.5",
                                   "data.val_fraction=0", "trainer.accelerator=cpu"]))
    assert main(["detect", str(run / "checkpoints/best.ckpt"), str(clips[0].path)]) == 2
    assert "classification model: use `earshot predict" in capsys.readouterr().err


def test_mean_teacher_trains_on_unlabelled_clips(scenes, tmp_path):
    run = train(load_config(None, [f"data.manifest={scenes}", f"out_dir={tmp_path}", "task.name=detection",
                                   "model.name=crnn", "data.clip_seconds=3", "trainer.max_epochs=1", "trainer.min_steps=0",
                                   "trainer.progress_bar=false", "trainer.accelerator=cpu", "task.mean_teacher=true",
                                   "task.rampup_epochs=0.5", "data.batch_size=8"]))
    log = (run / "logs" / "metrics.csv").read_text()
    assert "train/consistency" in log.splitlines()[0]
    from earshot.checkpoint import load_checkpoint

    ck = load_checkpoint(run / "checkpoints/best.ckpt")  # the student alone is the model
    assert ck.task.name == "detection"


def test_report_shows_the_event_pictures(sed_run):
    from earshot.report.html import build_report

    page = build_report(sed_run).read_text()
    assert "<h2>Events" in page and "(reference above" in page and page.count("alt='events of") >= 1
    assert "event F1" in page  # the detection per-class table


def test_time_shift_with_frame_targets_is_refused(scenes, tmp_path):
    from earshot.errors import ConfigError

    with pytest.raises(ConfigError, match="augment.shift moves the audio"):
        train(load_config(None, [f"data.manifest={scenes}", f"out_dir={tmp_path}", "task.name=detection",
                                 "model.name=crnn", "data.clip_seconds=3", "augment.shift=wrap",
                                 "augment.shift_seconds=0.5", "trainer.accelerator=cpu"]))


def test_detector_learns_from_scenes_mixed_on_the_fly(scenes, tmp_path):
    """No training clip in the manifest: every epoch mixes 48 new scenes from the event folders."""
    from earshot.errors import ConfigError

    held_out = write_manifest(tmp_path / "val_test.jsonl", [c for c in read_manifest(scenes) if c.split != "train"])
    root = scenes.parent
    args = [f"data.manifest={held_out}", f"out_dir={tmp_path}", "task.name=detection", "model.name=crnn",
            "data.clip_seconds=3", "trainer.max_epochs=8", "trainer.min_steps=0", "trainer.progress_bar=false",
            "trainer.accelerator=cpu", "optim.lr=3e-3", "data.batch_size=8", f"data.scenes.foreground={root / 'fg'}",
            f"data.scenes.background={root / 'bg'}", "data.scenes.ebr_db=[6,12]", "data.scenes.events_per_minute=[40,60]"]
    with pytest.raises(Exception, match="no training clips"):  # scenes are off while per_epoch is 0
        train(load_config(None, args))
    with pytest.raises(ConfigError, match="use task.name=detection or tagging"):
        train(load_config(None, [*args, "data.scenes.per_epoch=48", "task.name=classification"]))
    run = train(load_config(None, [*args, "data.scenes.per_epoch=48", "data.scenes.speed=[0.95,1.05]"]))
    m = json.loads((run / "metrics.json").read_text())
    assert m["segment_f1_micro"] > 0.7 and m["event_f1_macro"] > 0.3 and m["mAP"] > 0.8
    saved = load_config(run / "config.yaml")
    assert saved.data.scenes.per_epoch == 48 and saved.data.scenes.speed == [0.95, 1.05]


def test_scene_settings_are_checked_before_training(scenes, tmp_path):
    from earshot.errors import ConfigError, DataError

    root = scenes.parent
    base = [f"data.manifest={scenes}", f"out_dir={tmp_path}", "task.name=detection", "model.name=crnn",
            "data.clip_seconds=3", "trainer.accelerator=cpu", "data.scenes.per_epoch=8"]
    with pytest.raises(ConfigError, match="needs data.scenes.foreground"):
        train(load_config(None, base))
    both = [f"data.scenes.foreground={root / 'fg'}", f"data.scenes.background={root / 'bg'}"]
    with pytest.raises(DataError, match="folder not found"):
        train(load_config(None, [*base, f"data.scenes.foreground={tmp_path / 'nowhere'}",
                                 f"data.scenes.background={root / 'bg'}"]))
    with pytest.raises(DataError, match=r"\['hum'\] are not among the labels"):
        train(load_config(None, [*base, *both, "data.labels=[beep]"]))
    with pytest.raises(ConfigError, match="add strong to task.train_on"):
        train(load_config(None, [*base, *both, "task.train_on=[weak]"]))
