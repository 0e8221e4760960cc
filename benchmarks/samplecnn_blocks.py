"""Cost of each SampleCNN block variant: parameters, MACs per 59049-sample segment, and the CPU time
of one training step (forward, backward, SGD update) on a batch of segments, fp32 and bf16 autocast.

    python benchmarks/samplecnn_blocks.py [--batch 16] [--steps 3]

Random weights and inputs (the cost does not depend on them); 50 output classes (MagnaTagATune).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from earshot.models.profile import macs_per_second
from earshot.models.registry import count_parameters, create_model

VARIANTS = [("basic", {}), ("se", {}), ("res1", {}), ("res2", {}), ("rese1", {}), ("rese2", {}),
            ("se", {"multi": True}), ("rese2", {"multi": True})]


def step_seconds(model: torch.nn.Module, batch: int, steps: int, bf16: bool) -> float:
    """Median seconds of one training step after a warm-up step."""
    x = torch.randn(batch, 59049)
    y = (torch.rand(batch, 50) < 0.1).float()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)["clip_logits"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, batch {a.batch}")
    print("| block | multi | params | GMAC / segment | step fp32 (s) | step bf16 (s) | bf16 speed-up |")
    print("|---|---|---|---|---|---|---|")
    for block, kw in VARIANTS:
        m = create_model(f"samplecnn_{block}", 50, **kw).train()
        macs = macs_per_second(m, 59049 / 22050) * 59049 / 22050
        fp32 = step_seconds(m, a.batch, a.steps, False)
        bf16 = step_seconds(m, a.batch, a.steps, True)
        print(f"| {block} | {'yes' if kw.get('multi') else 'no'} | {count_parameters(m) / 1e6:.2f} M | "
              f"{macs / 1e9:.3f} | {fp32:.2f} | {bf16:.2f} | {fp32 / bf16:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
