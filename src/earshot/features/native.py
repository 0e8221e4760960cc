"""The CPU log-mel front-end's fused kernels (``logmel_native.c``), compiled on first use.

``LogMel`` runs framing, FFT, power, mel and log as separate torch ops: after MKL's FFT, three more
passes over the spectrum, and a dense matmul that multiplies every bin by every filter although a
mel filter covers a few bins. The C file does the windowed framing in one pass, and power, the
filters' nonzero bins and the log in another; the FFT stays torch's. Same float32 arithmetic as
the torch path, to about 1e-5 dB. Their loops run on torch's OpenMP threads (see the C file).

The library is built once per machine with the system C compiler (``$CC``, else ``cc``), at
``-O3 -march=native -fopenmp``, into ``<cache>/native/`` (``$EARSHOT_CACHE`` or the user cache), named by a
hash of the source, the compiler and the CPU's flags, so a cache shared by different machines never
loads a build for another CPU. Without a compiler, or with ``EARSHOT_NATIVE=0``, ``load`` returns
``None`` and ``LogMel`` uses its torch ops: the kernels are a speed-up, never a requirement. By
default (``EARSHOT_NATIVE`` unset or ``auto``) they are used only on AVX-512 CPUs, where they were
measured faster; ``EARSHOT_NATIVE=1`` uses them on any CPU.
``LogMel`` calls them only where autograd is off; training steps keep the torch ops.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("logmel_native.c")
# no -ffast-math: same results as torch; trapping and errno off so the log and sqrt loops vectorise
FLAGS = ("-O3", "-march=native", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared")
OPENMP = "-fopenmp"  # left out where the compiler has no OpenMP: the kernels then run on one thread
_P, _I, _I64, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build(folder: Path) -> Path:
    """Compile the library into ``folder`` unless a build for this source, compiler and CPU is
    there; returns its path. Concurrent processes each compile to a temporary name and rename."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler (cc, gcc or $CC) on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha1(b"\0".join(s.encode() if isinstance(s, str) else s for s in
                                  (SOURCE.read_bytes(), " ".join(FLAGS), version, _cpu_flags()))).hexdigest()[:16]
    lib = folder / f"logmel-{key}.so"
    if lib.exists():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        for flags in ((*FLAGS, OPENMP), FLAGS):
            r = subprocess.run([cc, *flags, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True, timeout=120)
            if r.returncode == 0:
                break
        else:
            raise RuntimeError(f"{cc} failed on {SOURCE.name}: {r.stderr.strip()[-2000:]}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def faster_here() -> bool:
    """Whether the kernels beat the torch ops on this CPU: on AVX-512 CPUs they ran the front-end
    1.7-2.2x faster (benchmarks/frontend.py, an Intel Xeon); on an AVX2-only AMD EPYC, 0.53x, slower
    than MKL's dense mel matmul there (benchmarks/RESULTS.md, 2026-11-23 13:30)."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


@functools.lru_cache(maxsize=None)
def load() -> ctypes.CDLL | None:
    """The compiled kernels, or ``None`` (``EARSHOT_NATIVE=0``, no compiler, a failed build: the
    reason is logged once)."""
    choice = os.environ.get("EARSHOT_NATIVE", "auto")
    if choice == "0":
        return None
    if choice != "1" and not faster_here():
        log.info("log-mel front-end: torch ops, the faster path on this CPU (%s; EARSHOT_NATIVE=1 forces the "
                 "native kernels)", torch.backends.cpu.get_cpu_capability())
        return None
    try:
        from earshot.paths import cache_dir

        lib = ctypes.CDLL(str(_build(cache_dir() / "native")))
    except Exception as e:  # noqa: BLE001 - any failure means the torch path, which is always there
        log.info("log-mel front-end: native kernels unavailable (%s); using torch ops", e)
        return None
    lib.window_frames.argtypes = [_P, _P, _P, _I64, _I64, _I64, _I, _I, _I, _I, _I]
    lib.logmel_from_spectrum.argtypes = [_P, _P, _I64, _I, _I, _I, _I, _I, _P, _P, _P, _P, _I, _I, _F, _F, _I]
    lib.mel_group_size.restype = _I
    return lib


class GroupedMel:
    """A mel filterbank ``(n_freq, F)`` as the kernel reads it: groups of ``group`` consecutive
    filters, each group with the bins where any of its filters is nonzero and its weights as a
    ``(bins, group)`` block."""

    def __init__(self, mel_t: torch.Tensor, group: int):
        rows = mel_t.T.detach().cpu().numpy().astype(np.float32)  # (F, n_freq)
        self.n_mels, n_freq = rows.shape
        lo, hi, blocks = [], [], []
        for m0 in range(0, self.n_mels, group):
            block = np.zeros((group, n_freq), np.float32)
            block[: min(group, self.n_mels - m0)] = rows[m0 : m0 + group]
            nz = np.flatnonzero(np.abs(block).sum(0) > 0)
            a, b = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
            lo.append(a)
            hi.append(b)
            blocks.append(block[:, a:b].T.reshape(-1))
        self.lo_bins = np.asarray(lo, np.int32)
        self.hi_bins = np.asarray(hi, np.int32)
        sizes = [len(x) for x in blocks]
        self.offsets = np.asarray(np.concatenate([[0], np.cumsum(sizes)[:-1]]), np.int32)
        self.weights = np.ascontiguousarray(np.concatenate(blocks), np.float32)
        used = self.hi_bins > self.lo_bins
        self.lo = int(self.lo_bins[used].min()) if used.any() else 0
        self.hi = int(self.hi_bins[used].max()) if used.any() else 0
        self.lo_bins[~used] = self.hi_bins[~used] = self.lo  # empty groups: no bins


def window_frames(lib: ctypes.CDLL, x: torch.Tensor, window: torch.Tensor, out: torch.Tensor, hop: int,
                  pad_left: int, reflect: bool) -> torch.Tensor:
    """Frames of ``x`` ``(B, N)`` into ``out`` ``(B, T, L)``, times ``window`` ``(L,)``; frame ``t``
    starts at sample ``t * hop - pad_left``, samples outside the signal being zeros or a reflection."""
    b, n = x.shape
    _, t, length = out.shape
    lib.window_frames(x.data_ptr(), out.data_ptr(), window.data_ptr(), b, n, t, hop, length, pad_left,
                      int(reflect), max(1, torch.get_num_threads()))
    return out


def logmel_from_spectrum(lib: ctypes.CDLL, spec: torch.Tensor, mel: GroupedMel, out: torch.Tensor, magnitude: bool,
                         log_mode: str, amin: float, offset: float) -> torch.Tensor:
    """Complex spectrum ``(..., n_freq)`` -> log mel ``out`` ``(..., F)``: power (``magnitude``:
    its square root), the filters, then ``10 log10(max(mel, amin))`` or ``ln(mel + offset)``."""
    n_freq = spec.shape[-1]
    lib.logmel_from_spectrum(spec.data_ptr(), out.data_ptr(), spec.numel() // n_freq, n_freq, mel.lo, mel.hi,
                             mel.n_mels, len(mel.lo_bins), mel.lo_bins.ctypes.data, mel.hi_bins.ctypes.data,
                             mel.offsets.ctypes.data, mel.weights.ctypes.data, int(magnitude),
                             0 if log_mode == "db" else 1, amin, offset, max(1, torch.get_num_threads()))
    return out
