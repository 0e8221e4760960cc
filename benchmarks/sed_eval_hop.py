"""A detector's test metrics against the hop between its windows: how much averaging more windows buys.

    python benchmarks/sed_eval_hop.py RUN_DIR [RUN_DIR ...] [--hops 5,2.5,1,0.5]
                                      [--manifest data/office_sed_2000/manifest.jsonl]

For each training run of ``benchmarks/sed_office.py`` (its ``checkpoints/best.ckpt``, decoding as tuned
on validation), the test scenes are read in the checkpoint's windows every ``hop`` seconds instead of the
recipe's hop. Each frame of the stitched timeline is the mean of every window that covers it (at a 1 s
hop, ten windows of 10 s), each window's frames interpolated onto the clip's frame grid, so the windows
see the same sound at different offsets in their context and their pooling phase. The decoding is the
one stored in the checkpoint; only the hop changes. It prints event and segment F1, PSDS1 and the
seconds each evaluation took.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from earshot.inference.evaluation import evaluate_checkpoint

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--hops", default="5,2.5,1,0.5", help="comma-separated seconds between windows")
    ap.add_argument("--manifest", type=Path, default=REPO / "data/office_sed_2000/manifest.jsonl")
    a = ap.parse_args()
    print("| run | hop (s) | event F1 macro | event F1 micro | segment F1 micro | PSDS1 | PSDS2 | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for run in a.runs:
        for hop in (float(h) for h in a.hops.split(",")):
            t = time.time()
            rep = evaluate_checkpoint(run / "checkpoints/best.ckpt", a.manifest, "test", run / f"eval-hop{hop:g}",
                                      hop_seconds=hop)
            print(f"| {run.name} | {hop:g} | {rep['event_f1_macro']:.4f} | {rep['event_f1_micro']:.4f} | "
                  f"{rep['segment_f1_micro']:.4f} | {rep['psds1']:.4f} | {rep['psds2']:.4f} | "
                  f"{time.time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
