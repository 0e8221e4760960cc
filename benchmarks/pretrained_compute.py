"""Compute of the pretrained backbones, with random weights (the cost does not depend on the weights).

    python benchmarks/pretrained_compute.py [--models panns_cnn6,panns_cnn14] [--batch 8] [--steps 3]

- Training: clips per second of a full step (front-end, forward, backward, AdamW) on 5 s clips at
  the model's sample rate, after one warm-up step.
- Embedding: seconds of compute per hour of audio for ``model.embed`` on 10 s windows in eval mode.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from earshot.models.registry import count_parameters, create_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="panns_cnn6,panns_cnn14,panns_mobilenetv1,vggish")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("| model | parameters | training clips/s (5 s clips, batch %d) | embedding: s per hour of audio |" % a.batch)
    print("|---|---|---|---|")
    torch.manual_seed(0)
    for name in a.models.split(","):
        m = create_model(name, 50)
        sr = m.sample_rate
        x = torch.randn(a.batch, 5 * sr) * 0.1
        y = torch.randint(0, 50, (a.batch,))
        opt = torch.optim.AdamW(m.parameters(), 1e-4)
        m.train()
        times = []
        for i in range(a.steps + 1):
            t = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(m(x)["clip_logits"], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t)
        train_cps = a.batch / (sum(times) / len(times))
        m.eval()
        w = torch.randn(4, 10 * sr) * 0.1
        with torch.no_grad():
            m.embed(w[:1])
            t = time.perf_counter()
            m.embed(w)
            emb = time.perf_counter() - t
        per_hour = emb / 40.0 * 3600
        print(f"| {name} | {count_parameters(m) / 1e6:.1f} M | {train_cps:.2f} | {per_hour:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
