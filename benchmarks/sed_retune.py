"""Re-tune a trained detector's decoding on its validation scenes, per class or shared, and score the test scenes.

    python benchmarks/sed_retune.py RUN_DIR [RUN_DIR ...] [--manifest data/office_sed_2000/manifest.jsonl]
                                    [--modes per_class,shared] [--eval-hops 5,2.5] [--select best,plateau]
                                    [--objectives event,event+segment]

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


def retune(run: Path, clips: list, mode: str, eval_hop: float | None = None, select: str = "best",
           objective: str = "event") -> dict:
    ck = load_checkpoint(run / "checkpoints" / "best.ckpt")
    ck.task.decode_tuning = mode
    ck.task.decode_select = select
    ck.task.decode_objective = objective
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
    a = ap.parse_args()
    clips = read_manifest(a.manifest)
    hops = [float(h) for h in a.eval_hops.split(",")] if a.eval_hops else [None]
    print("| run | decode tuning | select | objective | window hop | " + " | ".join(COLUMNS)
          + " | high (per class) | median s |")
    print("|---" * (len(COLUMNS) + 7) + "|")
    for run in a.runs:
        for mode, sel, obj, hop in ((m, s, o, h) for m in a.modes.split(",") for s in a.select.split(",")
                                    for o in a.objectives.split(",") for h in hops):
            t = time.time()
            r = retune(Path(run), clips, mode, hop, sel, obj)
            vals = " | ".join("-" if r.get(k) is None else f"{r[k]:.4f}" for k in COLUMNS)
            d = r["decode"]
            print(f"| {Path(run).name} | {mode} | {sel} | {obj} | {'run' if hop is None else f'{hop:g} s'} | {vals} | "
                  f"{','.join(f'{h:g}' for h in d['high'])} | "
                  f"{','.join(f'{m:g}' for m in d['median_seconds'])} |  ({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
