"""MagnaTagATune, Speech Commands, DCASE 2017 Task 4 and multi-label CSVs, mimicked with tiny audio."""

import json

import numpy as np
import pytest
import soundfile as sf

from earshot.cli import main
from earshot.data.mixing import build_event_mixtures
from earshot.data.sources import prepare_csv, prepare_dcase2017_task4, prepare_mtt, prepare_speech_commands
from earshot.data.sources.mtt import mtt_split
from earshot.errors import DataError
from tests.conftest import tone, write_wav


def _mtt(tmp_path, rows, tags=("guitar", "piano", "rock", "vocal")):
    root = tmp_path / "mtt"
    lines = ["\t".join(f'"{h}"' for h in ("clip_id", *tags, "mp3_path"))]
    for clip_id, hot, mp3 in rows:
        lines.append("\t".join(f'"{v}"' for v in (clip_id, *hot, mp3)))
        if mp3 and not mp3.startswith("x"):
            f = root / "mp3" / mp3
            f.parent.mkdir(parents=True, exist_ok=True)
            sf.write(f, tone(16000, 0.5), 16000, format="MP3") if mp3.endswith(".mp3") else None
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    return root


def test_mtt_top_tags_splits_by_folder_and_reports_bad_rows(tmp_path):
    rows = [("1", (1, 0, 1, 0), "0/a.mp3"), ("2", (1, 1, 0, 0), "b/b.mp3"), ("3", (0, 0, 0, 0), "c/c.mp3"),
            ("4", (1, 0, 1, 1), "d/d.mp3"), ("5", (0, 2, 0, 0), "e/e.mp3"), ("6", (1, 0, 0, 0), "f/f.mp3")]
    root = _mtt(tmp_path, rows)
    (root / "mp3" / "f" / "f.mp3").write_bytes(b"\xff\xfb\x90" + b"\x00" * 50)  # an mp3 that fails to decode
    r = prepare_mtt(root, n_tags=3)
    by_id = {c.extra["clip_id"]: c for c in r.clips}
    assert set(by_id) == {"1", "2", "3", "4"}
    assert by_id["1"].split == "train" and by_id["2"].split == "train" and by_id["3"].split == "val"
    assert by_id["4"].split == "test"
    assert by_id["1"].labels == ["guitar", "rock"] and by_id["4"].labels == ["guitar", "rock"]  # vocal not top-3
    assert by_id["3"].labels == []  # no positive tag: kept, all-negative
    reasons = {s.line: s.reason for s in r.skipped.items}
    assert "tag column 'piano' holds '2', expected 0 or 1" in reasons[6]
    assert any("f.mp3" in s.path for s in r.skipped.items)  # the undecodable mp3 is named
    assert [mtt_split(p) for p in ("0/x", "b/x", "c/x", "d/x", "f/x", "g/x")] == \
        ["train", "train", "val", "test", "test", None]


def test_speech_commands_35_and_12_word_tasks(tmp_path):
    root = tmp_path / "sc"
    for word in ("yes", "no", "dog", "cat"):
        for i in range(3):
            write_wav(root / word / f"spk{i}_nohash_0.wav", tone(16000, 1.0, 300 + i * 50))
    write_wav(root / "_background_noise_" / "white.wav", np.random.default_rng(0).normal(0, 0.1, 16000 * 5)
              .astype(np.float32))
    (root / "validation_list.txt").write_text("yes/spk1_nohash_0.wav\ndog/spk1_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/spk2_nohash_0.wav\ncat/spk2_nohash_0.wav\n")
    r35 = prepare_speech_commands(root, task="35")
    assert sorted({c.labels[0] for c in r35.clips}) == ["cat", "dog", "no", "yes"] and len(r35.clips) == 12
    split = {(c.extra["word"], c.path.split("/")[-1]): c.split for c in r35.clips}
    assert split[("yes", "spk1_nohash_0.wav")] == "val" and split[("cat", "spk2_nohash_0.wav")] == "test"
    assert split[("no", "spk0_nohash_0.wav")] == "train"
    r12 = prepare_speech_commands(root, task="12", silence_fraction=0.5, silence_dir=str(tmp_path / "sil"))
    labels = [c.labels[0] for c in r12.clips]
    assert labels.count("_unknown_") == 6 and labels.count("_silence_") == 6
    assert all(abs(c.duration - 1.0) < 1e-6 for c in r12.clips if c.labels == ["_silence_"])
    with pytest.raises(DataError, match="validation_list"):
        prepare_speech_commands(tmp_path / "sil")


def test_dcase2017_weak_labels_merge_rows_into_multi_label_clips(tmp_path):
    root = tmp_path / "d17"
    for name in ("Yabc_30.000_40.000", "Ydef_0.000_10.000"):
        write_wav(root / "audio" / f"{name}.wav", tone(16000, 1.0))
    (root / "groundtruth_weak_label_training_set.csv").write_text(
        "abc\t30.000\t40.000\tCar\nabc\t30.000\t40.000\tAir horn, truck horn\n"
        "def\t0.000\t10.000\tTrain\nghi\t0.000\t10.000\tBus\ndef\t0.000\t10.000\t\n"
        "def\t0.000\t10.000\tUnicorn\n")
    r = prepare_dcase2017_task4(root)
    by = {c.extra["youtube_id"]: c for c in r.clips}
    assert sorted(by["abc"].labels) == ["Air horn, truck horn", "Car"] and by["def"].labels == ["Train"]
    reasons = {s.line: s.reason for s in r.skipped.items}
    assert "no audio file for ghi" in reasons[4] and reasons[5] == "empty label"
    assert "unknown label 'Unicorn'" in reasons[6]


def test_generic_multi_label_csv_with_a_configurable_separator(tmp_path, capsys):
    for n in ("a", "b", "c"):
        write_wav(tmp_path / f"{n}.wav", tone(16000, 0.5))
    (tmp_path / "m.csv").write_text("filename,labels\na.wav,dog;cat\nb.wav,\nc.wav,bird\n")
    r = prepare_csv(tmp_path / "m.csv", label_sep=";")
    assert {c.id: c.labels for c in r.clips} == {"a": ["dog", "cat"], "b": [], "c": ["bird"]}
    assert main(["prepare", "csv", str(tmp_path / "m.csv"), "--label-sep", ";", "-o", str(tmp_path / "m.jsonl")]) == 0
    assert "multi-label: 1 clip(s) with several labels, 1 with none" in capsys.readouterr().out


def test_event_mixtures_are_reproducible_and_split_by_recording(tmp_path):
    ev = tmp_path / "events"
    rng = np.random.default_rng(0)
    for cls in ("cough", "door", "keys"):
        for i in range(5):
            write_wav(ev / f"{cls}{i:03d}.wav", (rng.normal(0, 0.2, 4000) * np.hanning(4000)).astype(np.float32))
    bg = write_wav(tmp_path / "bg.wav", rng.normal(0, 0.05, 16000 * 6).astype(np.float32))
    kw = dict(n_train=6, n_val=2, n_test=4, clip_seconds=1.0, sample_rate=8000, seed=3)
    m1 = build_event_mixtures(ev, [bg], tmp_path / "m1", **kw)
    m2 = build_event_mixtures(ev, [bg], tmp_path / "m2", **kw)
    a = [json.loads(x) for x in m1.read_text().splitlines()[1:]]  # after the header
    b = [json.loads(x) for x in m2.read_text().splitlines()[1:]]
    assert [x["labels"] for x in a] == [x["labels"] for x in b] and len(a) == 12
    assert sf.read(tmp_path / "m1" / "audio" / "test" / "test_00000.wav")[0].tolist() == \
        sf.read(tmp_path / "m2" / "audio" / "test" / "test_00000.wav")[0].tolist()
    assert all(1 <= len(x["labels"]) <= 3 and len(x["events"]) == len(x["labels"]) for x in a)
    rec = json.loads((tmp_path / "m1" / "recordings.json").read_text())
    for cls in ("cough", "door", "keys"):
        assert not set(rec["train"][cls]) & set(rec["test"][cls]) and len(rec["test"][cls]) == 2
