"""Re-tune a trained detector's decoding on its validation scenes, per class or shared, and score the test scenes.

    python benchmarks/sed_retune.py RUN_DIR [RUN_DIR ...] [--manifest data/office_sed_2000/manifest.jsonl]
                                    [--modes per_class,shared] [--eval-hops 5,2.5] [--select best,plateau]
                                    [--objectives event,event+segment]
                                    [--grids default,GRID ...]

For each run of ``benchmarks/sed_office.py`` (its ``checkpoints/best.ckpt``) and each
``task.decode_tuning`` mode, this does what the end of training does: tune the decoding on the
validation scenes (``Predictor.tune``) and evaluate the test scenes (``Predictor.evaluate``, in
float32 with BatchNorm folded, as training's own evaluation). No weights change and the test labels
choose nothing: only which validation criterion picks the thresholds and median windows differs.
Prints one row per run and mode, with the same columns as ``sed_office.py``.

``--eval-hops`` re-runs both steps with windows every that many seconds (the run's own hop when
left out): the frame probabilities of overlapping windows are averaged, so a shorter hop averages
more views of each frame, at proportionally more inference time.

``--select plateau`` picks the grid setting whose validation F1, averaged with its neighbouring
thresholds, is highest (``DetectionTask.decode_select``), rather than the single best setting: on a
flat optimum it takes the middle, not an edge that validation scenes of seen recordings happen to favour.

``--objectives event+segment`` has the grid maximise each class's mean of event-based and segment-based
F1 on validation (``DetectionTask.decode_objective``), instead of its event-based F1 alone.

``--grids`` widens the grid validation searches. Each grid is ``default`` (the one training
uses) or ``;``-separated ``name=v1/v2/...`` terms, over ``thresholds`` (hysteresis high),
``medians`` (seconds), ``ratios`` (low = high x ratio) and ``gaps`` (merge gap, seconds); terms left
out keep the default's values. For example ``--grids "default,gaps=0.1/0.3/0.6,thresholds=0.2/0.3/0.4/0.5/0.6/0.7/0.8"``
compares the training grid with one that also tunes the merge gap, and with one that reaches 0.8.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from earshot.checkpoint import load_checkpoint
from earshot.data.manifest import read_manifest
from earshot.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("event_f1_macro", "event_f1_micro", "event_er", "segment_f1_micro", "segment_er", "psds1", "psds2", "mAP")


GRID_TERMS = {"thresholds": "TUNE_THRESHOLDS", "medians": "TUNE_MEDIANS", "ratios": "TUNE_LOW_RATIOS",
              "gaps": "TUNE_MERGE_GAPS"}


def parse_grid(text: str) -> dict[str, tuple[float, ...]]:
    """``thresholds=0.2/0.5;gaps=0.1/0.3`` -> ``{"TUNE_THRESHOLDS": (0.2, 0.5), "TUNE_MERGE_GAPS": (0.1, 0.3)}``;
    ``default`` -> ``{}``."""
    if text == "default":
        return {}
    out = {}
    for term in text.split(";"):
        name, _, values = term.partition("=")
        if name not in GRID_TERMS or not values:
            raise SystemExit(f"--grids: {term!r} is not name=v1/v2/... with a name in {sorted(GRID_TERMS)}")
        out[GRID_TERMS[name]] = tuple(float(v) for v in values.split("/"))
    return out


def retune(run: Path, clips: list, mode: str, eval_hop: float | None = None, select: str = "best",
           objective: str = "event", grid: dict[str, tuple[float, ...]] | None = None) -> dict:
    ck = load_checkpoint(run / "checkpoints" / "best.ckpt")
    ck.task.decode_tuning = mode
    ck.task.decode_select = select
    ck.task.decode_objective = objective
    for attr, values in (grid or {}).items():
        setattr(ck.task, attr, values)  # on the instance: the class's grid stays as training has it
    if eval_hop is not None:
        ck.meta["inference"]["hop_seconds"] = eval_hop
    pred = Predictor(ck.model, ck.task, ck.meta, device="cpu", precision="fp32", fold_batchnorm=True)
    pred.tune([c for c in clips if c.split == "val"])
    report = pred.evaluate([c for c in clips if c.split == "test"])
    report["decode"] = ck.task.decoding.to_dict()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--manifest", default=str(REPO / "data" / "office_sed_2000" / "manifest.jsonl"))
    ap.add_argument("--modes", default="per_class,shared")
    ap.add_argument("--eval-hops", default="", help="comma-separated window hops in seconds; default: the run's")
    ap.add_argument("--select", default="best", help="comma-separated: best (each setting's own validation F1), "
                    "plateau (the mean with its neighbouring thresholds)")
    ap.add_argument("--objectives", default="event", help="comma-separated: event (each class's event F1), "
                    "event+segment (the mean of its event and segment F1)")
    ap.add_argument("--grids", default="default", help="comma-separated grids: default, or "
                    "'thresholds=../..;medians=..;ratios=..;gaps=..' (see above)")
    a = ap.parse_args()
    clips = read_manifest(a.manifest)
    hops = [float(h) for h in a.eval_hops.split(",")] if a.eval_hops else [None]
    grids = [(g, parse_grid(g)) for g in a.grids.split(",")]
    print("| run | decode tuning | select | objective | grid | window hop | " + " | ".join(COLUMNS)
          + " | high (per class) | low / high | median s | merge gap s |")
    print("|---" * (len(COLUMNS) + 10) + "|")
    for run in a.runs:
        for mode, sel, obj, (gname, grid), hop in (
                (m, s, o, g, h) for m in a.modes.split(",") for s in a.select.split(",")
                for o in a.objectives.split(",") for g in grids for h in hops):
            t = time.time()
            r = retune(Path(run), clips, mode, hop, sel, obj, grid)
            vals = " | ".join("-" if r.get(k) is None else f"{r[k]:.4f}" for k in COLUMNS)
            d = r["decode"]
            gaps = d["merge_gap"] if isinstance(d["merge_gap"], list) else [d["merge_gap"]]
            print(f"| {Path(run).name} | {mode} | {sel} | {obj} | {gname} | {'run' if hop is None else f'{hop:g} s'} "
                  f"| {vals} | {','.join(f'{h:g}' for h in d['high'])} | "
                  f"{','.join(f'{lo / h:g}' if h else '-' for lo, h in zip(d['low'], d['high']))} | "
                  f"{','.join(f'{m:g}' for m in d['median_seconds'])} | {','.join(f'{g:g}' for g in gaps)} |  "
                  f"({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
