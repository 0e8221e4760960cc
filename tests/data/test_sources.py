import json

import numpy as np
import pytest

from earshot.data.sources import prepare, prepare_csv, prepare_folder, prepare_fsdd, report_path
from earshot.errors import DataError
from tests.conftest import tone, write_wav


def test_folder_source_labels_and_stable_splits(class_folder):
    r = prepare_folder(class_folder, val_fraction=0.2, test_fraction=0.2)
    assert len(r.clips) == 18 and len(r.skipped) == 0
    assert {c.labels[0] for c in r.clips} == {"tone", "clicks", "noise_burst"}
    assert {c.split for c in r.clips} <= {"train", "val", "test"}
    again = prepare_folder(class_folder, val_fraction=0.2, test_fraction=0.2)
    assert [c.split for c in again.clips] == [c.split for c in r.clips]


def test_folder_with_split_folders(tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            write_wav(tmp_path / split / cls / f"{cls}.wav", tone())
    r = prepare_folder(tmp_path)
    assert sorted((c.split, c.labels[0]) for c in r.clips) == [("test", "a"), ("test", "b"), ("train", "a"), ("train", "b")]


def test_bad_files_are_skipped_reported_and_counted(class_folder, tmp_path):
    (class_folder / "tone" / "empty.wav").write_bytes(b"")
    (class_folder / "tone" / "text.wav").write_text("not audio" * 50)
    write_wav(class_folder / "clicks" / "silent.wav", np.zeros(4000, np.float32))
    x = tone()
    x[5] = np.nan
    write_wav(class_folder / "clicks" / "nan.wav", x, subtype="FLOAT")
    full = write_wav(class_folder / "noise_burst" / "full.wav", tone(seconds=1.0))
    (class_folder / "noise_burst" / "cut.wav").write_bytes(full.read_bytes()[:5000])
    (class_folder / "noise_burst" / "readme.txt").write_text("hi")
    out = tmp_path / "m.jsonl"
    r = prepare("folder", out, root=class_folder)
    assert len(r.clips) == 19  # 18 good + full.wav
    reasons = {s.path.split("/")[-1]: s.reason for s in r.skipped.items}
    assert "empty file" in reasons["empty.wav"]
    assert "not a readable audio file" in reasons["text.wav"]
    assert "all-silent" in reasons["silent.wav"]
    assert "NaN or inf" in reasons["nan.wav"]
    assert "truncated" in reasons["cut.wav"]
    assert "extension" in reasons["readme.txt"]
    rep = json.loads(report_path(out).read_text())
    assert rep["count"] == 6 and len(rep["skipped"]) == 6
    with pytest.raises(DataError, match="--strict"):
        prepare_folder(class_folder, strict=True)
    kept = prepare_folder(class_folder, keep_silent=True)
    assert any(c.id == "silent" for c in kept.clips)


def test_unknown_label_from_label_list(class_folder):
    r = prepare_folder(class_folder, labels=["tone", "clicks"])
    assert len(r.clips) == 12
    assert all("unknown label(s) ['noise_burst']" in s.reason for s in r.skipped.items)


def _csv_dataset(tmp_path):
    audio = tmp_path / "audio"
    for name, f in (("a1", 300), ("a2", 500), ("b1", 700), ("b2", 900), ("s1", 1100)):
        write_wav(audio / f"{name}.wav", tone(freq=f))
    ch = write_wav(audio / "stereo.wav", tone(channels=2, sr=44100), sr=44100)
    assert ch.exists()
    return audio


def test_csv_source_reports_rows_with_line_numbers(tmp_path):
    audio = _csv_dataset(tmp_path)
    csv = tmp_path / "meta.csv"
    csv.write_text(
        "fname,label,manually_verified\n"
        "a1.wav,alpha,1\n"            # 2 ok
        "a2.wav,alpha,0\n"            # 3 ok, unverified
        "b1.wav,beta\n"               # 4 wrong column count
        "b2.wav,beta,maybe\n"         # 5 verified not 0/1
        "missing.wav,beta,1\n"        # 6 missing file
        "s1.wav,gamma,1\n"            # 7 unknown label (with label list)
        "a1.wav,alpha,1\n"            # 8 duplicate
        "stereo.wav,beta,1\n"         # 9 ok (stereo 44.1 kHz)
    )
    r = prepare_csv(csv, audio, labels=["alpha", "beta"])
    assert sorted(c.id for c in r.clips) == ["a1", "a2", "stereo"]
    assert {c.id: c.verified for c in r.clips} == {"a1": True, "a2": False, "stereo": True}
    st = next(c for c in r.clips if c.id == "stereo")
    assert st.channels == 2 and st.sample_rate == 44100
    by_line = {s.line: s for s in r.skipped.items}
    assert set(by_line) == {4, 5, 6, 7, 8}
    assert "3 columns, header has 3" not in by_line[4].reason and "2 columns" in by_line[4].reason
    assert "expected 0 or 1" in by_line[5].reason
    assert "file not found" in by_line[6].reason and "meta.csv" in by_line[6].path
    assert "unknown label(s) ['gamma']" in by_line[7].reason
    assert "duplicate" in by_line[8].reason and "line 2" in by_line[8].reason
    assert all(str(s).startswith(str(csv)) or "missing.wav" in str(s) for s in r.skipped.items)


def test_csv_without_path_column_is_a_clear_error(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match=r"bad.csv:1: no path column"):
        prepare_csv(csv)


def test_csv_strong_events_are_grouped_per_file(tmp_path):
    audio = _csv_dataset(tmp_path)
    csv = tmp_path / "events.tsv"
    csv.write_text("filename\tonset\toffset\tevent_label\na1.wav\t0.0\t0.2\tdog\na1.wav\t0.3\t0.4\tcat\n")
    r = prepare_csv(csv, audio)
    (c,) = r.clips
    assert [(e.onset, e.label) for e in c.events] == [(0.0, "dog"), (0.3, "cat")]
    assert c.labels == ["cat", "dog"]


def test_fsdd_names_and_official_split(tmp_path):
    rec = tmp_path / "recordings"
    for name in ("3_jackson_0", "3_jackson_7", "9_theo_42", "bad-name"):
        write_wav(rec / f"{name}.wav", tone(sr=8000), sr=8000)
    r = prepare_fsdd(tmp_path)
    assert {c.id: (c.labels[0], c.split) for c in r.clips} == {
        "3_jackson_0": ("3", "test"), "3_jackson_7": ("3", "val"), "9_theo_42": ("9", "train")}
    assert r.clips[0].extra["speaker"] == "jackson"
    assert len(r.skipped) == 1 and "does not match" in r.skipped.items[0].reason
