"""Datasets that turn clips into batches, reading audio lazily from disk.

Nothing is decoded up front: :func:`check_clips` reads each file's header (missing, empty,
truncated or unreadable files are skipped and reported), and each item is decoded when a
worker asks for it. An optional :class:`AudioCache` keeps decoded, resampled audio as ``.npy``
files that later epochs memory-map, so a crop reads only its own samples. Memory therefore
stays bounded whatever the size of the dataset.

Training batches are random fixed-length crops; evaluation batches are sliding windows whose
predictions are pooled per clip. Batches are dicts:

- ``audio``: float32 ``(B, N)`` waveform at the model's sample rate
- ``target``: the task's target per example, stacked (``(B,)`` class indices, ``(B, C)`` multi-hot)
- ``weight``: float32 ``(B,)`` per-clip loss weight
- ``clip_index``: int64 ``(B,)`` which clip a window belongs to (evaluation only)
- ``start``: int64 ``(B,)`` the window's first sample in its clip (evaluation only)
- detection adds ``frame_target`` ``(B, T', C)`` and ``kind`` ``(B,)`` (see :mod:`earshot.tasks.detection`)
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from earshot.atomic import atomic_write, atomic_write_text, content_hash
from earshot.audio.io import fix_length, load_audio, probe_audio
from earshot.data.manifest import Clip, ClipStore, SkipReport
from earshot.data.windows import pool_windows, stitch_clips, stitch_frames, window_starts  # noqa: F401 (re-exported)
from earshot.errors import AudioError
from earshot.parallel import thread_map
from earshot.distributed import rank_and_world

log = logging.getLogger(__name__)


class ClipBits:
    """One bit per clip of a dataset, all clear at first (which clips' cache entries this process
    has hash-checked): its size is fixed when the dataset is made."""

    def __init__(self, n: int):
        self.bits = bytearray((n + 7) // 8)

    def __contains__(self, i: int) -> bool:
        return bool(self.bits[i >> 3] >> (i & 7) & 1)

    def add(self, i: int) -> None:
        self.bits[i >> 3] |= 1 << (i & 7)


class AudioCache:
    """Decoded mono audio at one sample rate, one ``.npy`` per source file.

    An entry's name is a hash of the sample rate and the source file's path, size and
    modification time, so a changed file or another rate is decoded afresh. Entries are written
    to a temporary file and renamed, so a crash never leaves half an entry. Each entry's content
    hash sits beside it (``.b2``) and is checked the first time a process reads the entry: a
    truncated or corrupted entry is reported (a warning naming it), counted in ``rebuilt`` and
    decoded again, never read.
    """

    def __init__(self, folder: str | Path, sample_rate: int):
        self.sample_rate = sample_rate
        self.dir = Path(folder) / f"{sample_rate}hz"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._dir = str(self.dir)
        self.rebuilt = 0
        self._verified: set[str] = set()

    def entry(self, path: str) -> Path:
        return Path(self.entry_file(path))

    def entry_file(self, path: str) -> str:
        """:meth:`entry` as a string, for the paths taken once per clip: pathlib interns every name
        it parses, and over a large manifest Python's table of interned strings grew with it."""
        st = os.stat(path)
        key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{self.sample_rate}"
        return os.path.join(self._dir, hashlib.sha1(key.encode()).hexdigest() + ".npy")

    def _cached(self, path: str, f: str, seen: tuple[ClipBits, int] | None) -> np.ndarray | None:
        """The entry if it is whole; None (after a warning) if it is damaged."""
        try:
            x = np.load(f, mmap_mode="r")
            if (seen[1] in seen[0]) if seen is not None else (os.path.basename(f) in self._verified):
                return x
            with open(f[: -len(".npy")] + ".b2") as fh:
                want = fh.read().strip()
            if content_hash(x) == want:
                self._mark(f, seen)
                return x
            problem = "its content does not match its hash"
        except FileNotFoundError:
            problem = "its content hash is missing"
        except (ValueError, OSError, EOFError) as e:
            problem = f"it cannot be read ({e})"
        log.warning("%s: the cached decoded audio %s is damaged (%s); decoding the file again", path, f, problem)
        self.rebuilt += 1
        return None

    def load(self, path: str, seen: tuple[ClipBits, int] | None = None) -> np.ndarray:
        """The decoded audio ``(N,)``: memory-mapped from the cache, or decoded and stored. ``seen``
        (a dataset's :class:`ClipBits` and the clip's index) records the hash check in one bit a
        clip, fixed in size, where a set of entry names would grow through the epoch."""
        try:
            f = self.entry_file(path)
        except FileNotFoundError:
            raise AudioError(path, "file not found") from None
        if os.path.exists(f):
            x = self._cached(path, f, seen)
            if x is not None:
                return x
        x, _ = load_audio(path, self.sample_rate)
        atomic_write(f, lambda fh: np.save(fh, x))
        atomic_write_text(f[: -len(".npy")] + ".b2", content_hash(x))
        self._mark(f, seen)
        return x

    def _mark(self, f: str, seen: tuple[ClipBits, int] | None) -> None:
        if seen is not None:
            seen[0].add(seen[1])
        else:
            self._verified.add(os.path.basename(f))

    def build(self, clips: Sequence[Clip], workers: int = 2) -> None:
        """Decode every clip not cached yet (bad files are left for the readers to report). An
        existing entry is not read here: its hash is checked where it is first read."""
        def one(c: Clip) -> None:
            try:
                if not os.path.exists(self.entry_file(c.path)):
                    self.load(c.path)
            except (AudioError, FileNotFoundError):
                pass

        thread_map(one, clips, workers)


class AudioReader:
    """Reads one clip's mono audio at ``sample_rate``, through an :class:`AudioCache` when given.

    Decoded clips are also kept in RAM until they fill ``memory_bytes`` (per process; 0 keeps
    none): a small dataset is decoded once, a large one costs no more than the cap.
    """

    def __init__(self, sample_rate: int, cache: AudioCache | None = None, memory_bytes: int = 0):
        self.sample_rate = sample_rate
        self.cache = cache
        self.memory_bytes = memory_bytes
        self._memory: dict[str, np.ndarray] = {}
        self._held = 0

    def __call__(self, clip: Clip, seen: tuple[ClipBits, int] | None = None) -> np.ndarray:
        x = self._memory.get(clip.path)
        if x is not None:
            return x
        x = self.cache.load(clip.path, seen) if self.cache is not None else load_audio(clip.path, self.sample_rate)[0]
        if self._held + x.nbytes <= self.memory_bytes:
            x = np.array(x)  # an in-memory copy, even of a memory-mapped cache entry
            self._memory[clip.path] = x
            self._held += x.nbytes
        return x

    def n_samples(self, clip: Clip) -> int:
        """Length after resampling, from the manifest's duration."""
        return max(1, int(math.ceil(clip.duration * self.sample_rate - 1e-6)))


def check_clips(clips: Sequence[Clip], sample_rate: int, strict: bool = False, skipped: SkipReport | None = None,
                min_samples: int = 0, workers: int = 4, cache: AudioCache | None = None) -> list[Clip]:
    """The clips whose files are present and readable (header check, no decoding).

    Missing, empty, truncated or unreadable files go to ``skipped`` (``strict`` raises instead).
    Clips shorter than ``min_samples`` at ``sample_rate`` are kept, zero-padded, and noted. A clip
    whose decoded audio is in ``cache`` (for the file's current size and time) was read whole when
    the entry was made: one ``stat`` stands in for opening the file again.
    """
    report = skipped if skipped is not None else SkipReport()

    def probe(c: Clip) -> AudioError | None:
        try:
            if cache is not None and os.path.exists(cache.entry_file(c.path)):
                return None
            probe_audio(c.path)
        except FileNotFoundError:
            return AudioError(c.path, "file not found")
        except AudioError as e:
            return e
        return None

    errors = thread_map(probe, clips, workers)
    out = []
    for c, err in zip(clips, errors):
        if err is not None:
            if strict:
                raise err
            report.add(c.path, err.reason)
            continue
        n = int(round(c.duration * sample_rate))
        if n < min_samples:
            report.note(c.path, f"shorter than the model's input ({n} < {min_samples} samples at {sample_rate} Hz): "
                                "zero-padded")
        out.append(c)
    return out


def class_weights(keys: Iterable[Sequence[str]]) -> torch.Tensor:
    """Sampling weights that draw every class about equally often. ``keys`` (iterated twice) holds,
    for each clip, the classes it counts for; a multi-label clip takes the weight of its rarest
    class, 1 / (clips of that class)."""
    counts: dict[str, int] = {}
    for ks in keys:
        for k in ks:
            counts[k] = counts.get(k, 0) + 1
    return torch.from_numpy(np.fromiter((max(1.0 / counts[k] for k in ks) for ks in keys), np.float64))


def _mix(*xs: int) -> int:
    """One 63-bit seed from several integers (stable across runs and machines)."""
    return int(hashlib.blake2b(repr(xs).encode(), digest_size=8).hexdigest(), 16) % 2**63


class EpochSampler(torch.utils.data.Sampler):
    """The training order of one epoch as a function of ``(seed, epoch)`` alone: a permutation, or
    ``weights``-proportional draws with replacement (the balanced sampler).

    It yields keys ``(index, epoch, position)``, and :class:`CropDataset` seeds each example's own
    randomness (crop offset, augmentation) from ``(seed, epoch, position)``. So the data of a run
    depend on neither the number of loader workers nor on where a run was interrupted: an epoch
    resumed at a position yields exactly what an uninterrupted one would have from there.

    Under DDP every rank draws the same order and takes positions ``rank, rank + world, ...``
    (asked when iterated, once the process group exists); the order is padded by wrapping round
    to a multiple of the world size, so every rank runs the same number of steps.
    """

    def __init__(self, n: int, weights: torch.Tensor | None = None, seed: int = 0):
        self.n, self.weights, self.seed = n, weights, seed
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of every epoch
        self.epoch = epoch

    def resume(self, epoch: int, position: int) -> None:
        """The next iteration of ``epoch`` starts at this rank's ``position`` (decided when iteration
        starts: Lightning creates the iterator before it sets the epoch)."""
        self._resume = (epoch, position)

    def __len__(self) -> int:
        return -(-self.n // rank_and_world()[1])

    def __iter__(self) -> Any:
        rank, world = rank_and_world()
        g = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        # an array, no Python int per clip, held all epoch: 4 bytes a clip below 2**31 clips, not 8 (randperm
        # gives the same order in either dtype)
        small = torch.int32 if self.n < 2**31 else torch.int64
        order = (torch.multinomial(self.weights, self.n, replacement=True, generator=g).to(small)
                 if self.weights is not None else torch.randperm(self.n, generator=g, dtype=small)).numpy()
        start = 0
        if self._resume is not None and self._resume[0] == self.epoch:  # kept until its epoch comes
            start, self._resume = self._resume[1], None
        for j in range(start, len(self)):
            pos = j * world + rank
            yield (int(order[pos % self.n]), self.epoch, pos)


class ResumableLoader(torch.utils.data.DataLoader):
    """A training loader that can resume mid-epoch. Lightning saves :meth:`state_dict` in every
    checkpoint and hands it back on resume; ``consumed`` is set by the trainer after each step
    (Lightning's own fetcher reads one batch ahead, so counting batches here would be one off)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.consumed = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.sampler.epoch), "consumed": int(self.consumed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = int(state["consumed"])
        self.sampler.resume(int(state["epoch"]), self.consumed * int(self.batch_size))


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: each loader worker draws from its own generator, seeded by torch's
    per-worker seed (itself derived from the run's seed), so workers never repeat each other.
    (Only for integer keys: keys from :class:`EpochSampler` carry their own seed.)"""
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(info.seed % 2**63)


class CropDataset(Dataset):
    """Random ``win``-sample crops for training; a short clip sits at a random offset in its window."""

    def __init__(self, clips: Sequence[Clip], reader: AudioReader, target: Callable[..., np.ndarray], win: int,
                 frame_hop: float = 0.0, seed: int = 0,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None):
        self.clips, self.reader, self.target, self.win = ClipStore.of(clips), reader, target, win
        self.checked = ClipBits(len(self.clips))  # cache entries hash-checked in this process
        self.frame_hop = frame_hop
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        """A crop of clip ``key``; with a key ``(index, epoch, position)`` from :class:`EpochSampler`,
        its randomness comes from ``(seed, epoch, position)``, else from the dataset's generator."""
        from earshot.tasks.base import Crop

        i, rng = example_key(key, self.seed, self.rng)
        c = self.clips[i]
        weight = float(c.weight)
        try:
            x = self.reader(c, (self.checked, i))
        except AudioError as e:  # went bad after the header check: train on silence with weight 0
            log.warning("%s (skipped in this batch)", e)
            x, weight = np.zeros(self.win, np.float32), 0.0
        n = len(x)
        off = int(rng.integers(0, n - self.win + 1)) if n >= self.win else -int(rng.integers(0, self.win - n + 1))
        sr = self.reader.sample_rate
        return training_item(fix_length(x, self.win, off), weight, self.target(c, Crop(off / sr, self.win / sr,
                                                                                       self.frame_hop)),
                             self.augment, rng)


def example_key(key: int | tuple[int, int, int], seed: int | Sequence[int], fallback: np.random.Generator
                ) -> tuple[int, np.random.Generator]:
    """The index and generator of one training example: a key ``(index, epoch, position)`` from
    :class:`EpochSampler` seeds its own generator from ``(*seed, epoch, position)``; a plain index
    draws from ``fallback``."""
    if isinstance(key, (tuple, list)):
        i, epoch, pos = (int(v) for v in key)
        return i, np.random.default_rng([*np.atleast_1d(seed).tolist(), epoch, pos])
    return int(key), fallback


def training_item(y: np.ndarray, weight: float, target: Any,
                  augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None,
                  rng: np.random.Generator) -> dict[str, Any]:
    """One training example: the (augmented) crop ``y`` with its weight and the task's target (an
    array, or a dict of arrays such as detection's frame targets)."""
    if augment is not None:
        y = augment(y, rng)
    item: dict[str, Any] = {"audio": torch.from_numpy(np.ascontiguousarray(y, np.float32)), "weight": weight}
    item.update({k: torch.as_tensor(v) for k, v in target.items()} if isinstance(target, dict)
                else {"target": torch.from_numpy(target)})
    return item


class TrainingSet(Dataset):
    """Clips of the manifest (:class:`CropDataset`) followed by scenes mixed on the fly
    (:class:`earshot.data.soundscapes.SceneStream`); either may be absent. Keys past the clips go
    to the scenes, with the same ``(epoch, position)``."""

    def __init__(self, crops: CropDataset, scenes: Dataset | None = None):
        self.crops, self.scenes = crops, scenes
        self.reader = crops.reader

    def __len__(self) -> int:
        return len(self.crops) + (len(self.scenes) if self.scenes is not None else 0)

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        i = int(key[0]) if isinstance(key, (tuple, list)) else int(key)
        if i < len(self.crops):
            return self.crops[key]
        j = i - len(self.crops)
        return self.scenes[(j, *key[1:]) if isinstance(key, (tuple, list)) else j]


class WindowDataset(Dataset):
    """The evaluation windows of one clip per item, decoded once: ``audio`` ``(W, win)``,
    ``clip_index`` ``(W,)`` and, with ``target``, the clip's target. Batch with :func:`collate_windows`."""

    def __init__(self, clips: Sequence[Clip], reader: AudioReader, target: Callable[..., np.ndarray] | None,
                 win: int, hop: int):
        self.clips, self.reader, self.target, self.win, self.hop = ClipStore.of(clips), reader, target, win, hop
        self.checked = ClipBits(len(self.clips))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, ci: int) -> dict[str, Any]:
        c = self.clips[ci]
        try:
            x = self.reader(c, (self.checked, ci))
        except AudioError as e:
            log.warning("%s (scored as silence)", e)
            x = np.zeros(self.win, np.float32)
        starts = window_starts(len(x), self.win, self.hop)
        audio = np.stack([fix_length(x, self.win, s) for s in starts]).astype(np.float32, copy=False)
        out: dict[str, Any] = {"audio": torch.from_numpy(audio), "clip_index": torch.full((len(starts),), ci),
                               "start": torch.tensor(starts, dtype=torch.int64)}
        if self.target is not None:
            out["target"] = torch.from_numpy(self.target(c))[None]
        return out


def collate_windows(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Concatenate the windows of several clips; ``target`` keeps one row per clip."""
    return {k: torch.cat([it[k] for it in items]) for k in items[0]}
