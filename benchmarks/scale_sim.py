"""A large dataset in miniature: many short synthetic clips through prepare, the sharded audio
cache and the training loader, with throughput and memory at each stage.

    python benchmarks/scale_sim.py [--clips 100000] [--seconds 0.5] [--shards 4] [--work DIR]

Stages (each timed; every figure printed is measured here):
1. write the clips as 16-bit WAV at 16 kHz, in 10 class folders;
2. ``earshot prepare folder`` (reads every header) -> manifest;
3. ``earshot cache --shard i/n`` for each shard in turn, as n machines would, then
   ``earshot merge-cache``;
4. one training epoch of the loader alone (random crops from the memory-mapped cache, 2 worker
   processes, no model), sampling the memory (PSS) of the loader and its workers as it goes,
   for a tenth of the manifest, half of it and all of it, each in a fresh process.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def rss_mb(pid: int | None = None, field: str = "Pss") -> float:
    """Memory of a process and all its descendants, in MB: the sum of their proportional set sizes
    (PSS, from /proc), so pages the forked workers share with the loader count once. ``field="Pss_Anon"``
    counts only anonymous memory, leaving out file pages (libraries, memory-mapped cache entries and
    manifest stores), which the kernel can drop and read again."""
    pid = pid or os.getpid()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def write_clips(root: Path, n: int, seconds: float, sr: int = 16000) -> float:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    n_s = int(seconds * sr)
    t = np.arange(n_s) / sr
    for i in range(n):
        cls = i % 10
        x = 0.3 * np.sin(2 * np.pi * (200 + 150 * cls) * t) + 0.05 * rng.standard_normal(n_s)
        d = root / f"class{cls}"
        if i < 10:
            d.mkdir(parents=True, exist_ok=True)
        sf.write(d / f"clip{i:07d}.wav", x.astype(np.float32), sr, subtype="PCM_16")
    return time.perf_counter() - t0


def earshot(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "earshot", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"earshot {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0, r.stdout.strip()


def loader_epoch(manifest: Path, cache: Path, clip_seconds: float, batch: int, workers: int) -> dict[str, float]:
    """One epoch of training batches without a model: clips/s and resident memory over the epoch."""
    from earshot.config import load_config
    from earshot.data.manifest import SkipReport
    from earshot.training.run import build_data

    base, anon_base = rss_mb(), rss_mb(field="Pss_Anon")
    t0 = time.perf_counter()
    cfg = load_config(None, [f"data.manifest={manifest}", f"data.audio_cache={cache}", f"data.num_workers={workers}",
                             f"data.batch_size={batch}", f"data.clip_seconds={clip_seconds}", "data.val_fraction=0",
                             "data.memory_cache_mb=0", "model.name=cnn_small", "trainer.accelerator=cpu"])
    _, _, splits, _, _, loaders = build_data(cfg, SkipReport())
    setup = time.perf_counter() - t0
    after_setup, anon_setup = rss_mb(), rss_mb(field="Pss_Anon")
    samples, anon, n = [], [], 0
    gc.freeze()  # as earshot.training.run.train does before the workers fork
    t1 = time.perf_counter()
    for i, b in enumerate(loaders.train):
        n += len(b["audio"])
        if i % 50 == 0:
            samples.append(rss_mb())
            anon.append(rss_mb(field="Pss_Anon"))
    wall = time.perf_counter() - t1
    samples.append(rss_mb())
    anon.append(rss_mb(field="Pss_Anon"))
    return {"anon_base_mb": anon_base, "anon_setup_mb": anon_setup, "anon_peak_mb": max(anon),
            "stores_spilled": bool(getattr(loaders.train_clips, "spilled", False)),
            "clips": len(loaders.train_clips), "setup_s": setup, "base_mb": base, "after_setup_mb": after_setup,
            "epoch_s": wall, "clips_per_s": n / wall, "rss_first_mb": samples[1] if len(samples) > 1 else samples[0],
            "rss_peak_mb": max(samples), "rss_last_mb": samples[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="/tmp/earshot-scale")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--loader-only", action="store_true", help="stage 4 alone, on a work folder kept with --keep")
    ap.add_argument("--spill-kb", type=int, default=None,
                    help="manifest stores move to a memory-mapped file past this size (default: the library's 4 MiB)")
    ap.add_argument("--measure", nargs=2, metavar=("MANIFEST", "CACHE"), help=argparse.SUPPRESS)  # one stage-4 run
    a = ap.parse_args()
    work = Path(a.work)
    if a.spill_kb is not None:
        from earshot.data.manifest import ClipStore

        ClipStore.SPILL_BYTES = a.spill_kb * 1024
    if a.measure:
        print(json.dumps(loader_epoch(Path(a.measure[0]), Path(a.measure[1]), a.seconds, a.batch, a.workers)))
        return
    if a.loader_only:
        return measure_loaders(work, a)
    shutil.rmtree(work, ignore_errors=True)
    audio = work / "audio"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {a.clips} clips of "
          f"{a.seconds:g} s at 16 kHz ({a.clips * a.seconds / 3600:.1f} h)")
    t = write_clips(audio, a.clips, a.seconds)
    print(f"1. wrote {a.clips} WAVs in {t:.1f} s ({a.clips / t:.0f}/s)")
    manifest = work / "manifest.jsonl"
    t, _ = earshot("prepare", "folder", str(audio), "-o", str(manifest))
    print(f"2. prepare: {t:.1f} s ({a.clips / t:.0f} clips/s, every header read)")
    parts = []
    for i in range(1, a.shards + 1):
        part = work / f"cache-part{i}"
        t, out = earshot("cache", str(manifest), "--out", str(part), "--shard", f"{i}/{a.shards}", "--workers", "2")
        parts.append(str(part))
        print(f"3. {out.splitlines()[0]}  [{t:.1f} s with start-up]")
    t, out = earshot("merge-cache", *parts, "--out", str(work / "cache"))
    size = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file()) / 2**30
    print(f"   {out.splitlines()[0]} in {t:.1f} s; cache {size:.2f} GiB")
    for p in parts:
        shutil.rmtree(p)
    measure_loaders(work, a)
    if not a.keep:
        shutil.rmtree(work)


def measure_loaders(work: Path, a: argparse.Namespace) -> None:
    """Stage 4 for a tenth of the manifest and for all of it, each in a fresh process (so neither
    starts from what the other left in the heap)."""
    manifest = work / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    parts = []
    for name, frac in (("a tenth", 10), ("half", 2)):
        part = work / f"part{frac}.jsonl"
        part.write_text("\n".join(lines[: 1 + (len(lines) - 1) // frac]) + "\n")  # the header and a part
        parts.append((name, part))
    for name, m in (*parts, ("all", manifest)):
        out = subprocess.run([sys.executable, __file__, "--measure", str(m), str(work / "cache"), "--seconds",
                              str(a.seconds), "--batch", str(a.batch), "--workers", str(a.workers),
                              *(["--spill-kb", str(a.spill_kb)] if a.spill_kb is not None else [])],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"4. loader, {name} ({r['clips']} clips): setup {r['setup_s']:.1f} s; epoch {r['epoch_s']:.1f} s = "
              f"{r['clips_per_s']:.0f} clips/s; memory (PSS, loader + {a.workers} workers): before "
              f"{r['base_mb']:.0f} MB, after setup {r['after_setup_mb']:.0f} MB, first batches {r['rss_first_mb']:.0f} "
              f"MB, peak {r['rss_peak_mb']:.0f} MB, end {r['rss_last_mb']:.0f} MB; anonymous only (PSS_Anon): "
              f"before {r['anon_base_mb']:.0f} MB, after setup {r['anon_setup_mb']:.0f} MB, peak "
              f"{r['anon_peak_mb']:.0f} MB; manifest stores spilled to a file: {r['stores_spilled']}")


if __name__ == "__main__":
    main()
