"""Published dataset layouts, mimicked with tiny synthesized audio."""

import numpy as np
import pytest

from earshot.data.sources import (prepare_esc50, prepare_files, prepare_fsdkaggle2018, prepare_urbansound8k)
from earshot.errors import DataError
from tests.conftest import tone, write_wav


def _fsdkaggle(tmp_path, train_rows, test_rows=None):
    root = tmp_path / "fsd"
    for name, *_ in train_rows:
        write_wav(root / "audio_train" / name, tone(sr=32000, seconds=0.5), sr=32000)
    lines = ["fname,label,manually_verified"] + [",".join(map(str, r)) for r in train_rows]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    if test_rows:
        for name, *_ in test_rows:
            write_wav(root / "audio_test" / name, tone(sr=32000, seconds=0.5), sr=32000)
        lines = ["fname,label,usage"] + [",".join(map(str, r)) for r in test_rows]
        (root / "test_post_competition_scoring_clips.csv").write_text("\n".join(lines) + "\n")
    return root


def test_fsdkaggle2018_layout_options(tmp_path):
    rows = [(f"{lab}{i}.wav", lab, i % 2) for lab in ("Bark", "Cello") for i in range(8)]
    root = _fsdkaggle(tmp_path, rows, [("t1.wav", "Bark", "Public"), ("t2.wav", "Cello", "Private"),
                                       ("t3.wav", "Trumpet", "Public")])
    r = prepare_fsdkaggle2018(root, unverified_weight=0.3, holdout_fold=1, n_folds=4)
    train = [c for c in r.clips if c.split == "train"]
    val = [c for c in r.clips if c.split == "val"]
    test = [c for c in r.clips if c.split == "test"]
    assert len(test) == 2 and len(train) + len(val) == 16
    assert val and all(c.verified for c in val)  # validation = verified clips of the held-out fold
    assert {c.weight for c in train if not c.verified} == {0.3}
    assert any("'Trumpet' is absent from the training labels" in s.reason and s.line == 4 for s in r.skipped.items)
    only = prepare_fsdkaggle2018(root, verified_only=True, holdout_fold=None)
    assert only.excluded == 8 and all(c.verified for c in only.clips if c.split == "train")


def test_fsdkaggle2018_bad_verified_flag_and_duplicates(tmp_path):
    rows = [("a.wav", "Bark", 1), ("b.wav", "Bark", "yes please"), ("c.wav", "Cello", 1), ("a.wav", "Bark", 1)]
    root = _fsdkaggle(tmp_path, rows)
    r = prepare_fsdkaggle2018(root, holdout_fold=None)
    assert sorted(c.id for c in r.clips) == ["a", "c"]
    by_line = {s.line: s.reason for s in r.skipped.items}
    assert "expected 0 or 1, found 'yes please'" in by_line[3]
    assert "duplicate file 'a.wav'" in by_line[5]


def test_esc50_layout_folds_esc10_and_missing_audio(tmp_path):
    root = tmp_path / "ESC-50"
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for i, (cat, esc10) in enumerate([("dog", "True"), ("rain", "False")] * 5):
        name = f"{i % 5 + 1}-{1000 + i}-A-{i}.wav"
        lines.append(f"{name},{i % 5 + 1},{i % 2},{cat},{esc10},{1000 + i},A")
        if i != 3:  # one file missing, as in partial copies
            write_wav(root / "audio" / name, tone(sr=44100, seconds=0.3), sr=44100)
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    r = prepare_esc50(root)
    assert len(r.clips) == 9 and {c.fold for c in r.clips} == {1, 2, 3, 4, 5}
    assert len(r.skipped) == 1 and "file not found" in r.skipped.items[0].reason and r.skipped.items[0].line == 5
    assert {c.labels[0] for c in prepare_esc50(root, esc10=True).clips} == {"dog"}


def test_urbansound8k_layout(tmp_path):
    root = tmp_path / "UrbanSound8K"
    header = "slice_file_name,fsID,start,end,salience,fold,classID,class"
    rows = []
    for fold in (1, 2, 10):
        name = f"100{fold}-3-0-0.wav"
        write_wav(root / "audio" / f"fold{fold}" / name, tone(seconds=0.3))
        rows.append(f"{name},100{fold},0.0,0.3,1,{fold},3,dog_bark")
    rows.append("x.wav,1,0,1,1,three,3,dog_bark")
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join([header, *rows]) + "\n")
    r = prepare_urbansound8k(root)
    assert sorted(c.fold for c in r.clips) == [1, 2, 10] and r.clips[0].extra == {"salience": 1}
    assert r.skipped.items[0].line == 5 and "not a number" in r.skipped.items[0].reason


def test_files_source_stratified_folds(tmp_path):
    for cls in ("cough", "doorslam"):
        for i in range(10):
            write_wav(tmp_path / f"{cls}{100 + i:03d}.wav", tone(seconds=0.2))
    r = prepare_files(tmp_path, n_folds=5)
    for cls in ("cough", "doorslam"):
        folds = sorted(c.fold for c in r.clips if c.labels == [cls])
        assert folds == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    with pytest.raises(DataError):
        prepare_files(tmp_path / "nope")


def test_long_clip_among_short_ones_is_noted_not_lost(tmp_path):
    for i in range(5):
        write_wav(tmp_path / "a" / f"s{i}.wav", tone(seconds=1.0))
    write_wav(tmp_path / "a" / "long.wav", np.tile(tone(seconds=1.0), 30))
    from earshot.data.sources import prepare_folder

    r = prepare_folder(tmp_path)
    assert len(r.clips) == 6 and len(r.skipped) == 0
    assert len(r.skipped.notes) == 1 and "long clip: 30.0 s" in r.skipped.notes[0].reason


def test_prepare_cli_for_each_layout(tmp_path, capsys):
    from earshot.cli import main

    for cls in ("cough", "keys"):
        for i in range(5):
            write_wav(tmp_path / "flat" / f"{cls}{i:03d}.wav", tone(seconds=0.2))
    assert main(["prepare", "files", str(tmp_path / "flat"), "--folds", "5", "-o", str(tmp_path / "f.jsonl")]) == 0
    assert "clips: 10" in capsys.readouterr().out
    rows = [(f"{lab}{i}.wav", lab, i % 2) for lab in ("Bark", "Cello") for i in range(4)]
    root = _fsdkaggle(tmp_path, rows)
    assert main(["prepare", "fsdkaggle2018", str(root), "--verified-only", "--holdout-fold", "0",
                 "-o", str(tmp_path / "k.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "clips: 4" in out and "excluded by option: 4" in out
