"""`earshot synthesize`: scenes with strong labels from isolated events over backgrounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earshot.data.manifest import read_manifest
from earshot.data.soundscapes import SceneSpec, synthesize
from earshot.errors import DataError
from tests.conftest import tone, write_wav

SR = 8000


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    fg, bg = tmp_path / "fg", tmp_path / "bg"
    for cls, f in (("beep", 1000.0), ("hum", 200.0), ("chirp", 2500.0)):
        for i in range(2):
            write_wav(fg / cls / f"{cls}{i}.wav", tone(SR, 0.4 + 0.3 * i, f), SR)
    rng = np.random.default_rng(0)
    write_wav(bg / "room.wav", (0.02 * rng.standard_normal(SR * 12)).astype(np.float32), SR)
    return fg, bg


def _spec(**kw) -> SceneSpec:
    base = dict(n_clips=6, clip_seconds=5.0, sample_rate=SR, events_per_minute=(40.0, 60.0), seed=3)
    return SceneSpec(**{**base, **kw})


def test_same_seed_same_output(folders, tmp_path):
    fg, bg = folders
    a = synthesize(fg, bg, tmp_path / "a", _spec())
    b = synthesize(fg, bg, tmp_path / "b", _spec())
    assert (tmp_path / "a/strong.tsv").read_text() == (tmp_path / "b/strong.tsv").read_text()
    xa, _ = sf.read(tmp_path / "a/audio/scene_00002.wav")
    xb, _ = sf.read(tmp_path / "b/audio/scene_00002.wav")
    np.testing.assert_array_equal(xa, xb)
    c = synthesize(fg, bg, tmp_path / "c", _spec(seed=4))
    assert (tmp_path / "c/strong.tsv").read_text() != (tmp_path / "a/strong.tsv").read_text()
    clips = read_manifest(a)
    assert len(clips) == 6 and all(c.annotation == "strong" for c in clips) and c.exists()
    assert sum(len(c.events) for c in clips) > 6


def test_mono_scenes_never_overlap_and_poly_never_overlaps_one_class(folders, tmp_path):
    fg, bg = folders
    mono = read_manifest(synthesize(fg, bg, tmp_path / "m", _spec(polyphony="mono", events_per_minute=(80, 100))))
    for c in mono:
        ev = sorted(c.events, key=lambda e: e.onset)
        assert all(a.offset <= b.onset for a, b in zip(ev, ev[1:]))
    poly = read_manifest(synthesize(fg, bg, tmp_path / "p", _spec(polyphony="poly", events_per_minute=(150, 200))))
    overlaps = 0
    for c in poly:
        ev = sorted(c.events, key=lambda e: e.onset)
        for i, a in enumerate(ev):
            for b in ev[i + 1:]:
                if b.onset < a.offset:
                    overlaps += 1
                    assert a.label != b.label
    assert overlaps > 0  # polyphonic scenes do overlap


def test_event_to_background_ratio(folders, tmp_path):
    fg, bg = folders
    out = tmp_path / "r"
    synthesize(fg, bg, out, _spec(ebr_db=(6.0,), polyphony="mono", n_clips=2))
    clip = read_manifest(out / "manifest.jsonl")[0]
    x, sr = sf.read(clip.path)
    e = clip.events[0]
    seg = x[int(e.onset * sr) + 10 : int(e.offset * sr) - 10]
    quiet = np.concatenate([x[: int(clip.events[0].onset * sr)], x[int(clip.events[-1].offset * sr):]])
    ratio = 20 * np.log10(np.sqrt(np.mean(seg**2)) / np.sqrt(np.mean(quiet**2)))
    assert 4.0 < ratio < 8.5  # event (plus background) about 6 dB over the background


def test_tsv_files_and_weak_labels(folders, tmp_path):
    fg, bg = folders
    synthesize(fg, bg, tmp_path / "t", _spec())
    strong = (tmp_path / "t/strong.tsv").read_text().splitlines()
    weak = (tmp_path / "t/weak.tsv").read_text().splitlines()
    assert strong[0] == "filename\tonset\toffset\tevent_label" and weak[0] == "filename\tevent_labels"
    assert len(weak) == 7
    clips = {c.id: c for c in read_manifest(tmp_path / "t/manifest.jsonl")}
    for row in weak[1:]:
        name, labels = (row.split("\t") + [""])[:2]
        assert sorted(filter(None, labels.split(","))) == clips[Path(name).stem].labels


def test_empty_class_folder_and_short_background_are_clear_errors(folders, tmp_path):
    fg, bg = folders
    with pytest.raises(DataError, match="shorter than the 20.00 s clip"):
        synthesize(fg, bg, tmp_path / "x", _spec(clip_seconds=20.0))
    looped = read_manifest(synthesize(fg, bg, tmp_path / "y", _spec(clip_seconds=20.0, loop_backgrounds=True, n_clips=1)))
    assert sf.info(looped[0].path).duration == pytest.approx(20.0)
    (fg / "empty").mkdir()
    with pytest.raises(DataError, match="empty: class folder holds no audio"):
        synthesize(fg, bg, tmp_path / "z", _spec())


def test_cli_synthesize(folders, tmp_path, capsys):
    from earshot.cli import main

    fg, bg = folders
    assert main(["synthesize", str(fg), str(bg), "--out", str(tmp_path / "cli"), "--n-clips", "3",
                 "--clip-seconds", "4", "--sample-rate", str(SR), "--ebr=-6,0,6"]) == 0
    assert "wrote 3 scenes" in capsys.readouterr().out
    assert len(list((tmp_path / "cli/audio").glob("*.wav"))) == 3


def _stream(folders, **kw):
    from earshot.data.soundscapes import SceneStream
    from earshot.tasks import create_task

    fg, bg = folders
    task = create_task("detection", ["beep", "chirp", "hum"])
    return SceneStream(fg, bg, _spec(**kw), task.target, frame_hop=0.05), task


def test_scene_stream_mixes_new_scenes_every_epoch_from_the_key(folders):
    stream, _ = _stream(folders)
    assert len(stream) == 6 and stream.classes == ["beep", "chirp", "hum"]
    a, b = stream[(2, 0, 5)], stream[(2, 0, 5)]
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))  # the key alone decides the example
    other_epoch = stream[(2, 1, 5)]["audio"].numpy()
    assert not np.allclose(a["audio"].numpy(), other_epoch)  # a fresh mixture every epoch
    assert a["audio"].shape == (int(5.0 * SR),) and a["frame_target"].shape == (100, 3)


def test_scene_stream_frame_targets_follow_its_events(folders):
    stream, task = _stream(folders)
    for pos in range(4):
        x, clip, _ = stream.scene((0, 0, pos))
        item = stream[(0, 0, pos)]
        frames = item["frame_target"].numpy()
        assert clip.annotation == "strong" and int(item["kind"]) == 1
        np.testing.assert_array_equal(item["target"].numpy(), task.target(clip))
        for e in clip.events:  # the frame in the middle of each event is on for its class
            assert frames[int((e.onset + e.offset) / 2 / 0.05), task.labels.index(e.label)] == 1.0
        if not clip.events:
            assert frames.sum() == 0


def test_scene_stream_speed_changes_event_lengths(folders):
    plain, _ = _stream(folders, polyphony="mono")
    fast, _ = _stream(folders, polyphony="mono", speed=(1.4, 1.5))
    lengths = {round(0.4 + 0.3 * i, 1) for i in range(2)}  # the event files last 0.4 and 0.7 s
    for pos in range(3):
        assert {round(e.offset - e.onset, 1) for e in plain.scene((0, 0, pos))[1].events} <= lengths
        for e in fast.scene((0, 0, pos))[1].events:
            d = e.offset - e.onset
            assert any(L / 1.5 - 0.01 <= d <= L / 1.4 + 0.01 for L in lengths), d
