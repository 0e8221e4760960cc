"""Where a detector's errors come from: seen against unseen recordings, and decoding against the model.

    python benchmarks/sed_diagnose.py RUN_DIR [RUN_DIR ...] [--manifest data/office_sed_2000/manifest.jsonl]

For each training run of ``benchmarks/sed_office.py`` (its ``checkpoints/best.ckpt``), on the
validation scenes (mixed from the *training* recordings) and the test scenes (held-out recordings):

1. frame-level AP per class: the gap between the two is how far the model generalises to new
   recordings of the same classes;
2. event-based F1 (macro) over the decoding grid the training run tunes on (one hysteresis
   threshold and median window for every class), on both splits;
3. per class, the test F1 of the setting tuned on validation against the best setting on test
   itself. The latter is an **oracle** (it looks at the test labels) and is only a bound: it says
   how much better decoding alone could ever do, never a result;
4. which class a false alarm overlaps (the confusions);
5. boundaries: for each reference event found with the right class and an onset within 200 ms, how
   far the detected onset and offset fall from the reference's, per class (medians), and how many
   of those fail only on the offset collar (200 ms or 20 % of the duration, as sed_eval scores).
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from earshot.data.manifest import read_manifest
from earshot.inference.predictor import Predictor
from earshot.metrics.detection import sed_eval_report
from earshot.tasks.detection import DetectionTask
from earshot.tasks.events import event_roll

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS, MEDIANS = DetectionTask.TUNE_THRESHOLDS, DetectionTask.TUNE_MEDIANS  # the grid training tunes on


def frame_ap(p: Predictor, clips: list, frames: list) -> np.ndarray:
    from sklearn.metrics import average_precision_score

    labels = p.task.labels
    y = np.concatenate([event_roll([(e.onset, e.offset, e.label) for e in c.events], labels, len(f), p.frame_hop)
                        for c, f in zip(clips, frames)])
    x = np.concatenate(frames)
    return np.array([average_precision_score(y[:, k], x[:, k]) if 0 < y[:, k].sum() < len(y) else np.nan
                     for k in range(len(labels))])


def f1_grid(p: Predictor, clips: list, frames: list) -> np.ndarray:
    """Event F1 ``(class, median, threshold)`` with ``low = high / 2``, as the tuning grid."""
    task, n = p.task, len(p.task.labels)
    ref = {c.id: [(e.onset, e.offset, e.label) for e in c.events] for c in clips}
    out = np.zeros((n, len(MEDIANS), len(THRESHOLDS)))
    saved = (task.decoding.high, task.decoding.low, task.decoding.median_seconds)
    for a, med in enumerate(MEDIANS):
        for b, thr in enumerate(THRESHOLDS):
            task.decoding.high, task.decoding.low, task.decoding.median_seconds = [thr] * n, [thr / 2] * n, [med] * n
            est = {c.id: [e[:3] for e in task.events(f, p.frame_hop)] for c, f in zip(clips, frames)}
            f1 = sed_eval_report(ref, est, task.labels)["per_class_event_f1"]
            out[:, a, b] = [np.nan if f1[lab] is None else f1[lab] for lab in task.labels]
    task.decoding.high, task.decoding.low, task.decoding.median_seconds = saved
    return out


def confusions(p: Predictor, clips: list, frames: list, top: int = 8) -> list[tuple[str, str, int]]:
    """(predicted, overlapped reference or 'nothing', count) for false alarms, with the run's decoding."""
    counts: collections.Counter = collections.Counter()
    for c, f in zip(clips, frames):
        ref = [(e.onset, e.offset, e.label) for e in c.events]
        for on, off, lab, _ in p.task.events(f, p.frame_hop):
            if any(lab == rl and min(off, rb) > max(on, ra) for ra, rb, rl in ref):
                continue
            hit = [rl for ra, rb, rl in ref if min(off, rb) > max(on, ra)]
            counts[(lab, hit[0] if hit else "nothing")] += 1
    return [(a, b, k) for (a, b), k in counts.most_common(top)]


def boundaries(p: Predictor, clips: list, frames: list) -> dict[str, tuple[int, float, float, float]]:
    """Per class: (onset-matched events, median onset error, median offset error, share failing
    only on the offset collar); errors are detected minus reference, in seconds."""
    found: dict[str, list[tuple[float, float, bool]]] = collections.defaultdict(list)
    for c, f in zip(clips, frames):
        est = p.task.events(f, p.frame_hop)
        for e in c.events:
            cands = [(abs(on - e.onset), on, off) for on, off, lab, _ in est if lab == e.label and abs(on - e.onset) <= 0.2]
            if cands:
                _, on, off = min(cands)
                collar = max(0.2, 0.2 * (e.offset - e.onset))
                found[e.label].append((on - e.onset, off - e.offset, abs(off - e.offset) > collar))
    return {lab: (len(v), float(np.median([a for a, _, _ in v])), float(np.median([b for _, b, _ in v])),
                  float(np.mean([m for _, _, m in v]))) for lab, v in sorted(found.items())}


def diagnose(run: Path, manifest: Path) -> None:
    p = Predictor.load(run / "checkpoints" / "best.ckpt", precision="fp32")
    labels = p.task.labels
    clips = read_manifest(manifest)
    out = {}
    for split in ("val", "test"):
        _, frames, kept = p.clip_outputs([c for c in clips if c.split == split])
        out[split] = (kept, frames)
    print(f"## {run}")
    aps = {s: frame_ap(p, *out[s]) for s in out}
    print("| class | " + " | ".join(labels) + " | mean |")
    print("|---" * (len(labels) + 2) + "|")
    for s, ap in aps.items():
        print(f"| frame AP, {s} | " + " | ".join(f"{v:.2f}" for v in ap) + f" | **{np.nanmean(ap):.3f}** |")
    grids = {s: f1_grid(p, *out[s]) for s in out}
    print("\nevent F1 macro, one setting for every class (threshold x median window):")
    print("| median \\ threshold | " + " | ".join(f"{t:g}" for t in THRESHOLDS) + " |")
    print("|---" * (len(THRESHOLDS) + 1) + "|")
    for a, med in enumerate(MEDIANS):
        print(f"| {med:g} s | " + " | ".join(f"{np.nanmean(grids['val'][:, a, b]):.3f} / "
                                              f"{np.nanmean(grids['test'][:, a, b]):.3f}" for b in range(len(THRESHOLDS)))
              + " |  (val / test)")
    tuned, oracle = [], []
    for k in range(len(labels)):
        v = np.nan_to_num(grids["val"][k], nan=-1.0)
        t = np.nan_to_num(grids["test"][k], nan=-1.0)
        tuned.append(t[np.unravel_index(np.argmax(v), v.shape)])
        oracle.append(t.max())
    print(f"\nper-class decoding tuned on validation: test event F1 macro {np.mean(tuned):.3f}; "
          f"oracle (best per class on test itself, a bound only): {np.mean(oracle):.3f}")
    print("per class (tuned / oracle): " + ", ".join(f"{lab} {a:.2f}/{b:.2f}" for lab, a, b in zip(labels, tuned, oracle)))
    print("false alarms on test (predicted, overlapping reference, count): "
          + "; ".join(f"{a} over {b} {k}" for a, b, k in confusions(p, *out["test"])))
    print("\nboundaries of onset-matched events (s, detected minus reference; the run's decoding):")
    print("| split | class | matched | median onset error | median offset error | fail on offset only |")
    print("|---|---|---|---|---|---|")
    for s in out:
        for lab, (n, d_on, d_off, miss) in boundaries(p, *out[s]).items():
            print(f"| {s} | {lab} | {n} | {d_on:+.3f} | {d_off:+.3f} | {miss:.0%} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--manifest", default=str(REPO / "data" / "office_sed_2000" / "manifest.jsonl"))
    a = ap.parse_args()
    for run in a.runs:
        diagnose(Path(run), Path(a.manifest))


if __name__ == "__main__":
    main()
