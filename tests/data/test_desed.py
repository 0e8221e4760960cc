"""DESED / DCASE 2019 Task 4 layout, with each kind of bad row the issue lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from earshot.data.sources import prepare
from earshot.data.sources.desed import read_strong
from earshot.data.manifest import SkipReport, read_manifest
from earshot.errors import DataError
from tests.conftest import tone, write_wav


def _layout(root: Path, synthetic_header: bool = True) -> Path:
    for name in ("Y1_0.000_10.000.wav", "Y2_0.000_10.000.wav", "Y3_0.000_10.000.wav"):
        write_wav(root / "audio/train/weak" / name, tone(16000, 2.0))
    for name in ("1.wav", "2.wav", "3.wav"):
        write_wav(root / "audio/train/synthetic" / name, tone(16000, 4.0))
    for name in ("Yu1.wav", "Yu2.wav"):
        write_wav(root / "audio/train/unlabel_in_domain" / name, tone(16000, 2.0))
    for name in ("Yv1.wav", "Yv2.wav"):
        write_wav(root / "audio/validation" / name, tone(16000, 3.0))
    (root / "metadata/train").mkdir(parents=True)
    (root / "metadata/validation").mkdir(parents=True)
    (root / "metadata/train/weak.csv").write_text(
        "filename\tevent_labels\n"
        "Y1_0.000_10.000.wav\tDog,Speech\n"
        "Y2_0.000_10.000.wav\t\n"  # line 3: empty labels
        "Y3_0.000_10.000.wav\tUnicorn\n"  # line 4: unknown label
        "Ymissing.wav\tCat\n")  # line 5: audio missing
    synth = ("filename\tonset\toffset\tevent_label\n" if synthetic_header else "") + (
        "1.wav\t0.5\t1.5\tDog\n"
        "1.wav\t1.0\t2.0\tDog\n"  # overlaps the previous Dog: merged
        "1.wav\t3.0\t9.0\tSpeech\n"  # past the 4 s end: cut
        "2.wav\t2.0\t1.0\tCat\n"  # offset before onset
        "3.wav\t\t\t\n")  # an all-negative strong clip
    (root / "metadata/train/synthetic.csv").write_text(synth)
    (root / "metadata/validation/validation.csv").write_text(
        "filename\tonset\toffset\tevent_label\nYv1.wav\t0.1\t0.9\tBlender\nYv2.wav\t\t\t\n")
    return root


def test_desed_layout_kinds_and_bad_rows(tmp_path):
    root = _layout(tmp_path / "desed")
    res = prepare("desed", tmp_path / "desed.jsonl", root=root)
    clips = {c.id: c for c in read_manifest(tmp_path / "desed.jsonl")}
    assert clips["Y1_0.000_10.000"].annotation == "weak" and clips["Y1_0.000_10.000"].labels == ["Dog", "Speech"]
    assert {"Yu1", "Yu2"} <= set(clips) and clips["Yu1"].annotation == "unlabelled"
    one = clips["1"]
    assert one.annotation == "strong"
    assert [(e.onset, e.offset, e.label) for e in one.events] == [(0.5, 2.0, "Dog"), (3.0, 4.0, "Speech")]
    assert clips["3"].events == [] and clips["3"].annotation == "strong"  # kept as all-negative
    assert clips["2"].events == []  # its only row was bad
    assert clips["Yv1"].split == "test" and clips["Yv2"].annotation == "strong"
    reasons = {(Path(s.path).name, s.line): s.reason for s in res.skipped.items}
    assert "has no labels" in reasons[("weak.csv", 3)]
    assert "not in the class list" in reasons[("weak.csv", 4)]
    assert "offset 1.0 is before its onset 2.0" in reasons[("synthetic.csv", 5)]
    assert any("Ymissing.wav" in s.path and "audio file is missing" in s.reason for s in res.skipped.items)
    notes = " | ".join(n.reason for n in res.skipped.notes)
    assert "cut at the end" in notes and "overlapping event(s) of the same class merged" in notes
    assert (tmp_path / "desed.skipped.json").exists()


def test_missing_header_is_read_as_data_and_noted(tmp_path):
    root = _layout(tmp_path / "d", synthetic_header=False)
    res = prepare("desed", tmp_path / "d.jsonl", root=root)
    assert any("no header row" in n.reason and n.line == 1 for n in res.skipped.notes)
    assert read_manifest(tmp_path / "d.jsonl")  # nothing lost: line 1 was a real event
    assert any(c.id == "1" and c.events for c in res.clips)


def test_unexpected_header_is_skipped_and_noted(tmp_path):
    f = tmp_path / "scene.txt"  # DCASE 2016 annotation files have no header
    f.write_text("onset\toffset\tevent_label\n0.5\t1.0\tcough\n")
    rep = SkipReport()
    events = read_strong(f, ["cough"], rep, header=None)
    assert [(e.onset, e.label) for e in events["scene"]] == [(0.5, "cough")]
    assert "looks like a header" in rep.notes[0].reason


def test_not_a_desed_folder(tmp_path):
    with pytest.raises(DataError, match="metadata"):
        prepare("desed", tmp_path / "x.jsonl", root=tmp_path)


@pytest.mark.parametrize("recipe", ["desed_weak_clipwise.yaml", "desed_synthetic_framewise.yaml"])
def test_seed001_recipes_run_on_the_layout(recipe, tmp_path):
    """Seed 001's two variants, unchanged but for size: prepare from the layout, train, evaluate."""
    import json

    from earshot.config import load_config
    from earshot.training.run import train
    from tests.conftest import REPO

    pytest.importorskip("sed_eval")
    root = _layout(tmp_path / "desed")
    for i in range(6):  # enough clips of each kind to train and validate on
        write_wav(root / "audio/train/weak" / f"Yx{i}.wav", tone(16000, 2.0, 300.0 + 100 * i))
    with open(root / "metadata/train/weak.csv", "a") as f:
        f.writelines(f"Yx{i}.wav\t{'Dog' if i % 2 else 'Cat'}\n" for i in range(6))
        for i in range(6):
            write_wav(root / "audio/train/synthetic" / f"s{i}.wav", tone(16000, 4.0, 300.0 + 100 * i))
    with open(root / "metadata/train/synthetic.csv", "a") as f:
        f.writelines(f"s{i}.wav\t0.5\t2.5\t{'Dog' if i % 2 else 'Cat'}\n" for i in range(6))
    cfg = load_config(REPO / "recipes" / recipe, [
        f"data.manifest={tmp_path / 'desed.jsonl'}", f"data.prepare.root={root}", f"out_dir={tmp_path / 'runs'}",
        "trainer.max_epochs=1", "trainer.min_steps=0", "trainer.progress_bar=false", "trainer.accelerator=cpu", "data.clip_seconds=2",
        "data.batch_size=4", "data.val_fraction=0.3", "model.args.channels=[8,16,16,16]"])
    run = train(cfg)
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "detection" and m["split"] == "test" and "event_f1_macro" in m
