import json
import os

import pytest

from earshot.data.manifest import Clip, Event, check_labels, label_list, read_manifest, summarize, write_manifest
from earshot.errors import DataError


def _clip(i, labels=("dog",), **kw):
    return Clip(id=f"c{i}", path=os.path.abspath(f"audio/c{i}.wav"), duration=1.5, sample_rate=16000, channels=1,
                labels=list(labels), **kw)


def test_roundtrip_keeps_every_field(tmp_path):
    clips = [_clip(0, split="train", fold=2, verified=False, weight=0.5,
                   events=[Event(0.1, 0.9, "dog")], extra={"speaker": "x"}), _clip(1, ("cat",), split="test")]
    m = write_manifest(tmp_path / "m" / "manifest.jsonl", clips)
    header, first = (json.loads(x) for x in m.read_text().splitlines()[:2])
    assert header == {"earshot_manifest": 1, "root": os.path.relpath(os.path.abspath("audio"), m.parent)}
    assert not first["path"].startswith("/")  # stored relative to the manifest folder
    back = read_manifest(m)
    assert back == clips


def test_malformed_line_names_file_and_line(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [_clip(0), _clip(1)])
    lines = m.read_text().splitlines()[1:]  # after the header
    m.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"m.jsonl:2: bad manifest record"):
        read_manifest(m, allow_outside_root=True)
    m.write_text(lines[0] + "\n" + json.dumps({"id": "x", "path": "a.wav"}) + "\n")
    with pytest.raises(DataError, match=r":2: .*missing field"):
        read_manifest(m, allow_outside_root=True)
    m.write_text(json.dumps({**json.loads(lines[0]), "colour": "red"}) + "\n")
    with pytest.raises(DataError, match=r":1: .*unknown field"):
        read_manifest(m)


def test_label_missing_from_label_list(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [_clip(0), _clip(1, ("cat",))])
    with pytest.raises(DataError, match=r"m.jsonl:2: clip 'c1' has label\(s\) \['cat'\] not in the label list"):
        read_manifest(m, labels=["dog"])
    check_labels(read_manifest(m), ["dog", "cat"])


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no clips"):
        read_manifest(tmp_path / "e.jsonl")


def test_summary_counts_multi_label_and_unlabelled_clips():
    clips = [_clip(0, split="train"), _clip(1, ("cat", "dog"), split="val"), _clip(2, (), split="val")]
    assert label_list(clips) == ["cat", "dog"]
    s = summarize(clips)
    assert s["clips"] == 3 and s["classes"] == 2 and s["splits"] == {"train": 1, "val": 2}
    assert s["multi_label"] == 1 and s["no_label"] == 1
    assert s["hours"] == round(4.5 / 3600, 4)


def test_clip_store_gives_back_every_clip():
    from earshot.data.manifest import ClipStore

    clips = [_clip(0, split="train", fold=2, verified=False, weight=0.5, events=[Event(0.1, 0.9, "dog")],
                   extra={"speaker": "x"}, annotation="strong"), _clip(1, ("cat", "dog"), split="test"), _clip(2, ())]
    store = ClipStore(clips)
    assert len(store) == 3 and list(store) == clips and store[-1] == clips[-1]
    with pytest.raises(IndexError):
        store[3]
    assert store.nbytes < 3 * 400  # bytes, not Python objects
    assert len(ClipStore([])) == 0


def test_clip_store_spills_to_a_mapped_file_and_still_pickles_and_forks():
    import multiprocessing
    import pickle

    from earshot.data.manifest import ClipStore

    clips = [_clip(i, ("cat",), split="train", events=[Event(0.1 * i, 0.1 * i + 0.5, "cat")]) for i in range(50)]
    small = ClipStore(clips)
    spilled = ClipStore(iter(clips), spill_bytes=1000)  # a generator: one clip at a time
    assert not small.spilled and spilled.spilled
    assert list(spilled) == clips and spilled[-1] == clips[-1] and len(spilled) == 50
    again = pickle.loads(pickle.dumps(spilled))  # a spawned worker gets the bytes, not the mapping
    assert list(again) == clips and not again.spilled
    with multiprocessing.get_context("fork").Pool(1) as pool:  # a forked loader worker reads the mapping
        assert pool.map(spilled.__getitem__, [0, 49]) == [clips[0], clips[49]]


def test_manifest_read_into_a_store_equals_the_list_and_names_bad_lines(tmp_path):
    from earshot.data.manifest import ClipStore, read_manifest_store

    for i in range(3):
        (tmp_path / f"a{i}.wav").write_bytes(b"")
    clips = [Clip(id=f"a{i}", path=str(tmp_path / f"a{i}.wav"), duration=1.0, sample_rate=16000, channels=1,
                  labels=["cat"]) for i in range(3)]
    m = write_manifest(tmp_path / "m.jsonl", clips)
    store = read_manifest_store(m)
    assert isinstance(store, ClipStore) and list(store) == read_manifest(m) == clips
    with pytest.raises(DataError, match="not in the label list"):
        read_manifest_store(m, labels=["dog"])
    m.write_text(m.read_text() + "{not json\n")
    with pytest.raises(DataError) as e:
        read_manifest_store(m)
    assert e.value.line == 5 and "bad manifest record" in str(e.value)
