"""Detection metrics: our wrappers against sed_eval and sed_scores_eval on real DCASE 2016 annotations,
and the event decoding (median filter, hysteresis, gap merging, minimum duration)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from earshot.data.loading import stitch_frames
from earshot.data.sources.desed import read_strong
from earshot.data.manifest import SkipReport
from earshot.metrics.detection import psds_report, sed_eval_report
from earshot.tasks.events import DecodeParams, decode_events, event_roll, hysteresis, merge_spans
from tests.conftest import require_shared

pytest.importorskip("sed_eval")
pytest.importorskip("sed_scores_eval")

LABELS = ["clearthroat", "cough", "doorslam", "drawer", "keyboard", "keys", "knock", "laughter", "pageturn",
          "phone", "speech"]


def _reference(n: int = 6) -> dict[str, list[tuple[float, float, str]]]:
    folder = require_shared("dcase2016-task2/dev/annotation")
    out = {}
    for f in sorted(folder.glob("*.txt"))[:n]:
        rows = read_strong(f, LABELS, SkipReport(), header=None)[f.stem]
        out[f.stem] = [(e.onset, e.offset, e.label) for e in rows]
    return out


def _perturb(ref: dict, seed: int = 0) -> dict:
    """Shift every onset by up to 0.3 s, drop every fifth event, add a false cough per file."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, evs in ref.items():
        est = []
        for i, (on, off, lab) in enumerate(evs):
            if i % 5 == 4:
                continue
            d = float(rng.uniform(-0.3, 0.3))
            est.append((max(0.0, on + d), off + d, lab))
        est.append((100.0, 101.0, "cough"))
        out[k] = est
    return out


def _direct_sed_eval(ref: dict, est: dict) -> tuple[object, object]:
    """The same computation written straight against sed_eval's documented API."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sed_eval
    ev = sed_eval.sound_event.EventBasedMetrics(LABELS, t_collar=0.2, percentage_of_length=0.2)
    seg = sed_eval.sound_event.SegmentBasedMetrics(LABELS, time_resolution=1.0)
    for k in ref:
        r = [{"filename": k, "event_onset": a, "event_offset": b, "event_label": c} for a, b, c in ref[k]]
        e = [{"filename": k, "event_onset": a, "event_offset": b, "event_label": c} for a, b, c in est[k]]
        ev.evaluate(r, e)
        seg.evaluate(r, e)
    return ev, seg


def test_sed_eval_wrapper_matches_the_library_on_real_annotations():
    ref = _reference()
    assert sum(len(v) for v in ref.values()) > 100
    est = _perturb(ref)
    ours = sed_eval_report(ref, est, LABELS)
    ev, seg = _direct_sed_eval(ref, est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ours["event_f1_micro"] == pytest.approx(ev.results_overall_metrics()["f_measure"]["f_measure"])
        assert ours["event_f1_macro"] == pytest.approx(ev.results_class_wise_average_metrics()["f_measure"]["f_measure"])
        assert ours["event_er"] == pytest.approx(ev.results_overall_metrics()["error_rate"]["error_rate"])
        assert ours["segment_f1_micro"] == pytest.approx(seg.results_overall_metrics()["f_measure"]["f_measure"])
        assert ours["segment_er"] == pytest.approx(seg.results_overall_metrics()["error_rate"]["error_rate"])
    # a perturbed system is imperfect but far from useless; the reference against itself is perfect
    assert 0.3 < ours["event_f1_micro"] < 0.95 and ours["segment_f1_micro"] > 0.8
    assert ours["event_deletion_rate"] > 0 and ours["event_insertion_rate"] > 0
    perfect = sed_eval_report(ref, ref, LABELS)
    assert perfect["event_f1_macro"] == 1.0 and perfect["event_er"] == 0.0


def _frames_from_events(events, hop: float, n: int, level: float = 0.9) -> np.ndarray:
    return event_roll(events, LABELS, n, hop) * level + 0.01


def test_psds_is_one_for_exact_scores_and_drops_for_a_worse_system():
    ref = _reference(3)
    hop, n = 0.02, int(121 / 0.02)
    good = {k: _frames_from_events(v, hop, n) for k, v in ref.items()}
    shifted = {k: _frames_from_events([(a + 0.5, b + 0.5, c) for a, b, c in v], hop, n) for k, v in ref.items()}
    dur = {k: 121.0 for k in ref}
    best = psds_report(ref, good, hop, LABELS, dur)
    worse = psds_report(ref, shifted, hop, LABELS, dur)
    assert best["psds1"] == pytest.approx(1.0, abs=1e-6) and best["psds2"] == pytest.approx(1.0, abs=1e-6)
    assert worse["psds1"] < best["psds1"]


def test_psds_accepts_touching_reference_events_of_one_class():
    ref = {"a": [(1.0, 2.0, "cough"), (2.0, 3.0, "cough"), (3.5, 4.5, "knock")]}
    frames = {"a": _frames_from_events(ref["a"], 0.02, 250)}
    r = psds_report(ref, frames, 0.02, LABELS, {"a": 5.0})
    assert "psds1_error" not in r and r["psds1"] == pytest.approx(1.0, abs=1e-6)  # merged before scoring


def test_hysteresis_starts_high_and_extends_low():
    p = np.array([0.0, 0.3, 0.6, 0.35, 0.2, 0.4, 0.45, 0.0])
    assert hysteresis(p, 0.5, 0.3) == [(1, 4)]  # 0.4-0.45 never reaches 0.5
    assert hysteresis(p, 0.4, 0.4) == [(2, 3), (5, 7)]


def test_merge_and_min_duration():
    assert merge_spans([(0.0, 1.0), (1.05, 2.0), (3.0, 3.02)], gap=0.1, min_duration=0.05) == [(0.0, 2.0)]


def test_decode_events_median_filter_removes_a_one_frame_blip():
    hop = 0.02
    p = np.zeros((200, 2))
    p[50:100, 0] = 0.9
    p[150, 1] = 0.95  # a single-frame spike
    params = DecodeParams.default(2, 0.5, median_seconds=0.1)
    ev = decode_events(p, hop, ["a", "b"], params)
    assert [(e[2]) for e in ev] == ["a"]
    assert ev[0][0] == pytest.approx(1.0) and ev[0][1] == pytest.approx(2.0)
    gated = DecodeParams.default(2, 0.5, 0.1)
    gated.tag_threshold = 0.5
    assert decode_events(p, hop, ["a", "b"], gated, clip_probs=np.array([0.2, 0.9])) == []


def test_merge_gap_can_differ_between_classes():
    hop = 0.1
    p = np.zeros((100, 2))
    p[10:30] = 0.9  # both classes: an event at 1-3 s with a 0.3 s dip, then 3.3-5 s
    p[33:50] = 0.9
    params = DecodeParams.from_dict({"high": 0.5, "low": 0.5, "median_seconds": 0.0, "merge_gap": [0.5, 0.1]}, 2)
    ev = decode_events(p, hop, ["a", "b"], params)
    assert [(e[0], e[1]) for e in ev if e[2] == "a"] == [(1.0, 5.0)]  # merged across the dip
    assert [(e[0], e[1]) for e in ev if e[2] == "b"] == [(1.0, 3.0), (3.3, 5.0)]
    from earshot.errors import ConfigError

    with pytest.raises(ConfigError, match="merge_gap: 3 values for 2 classes"):
        DecodeParams.from_dict({"merge_gap": [0.1, 0.2, 0.3]}, 2)
    assert DecodeParams.from_dict({"merge_gap": 0.3}, 2).gap(1) == 0.3


def test_decode_params_from_config_checks_keys_and_lengths():
    from earshot.errors import ConfigError

    p = DecodeParams.from_dict({"high": 0.6, "median_seconds": [0.1, 0.5]}, 2)
    assert p.high == [0.6, 0.6] and p.median_seconds == [0.1, 0.5]
    with pytest.raises(ConfigError, match="unknown key"):
        DecodeParams.from_dict({"hgh": 0.6}, 2)
    with pytest.raises(ConfigError, match="3 values for 2 classes"):
        DecodeParams.from_dict({"high": [0.5, 0.5, 0.5]}, 2)


def test_stitching_one_event_across_two_windows():
    """Windows of 100 frames every 50: an event over the window boundary comes out once."""
    hop, sr = 0.1, 100
    truth = np.zeros((150, 1))
    truth[80:120, 0] = 0.9
    starts = [0, 500]  # samples: 50 frames of 10 samples
    frames = [truth[0:100], truth[50:150]]
    full = stitch_frames(frames, starts, sr, hop, 1500)
    np.testing.assert_allclose(full, truth)
    ev = decode_events(full, hop, ["x"], DecodeParams.default(1, 0.5, 0.0))
    assert len(ev) == 1 and ev[0][0] == pytest.approx(8.0) and ev[0][1] == pytest.approx(12.0)


def test_stitching_window_that_starts_between_grid_frames():
    """A window starting at 2.5 frames: its frames are interpolated onto the clip's grid, not shifted by
    half a frame. A ramp, linear in time, comes back exactly from two windows of it."""
    hop, sr = 0.1, 100  # 10 samples a frame
    ramp = lambda t: np.stack([t, 2 * t], 1)  # noqa: E731  (T, 2) frames whose value is their time
    first = ramp(np.arange(10) * hop)  # a window at 0
    second = ramp(0.25 + np.arange(10) * hop)  # a window at sample 25 = frame 2.5
    full = stitch_frames([first, second], [0, 25], sr, hop, 125)
    np.testing.assert_allclose(full[:12], ramp(np.arange(12) * hop))
    assert full.shape == (13, 2)  # 1.25 s in 0.1 s frames; the partial last one repeats the one before
    np.testing.assert_allclose(full[12], full[11])
    # A start on the grid takes the frames as they are.
    np.testing.assert_allclose(stitch_frames([first], [0], sr, hop, 100), first)
