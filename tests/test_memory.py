"""glibc's allocator settings that the command line applies."""

import platform
import subprocess
import sys

import pytest

from earshot.memory import keep_large_blocks

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_system_allocator_is_left_alone_when_asked(monkeypatch):
    monkeypatch.setenv("EARSHOT_ALLOCATOR", "system")
    assert keep_large_blocks() is False


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's")
def test_large_blocks_come_from_the_heap_and_are_kept():
    """After the call, freeing and re-allocating a 64 MB buffer faults no new pages: it reuses heap."""
    code = """
import ctypes, resource, sys
from earshot.memory import keep_large_blocks
if sys.argv[1] == "heap":
    assert keep_large_blocks()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
n = 64 << 20
def touch():
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("system", "heap")}
    pages = 5 * (64 << 20) // 4096
    assert faults["system"] > pages // 2  # a fresh mmap each time: every page faults again
    assert faults["heap"] < pages // 20

