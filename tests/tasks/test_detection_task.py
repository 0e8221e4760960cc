"""The detection task: targets from crops, the loss by clip kind, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from earshot.data.manifest import Clip, Event, SkipReport
from earshot.tasks import Crop, create_task


def _clip(events=(), labels=(), annotation=None, cid="c") -> Clip:
    return Clip(id=cid, path=f"{cid}.wav", duration=10.0, sample_rate=16000, channels=1, labels=list(labels),
                events=[Event(*e) for e in events], annotation=annotation)


def test_strong_crop_targets_follow_the_crop():
    task = create_task("detection", ["a", "b"])
    clip = _clip([(1.0, 2.0, "a"), (6.0, 7.0, "b")])
    t = task.target(clip, Crop(start=5.0, duration=4.0, frame_hop=0.5))
    assert t["kind"] == 1
    np.testing.assert_array_equal(t["target"], [0, 1])  # only b overlaps 5-9 s
    ft = t["frame_target"]
    assert ft.shape == (8, 2)
    np.testing.assert_array_equal(ft[:, 1], [0, 0, 1, 1, 0, 0, 0, 0])  # b at 1-2 s into the crop
    assert ft[:, 0].sum() == 0
    np.testing.assert_array_equal(task.target(clip), [1, 1])  # the clip's own tags


def test_clip_kinds_weak_strong_unlabelled():
    task = create_task("detection", ["a", "b"])
    weak = task.target(_clip(labels=["b"]), Crop(0, 10, 0.5))
    assert weak["kind"] == 0 and weak["target"].tolist() == [0, 1] and weak["frame_target"].sum() == 0
    negative = task.target(_clip(annotation="strong"), Crop(0, 10, 0.5))
    assert negative["kind"] == 1 and negative["target"].sum() == 0  # a real all-negative strong clip
    unl = task.target(_clip(annotation="unlabelled"), Crop(0, 10, 0.5))
    assert unl["kind"] == 2


def _batch(kinds, frames=20, c=2):
    return {"target": torch.zeros(len(kinds), c), "frame_target": torch.zeros(len(kinds), frames, c),
            "kind": torch.tensor(kinds), "weight": torch.ones(len(kinds))}


def test_loss_uses_frames_for_strong_clips_and_skips_unlabelled():
    task = create_task("detection", ["a", "b"])
    frame_logits = torch.full((3, 20, 2), -5.0)
    frame_logits[0, :, 0] = 5.0  # frames of clip 0 say "a" everywhere: wrong for a strong clip
    out = {"clip_logits": torch.full((3, 2), -5.0), "frame_logits": frame_logits}
    strong = task.loss(out, _batch([1, 0, 2]))
    weak = task.loss(out, _batch([0, 0, 2]))
    assert strong > 1.0 > weak  # only the strong clip's frames are scored
    # the unlabelled clip contributes nothing, whatever its outputs
    out2 = {"clip_logits": out["clip_logits"].clone(), "frame_logits": frame_logits.clone()}
    out2["clip_logits"][2] = 9.0
    out2["frame_logits"][2] = 9.0
    assert task.loss(out2, _batch([1, 0, 2])) == pytest.approx(strong.item())
    clipwise = create_task("detection", ["a", "b"], strong_loss="clip")
    assert clipwise.loss(out, _batch([1, 0, 2])) < 1.0  # the seed's "synthetic with clipwise loss"


def test_frame_targets_are_resampled_to_the_model_frames():
    task = create_task("detection", ["a"])
    out = {"clip_logits": torch.zeros(1, 1), "frame_logits": torch.zeros(1, 7, 1)}
    assert torch.isfinite(task.loss(out, _batch([1], frames=10, c=1)))


def test_admit_by_kind_and_unknown_labels():
    task = create_task("detection", ["a"], train_on=["strong"])
    clips = [_clip([(1, 2, "a")], cid="s"), _clip(labels=["a"], cid="w"), _clip(annotation="unlabelled", cid="u"),
             _clip([(1, 2, "zzz")], cid="bad")]
    rep = SkipReport()
    assert [c.id for c in task.admit(clips, "train", rep)] == ["s"]
    assert len(rep) == 1 and "zzz" in rep.items[0].reason
    assert [c.id for c in task.admit(clips, "test", SkipReport())] == ["s", "w"]


def test_describe_round_trip_keeps_decoding():
    task = create_task("detection", ["a", "b"], decode={"high": [0.6, 0.4], "median_seconds": 0.3})
    d = task.describe()
    again = create_task(d.pop("name"), d.pop("labels"), **d)
    assert again.decoding == task.decoding and again.verb == "detect"
    from earshot.errors import ConfigError

    with pytest.raises(ConfigError, match="train_on"):
        create_task("detection", ["a"], train_on=["strog"])


def _tuning_case(n_clips: int):
    """Clips where class a needs a high threshold (a false bump at 0.55) and class b a low one (its
    event peaks at 0.35): per-class tuning can satisfy both, one shared setting cannot."""
    hop = 0.1
    clips, frames = [], []
    for i in range(n_clips):
        clips.append(_clip([(2.0, 4.0, "a"), (5.0, 7.0, "b")], cid=f"c{i}"))
        f = np.full((100, 2), 0.02, np.float32)
        f[20:40, 0] = 0.9  # a's event
        f[75:85, 0] = 0.55  # a false bump of a
        f[50:70, 1] = 0.35  # b's event, quiet
        frames.append(f)
    probs = np.stack([np.ones(2, np.float32) * 0.9] * n_clips)
    return clips, probs, frames, hop


@pytest.mark.parametrize("mode", ["per_class", "shared"])
def test_decoding_tuned_per_class_or_shared(mode):
    task = create_task("detection", ["a", "b"], decode_tuning=mode)
    clips, probs, frames, hop = _tuning_case(4)
    task.tune_clips(clips, probs, frames, hop)
    high = task.decoding.high
    if mode == "per_class":
        assert high[0] >= 0.6 and high[1] <= 0.3  # each class its own
    else:
        assert high[0] == high[1] <= 0.3  # one setting: the bump of a costs less than missing every b
        assert task.decoding.median_seconds[0] == task.decoding.median_seconds[1]


def test_auto_tunes_per_class_only_with_enough_validation_events(monkeypatch):
    clips, probs, frames, hop = _tuning_case(4)  # 4 events per class
    for need, per_class in ((4, True), (5, False)):
        task = create_task("detection", ["a", "b"])  # decode_tuning=auto
        monkeypatch.setattr(task, "PER_CLASS_MIN_EVENTS", need)
        tuned = task.tune_clips(clips, probs, frames, hop)
        assert tuned["decode_tuning"] == ("per_class" if per_class else "shared")
        assert (task.decoding.high[0] != task.decoding.high[1]) == per_class


def test_an_unknown_decode_tuning_is_a_clear_error():
    from earshot.errors import ConfigError

    with pytest.raises(ConfigError, match="decode_tuning"):
        create_task("detection", ["a"], decode_tuning="per-class")


def test_plateau_selection_takes_the_middle_of_a_flat_optimum():
    task = create_task("detection", labels=["a"])
    n_thr = len(task.TUNE_THRESHOLDS)
    # one median window; validation F1 peaks alone at the top threshold, and is flat a step below it
    f1 = np.array([0.50, 0.60, 0.79, 0.80, 0.79, 0.805], dtype=float)
    assert len(f1) == n_thr
    f1 = np.tile(f1[:, None], (len(task.TUNE_MEDIANS), 1))
    assert int(np.argmax(task._select_score(f1)[:n_thr, 0])) == 5  # best: its own F1, the edge
    task.decode_select = "plateau"
    assert int(np.argmax(task._select_score(f1)[:n_thr, 0])) == 4  # the middle of 0.79, 0.80, 0.79, 0.805


@pytest.mark.parametrize("objective", ["event", "event+segment"])
def test_the_decoding_objective_can_weigh_segment_f1(objective):
    # class a: a loud event at 2-4 s, and a quiet one at 6-8 s that the model starts 0.5 s late (outside
    # the 200 ms onset collar). Detecting the quiet one is an event-based insertion and deletion, so event
    # F1 prefers a threshold above it (0.67 against 0.5); its 1 s segments are right, so segment F1 prefers
    # a threshold below it (1.0 against 0.67), and the mean of the two does too (0.75 against 0.67).
    clips, frames = [], []
    for i in range(4):
        clips.append(_clip([(2.0, 4.0, "a"), (6.0, 8.0, "a")], cid=f"c{i}"))
        f = np.full((100, 1), 0.02, np.float32)
        f[20:40, 0] = 0.9
        f[65:80, 0] = 0.35
        frames.append(f)
    probs = np.full((4, 1), 0.9, np.float32)
    task = create_task("detection", ["a"], decode_tuning="shared")
    task.decode_objective = objective
    task.tune_clips(clips, probs, frames, 0.1)
    if objective == "event":
        assert task.decoding.high[0] >= 0.4
    else:
        assert task.decoding.high[0] <= 0.3


def _one_class_case(frame_fill):
    clips, frames = [], []
    for i in range(4):
        clips.append(_clip([(2.0, 4.0, "a")], cid=f"c{i}"))
        f = np.full((100, 1), 0.02, np.float32)
        frame_fill(f)
        frames.append(f)
    return clips, np.full((4, 1), 0.9, np.float32), frames


def test_the_default_grid_keeps_half_high_hysteresis_and_the_configured_merge_gap():
    clips, probs, frames = _one_class_case(lambda f: f.__setitem__((slice(20, 40), 0), 0.9))
    task = create_task("detection", ["a"], decode_tuning="shared", decode={"merge_gap": 0.2})
    task.tune_clips(clips, probs, frames, 0.1)
    assert task.decoding.low[0] == task.decoding.high[0] / 2
    assert task.decoding.merge_gap == 0.2


def test_the_grid_can_tune_the_merge_gap():
    # each event has a 0.3 s dip in its middle: without merging it is two events, neither within the
    # offset or onset collar of the one reference event
    def fill(f):
        f[20:29, 0] = 0.9
        f[32:40, 0] = 0.9

    clips, probs, frames = _one_class_case(fill)
    task = create_task("detection", ["a"], decode_tuning="shared", decode={"median_seconds": 0.0})
    task.TUNE_MEDIANS = (0.0,)
    task.tune_clips(clips, probs, frames, 0.1)
    assert task.decoding.merge_gap == 0.1  # the default grid leaves the gap alone
    task.TUNE_MERGE_GAPS = (None, 0.5)
    task.tune_clips(clips, probs, frames, 0.1)
    assert task.decoding.merge_gap == 0.5
    assert [e[:2] for e in task.events(frames[0], 0.1)] == [(2.0, 4.0)]


def test_the_grid_can_tune_the_low_threshold_ratio():
    # a loud event at 2-4 s with a long tail at 0.4 to 5.5 s: low = high / 2 always follows the tail past
    # the offset collar (0.4 s), a plain threshold (low = high) above 0.4 does not
    def fill(f):
        f[20:40, 0] = 0.9
        f[40:55, 0] = 0.4

    clips, probs, frames = _one_class_case(fill)
    task = create_task("detection", ["a"], decode_tuning="shared")
    task.tune_clips(clips, probs, frames, 0.1)
    assert task.decoding.low[0] == task.decoding.high[0] / 2
    task.TUNE_LOW_RATIOS = (0.5, 1.0)
    task.tune_clips(clips, probs, frames, 0.1)
    assert task.decoding.low[0] == task.decoding.high[0] > 0.4
    assert [e[:2] for e in task.events(frames[0], 0.1)] == [(2.0, 4.0)]
