"""How earshot's processes use glibc's allocator.

A CPU forward pass allocates tensors of tens of megabytes and frees them a moment later. glibc
serves blocks above its mmap threshold (at most 32 MB, by default) with a fresh ``mmap`` and returns
them to the kernel on ``free``, so every such tensor costs a page fault per 4 KB page it touches. A
``relu`` on a 53 MB bf16 activation took 21 ms that way, and 7 ms once the memory came from the
heap. On an hour of audio through the FSDD model, ``earshot predict`` ran 1.3-1.4x faster
(``benchmarks/RESULTS.md``). PyTorch's CPU tuning guide gets the same by preloading jemalloc or
tcmalloc; these two settings of glibc need nothing installed.

The price: freed heap stays with the process for reuse instead of going back to the kernel, so
resident memory holds at its peak rather than falling between batches. Set
``EARSHOT_ALLOCATOR=system`` to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 1 << 30  # blocks up to 1 GiB come from the heap, and up to 1 GiB of free heap top is kept


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_large_blocks() -> bool:
    """Serve large allocations from the heap and keep freed heap for reuse (see the module's
    docstring). True when the settings took; a no-op off glibc or with ``EARSHOT_ALLOCATOR=system``.
    The command line calls it for every command; a program using earshot as a library may call it
    once at start."""
    if os.environ.get("EARSHOT_ALLOCATOR", "").lower() == "system":
        return False
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(LARGE_BLOCK))
    return bool(ok and libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(LARGE_BLOCK)))


def release_freed_memory() -> None:
    """Give the kernel back the heap that freed objects left (glibc keeps freed chunks for reuse,
    and over a large manifest they add up: 3-8 MB at 100,000 records). A no-op off glibc."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
