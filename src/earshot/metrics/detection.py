"""Sound event detection metrics, computed by the libraries the DCASE challenges use.

- **sed_eval** (Mesaros et al. 2016): event-based F1 and error rate (onset collar 200 ms; offset
  200 ms or 20 % of the reference event's length), and segment-based F1 and error rate on 1 s
  segments, each macro (class-wise) and micro (overall) averaged.
- **sed_scores_eval** (Ebbers et al. 2022): PSDS1 and PSDS2 with the DCASE 2021+ parameters,
  computed from frame scores without thresholds.

Events are ``(onset, offset, label)`` tuples per file id. Both libraries are optional
(``pip install earshot[sed]``); they need ``setuptools<81`` and sed_scores_eval ``pandas<3``.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from earshot.errors import ConfigError

EventTuple = tuple[float, float, str]

# DCASE 2021-2024 Task 4 settings (Bilen et al. 2020; the challenge's evaluation code).
PSDS1 = dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0)
PSDS2 = dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0)


def _sed_eval() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dcase_util imports pkg_resources
            import sed_eval
    except ImportError as e:
        raise ConfigError(f"detection metrics need sed_eval: pip install 'earshot[sed]' ({e})") from None
    return sed_eval


def _event_list(events: Sequence[EventTuple], file: str) -> list[dict[str, Any]]:
    return [{"file": file, "filename": file, "event_onset": float(on), "event_offset": float(off),
             "event_label": lab, "onset": float(on), "offset": float(off)} for on, off, lab in events]


def _summary(metrics: Any, labels: Sequence[str], prefix: str) -> dict[str, Any]:
    """Overall (micro) and class-wise (macro) F1, precision, recall and ER, plus per-class F1."""
    overall = metrics.results_overall_metrics()
    classwise = metrics.results_class_wise_average_metrics()
    per_class = metrics.results_class_wise_metrics()
    f = overall["f_measure"]
    er = overall["error_rate"]
    out = {
        f"{prefix}_f1_micro": float(f["f_measure"]),
        f"{prefix}_precision_micro": float(f["precision"]),
        f"{prefix}_recall_micro": float(f["recall"]),
        f"{prefix}_f1_macro": float(classwise["f_measure"]["f_measure"]),
        f"{prefix}_er": float(er["error_rate"]),
        f"{prefix}_deletion_rate": float(er["deletion_rate"]),
        f"{prefix}_insertion_rate": float(er["insertion_rate"]),
        f"{prefix}_er_macro": float(classwise["error_rate"]["error_rate"]),
        f"per_class_{prefix}_f1": {lab: float(per_class[lab]["f_measure"]["f_measure"]) for lab in labels},
    }
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}


def sed_eval_report(reference: Mapping[str, Sequence[EventTuple]], estimated: Mapping[str, Sequence[EventTuple]],
                    labels: Sequence[str], t_collar: float = 0.2, percentage_of_length: float = 0.2,
                    segment_seconds: float = 1.0) -> dict[str, Any]:
    """Event-based and segment-based metrics over every file of ``reference`` (a file missing from
    ``estimated`` has no estimated events). Keys ``event_*`` and ``segment_*``."""
    sed_eval = _sed_eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice" for classes without events
        return _sed_eval_report(sed_eval, reference, estimated, labels, t_collar, percentage_of_length, segment_seconds)


def _sed_eval_report(sed_eval: Any, reference: Mapping[str, Sequence[EventTuple]],
                     estimated: Mapping[str, Sequence[EventTuple]], labels: Sequence[str], t_collar: float,
                     percentage_of_length: float, segment_seconds: float) -> dict[str, Any]:
    event = sed_eval.sound_event.EventBasedMetrics(list(labels), t_collar=t_collar,
                                                   percentage_of_length=percentage_of_length)
    segment = sed_eval.sound_event.SegmentBasedMetrics(list(labels), time_resolution=segment_seconds)
    for file, ref in reference.items():
        ref_list = _event_list(ref, file)
        est_list = _event_list(estimated.get(file, ()), file)
        event.evaluate(ref_list, est_list)
        segment.evaluate(ref_list, est_list)
    return {**_summary(event, labels, "event"), **_summary(segment, labels, "segment"),
            "collar_seconds": t_collar, "offset_percentage": percentage_of_length, "segment_seconds": segment_seconds}


def score_frames(frame_probs: np.ndarray, hop: float, labels: Sequence[str]) -> Any:
    """A sed_scores_eval score DataFrame from frame probabilities ``(T, C)`` at ``hop`` seconds."""
    try:
        from sed_scores_eval.base_modules.scores import create_score_dataframe
    except ImportError as e:
        raise ConfigError(f"PSDS needs sed_scores_eval: pip install 'earshot[sed]' ({e})") from None
    t = np.arange(len(frame_probs) + 1) * hop
    return create_score_dataframe(np.asarray(frame_probs, np.float64), t, list(labels))


def _merge_touching(events: Sequence[EventTuple]) -> list[EventTuple]:
    """Same-class events that overlap or touch, merged (sed_scores_eval rejects them)."""
    out: list[list[Any]] = []
    for on, off, lab in sorted(events, key=lambda e: (e[2], e[0])):
        if out and out[-1][2] == lab and on <= out[-1][1]:
            out[-1][1] = max(out[-1][1], float(off))
        else:
            out.append([float(on), float(off), lab])
    return [(a, b, lab) for a, b, lab in out]


def psds_report(reference: Mapping[str, Sequence[EventTuple]], frame_probs: Mapping[str, np.ndarray], hop: float,
                labels: Sequence[str], durations: Mapping[str, float]) -> dict[str, Any]:
    """PSDS1 and PSDS2 (DCASE 2021+ settings) from each file's frame probabilities ``(T, C)``.

    PSDS averages over the classes that have reference events (``psds_classes`` says how many);
    where sed_scores_eval cannot compute a scenario, its value is ``None`` and the reason is kept.
    """
    try:
        from sed_scores_eval import intersection_based
    except ImportError as e:
        raise ConfigError(f"PSDS needs sed_scores_eval: pip install 'earshot[sed]' ({e})") from None
    present = sorted({e[2] for f in frame_probs for e in reference.get(f, ())} & set(labels), key=list(labels).index)
    out: dict[str, Any] = {"psds_classes": len(present)}
    if not present:
        return {**out, "psds1": None, "psds2": None, "psds1_error": "no reference events"}
    cols = [list(labels).index(lab) for lab in present]  # PSDS averages over classes with reference events
    scores = {f: score_frames(np.asarray(p)[:, cols], hop, present) for f, p in frame_probs.items()}
    gt = {f: _merge_touching(reference.get(f, ())) for f in scores}
    dur = {f: float(durations[f]) for f in scores}
    for name, params in (("psds1", PSDS1), ("psds2", PSDS2)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value, per_class, *_ = intersection_based.psds(scores, gt, dur, **params)
            out[name] = float(value)
        except (ValueError, AssertionError, ZeroDivisionError, TypeError) as e:  # the library's reason is kept
            out[name] = None
            out[f"{name}_error"] = str(e).splitlines()[0][:200]
    return out
