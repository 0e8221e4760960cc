import json

import pytest

from earshot.data.sources import prepare
from earshot.errors import DataError
from tests.conftest import tone, write_wav

NAMES = "/m/05tny_\tBark\n/m/07pggtn\tHowl\n/m/02dgv\tDoor\n/m/0838f\tWater\n"


@pytest.fixture
def audioset(tmp_path):
    rows = ["segment_id\tstart_time_seconds\tend_time_seconds\tlabel",
            "seg1_30000\t0.5\t1.5\t/m/05tny_",
            "seg1_30000\t2.0\t3.0\t/m/02dgv",
            "seg2_0\t1.0\t4.0\t/m/02dgv",
            "seg3_10000\t0.0\t2.0\t/m/0838f",   # mapped to nothing: ignored
            "seg4_0\t1.0\t2.0\t/m/zzzz",         # unknown MID: skipped and counted
            "seg5_0\t1.0\tx\t/m/02dgv",          # malformed time
            "seg6_0\t1.0\t3.0\t/m/07pggtn",      # audio never downloaded
            "seg7_0\t1.0\t3.0"]                   # too few fields
    (tmp_path / "strong.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "names.tsv").write_text(NAMES)
    (tmp_path / "map.json").write_text(json.dumps({"Bark": "Barking", "Howl": "Howling", "/m/02dgv": "Other"}))
    for seg in ("seg1_30000", "seg2_0"):
        write_wav(tmp_path / "audio" / f"{seg}.wav", tone(seconds=10.0))
    return tmp_path


def run(d, **kw):
    return prepare("audioset_strong", d / "m.jsonl", tsv=d / "strong.tsv", names=d / "names.tsv",
                   mapping=d / "map.json", audio_dir=d / "audio", **kw)


def test_segments_with_mapped_events_become_strong_clips(audioset):
    res = run(audioset)
    by = {c.id: c for c in res.clips}
    assert set(by) == {"seg1_30000", "seg2_0"}
    assert by["seg1_30000"].labels == ["Barking", "Other"] and by["seg1_30000"].annotation == "strong"
    assert [(e.onset, e.offset, e.label) for e in by["seg1_30000"].events] == [(0.5, 1.5, "Barking"), (2.0, 3.0, "Other")]
    reasons = " | ".join(f"{s.line}: {s.reason}" for s in res.skipped.items)
    assert "6: unknown MID '/m/zzzz'" in reasons and "7: times" in reasons and "9: expected 4" in reasons
    assert "seg6_0.wav" in " ".join(s.path for s in res.skipped.items)  # the segment to download
    assert any("unknown MIDs" in n.reason for n in res.skipped.notes)


def test_class_filters_like_the_seed(audioset):
    assert {c.id for c in run(audioset, exclude=["Barking"]).clips} == {"seg2_0"}  # non-dog segments only
    only = run(audioset, include=["Barking"]).clips
    assert [c.id for c in only] == ["seg1_30000"] and only[0].labels == ["Barking"]
    assert {c.id for c in run(audioset, single_label=True).clips} == {"seg2_0"}


def test_a_mapping_with_an_unknown_name_is_an_error(audioset):
    (audioset / "map.json").write_text(json.dumps({"Meow": "Cat"}))
    with pytest.raises(DataError, match="'Meow' is neither a MID nor a display name"):
        run(audioset)
