"""Building the decoded-audio cache in shards, on as many machines as a dataset needs.

``earshot cache MANIFEST --out DIR --shard i/n`` decodes and resamples the clips of shard ``i``
of ``n`` into an :class:`~earshot.data.loading.AudioCache`. A clip's shard is fixed by a hash of
its id, so shards never overlap, survive a reordered manifest, and together cover every clip.
Machines that share a file system can all write into one ``DIR`` (every entry is written
atomically under its own name); machines that do not each write their own folder, and
``earshot merge-cache PART... --out DIR`` gathers them, checking every entry's content hash.
Training then reads the cache with ``data.audio_cache=DIR``.

An entry is named after the source file's absolute path, size and modification time, so the
machines must see the dataset at the same path with the same times (one shared copy, or copies
made with ``rsync -t``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from earshot.atomic import atomic_write, atomic_write_text, content_hash
from earshot.data.loading import AudioCache
from earshot.data.manifest import Clip, ClipStore, SkipReport, in_chunks, read_manifest_store
from earshot.data.sources.common import stable_fraction
from earshot.errors import AudioError, DataError, EarshotError
from earshot.parallel import thread_map


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based) -> ``(i, n)``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise EarshotError(f"--shard takes i/n, e.g. 1/4, not {text!r}") from None
    if not 1 <= i <= n:
        raise EarshotError(f"--shard {text}: i must be between 1 and n")
    return i, n


def shard_of(clip: Clip, n: int) -> int:
    """The shard (1..n) that holds ``clip``."""
    return 1 + int(stable_fraction(clip.id, seed=7919) * n)


def build_cache(manifest: str | Path, out: str | Path, sample_rate: int, shard: tuple[int, int] = (1, 1),
                workers: int = 2, allow_outside_root: bool = False) -> dict[str, Any]:
    """Decode shard ``shard`` of the manifest's clips into ``out``; unreadable files go to
    ``OUT/skipped-shard-I-of-N.json``. Returns counts and throughput."""
    i, n = shard
    skipped = SkipReport()
    clips = ClipStore(c for c in read_manifest_store(manifest, allow_outside_root=allow_outside_root,
                                                      skipped=skipped) if shard_of(c, n) == i)
    cache = AudioCache(out, sample_rate)
    t0 = time.perf_counter()

    def one(c: Clip) -> tuple[int, bool]:
        try:
            existed = os.path.exists(cache.entry_file(c.path))
            return len(cache.load(c.path)), existed
        except AudioError as e:
            skipped.add(c.path, e.reason)
            return 0, False

    samples = decoded = cached = 0
    for chunk in in_chunks(clips):  # a chunk of clips as objects at a time, however large the shard
        for length, existed in thread_map(one, chunk, workers):
            samples, decoded, cached = samples + length, decoded + bool(length and not existed), cached + existed
    seconds = time.perf_counter() - t0
    report_file = Path(out) / f"skipped-shard-{i}-of-{n}.json"
    skipped.write(report_file)
    return {"shard": f"{i}/{n}", "clips": len(clips), "decoded": decoded,
            "already_cached": cached, "skipped": len(skipped),
            "audio_hours": samples / sample_rate / 3600, "seconds": seconds,
            "clips_per_second": decoded / seconds if seconds > 0 else 0.0, "cache": str(cache.dir),
            "skip_report": str(report_file)}


def merge_caches(parts: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Gather the entries of several shard folders into ``out``. Each entry's content hash is
    checked before it is copied; a damaged entry is left out and named (the next ``earshot cache``
    of its shard decodes it again). Two parts holding one entry must agree."""
    out = Path(out)
    copied = same = 0
    damaged: list[str] = []
    for part in parts:
        part = Path(part)
        if not part.is_dir():
            raise DataError(part, "not a cache folder")
        for rate_dir in sorted(p for p in part.iterdir() if p.is_dir() and p.name.endswith("hz")):
            dest = out / rate_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted(rate_dir.glob("*.npy")):
                want = _entry_hash(f)
                if want is None:
                    damaged.append(str(f))
                    continue
                target = dest / f.name
                if target.exists():
                    if _entry_hash(target) != want:
                        raise DataError(target, f"differs from {f}, the same entry in another part")
                    same += 1
                    continue
                atomic_write(target, lambda fh, src=f: _copy(src, fh))
                atomic_write_text(target.with_suffix(".b2"), want)
                copied += 1
    return {"parts": len(parts), "copied": copied, "already_there": same, "damaged": damaged, "cache": str(out)}


def _copy(src: Path, fh: Any) -> None:
    with open(src, "rb") as f:
        shutil.copyfileobj(f, fh)


def _entry_hash(f: Path) -> str | None:
    """The entry's recorded hash if its content matches it, else None."""
    try:
        want = f.with_suffix(".b2").read_text().strip()
        return want if content_hash(np.load(f, mmap_mode="r")) == want else None
    except (OSError, ValueError, EOFError):
        return None


def cache_entries(folder: str | Path) -> dict[str, str]:
    """``{relative entry path: content hash}`` of a cache folder (for comparing caches)."""
    folder = Path(folder)
    return {str(f.relative_to(folder)): f.with_suffix(".b2").read_text().strip()
            for f in sorted(folder.rglob("*.npy"))}
