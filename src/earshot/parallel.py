"""A thread pool map that stays small in memory over a large dataset."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Sequence[T], workers: int, chunk: int = 256) -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` threads (I/O: headers, stats, decoding), in order.

    ``ThreadPoolExecutor.map`` makes a future, with its lock and condition, for every item before the
    first one runs: about a kilobyte each, so 2 M clips would hold gigabytes at once, which the
    process keeps. Here each future carries up to ``chunk`` items."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    step = min(chunk, -(-len(items) // (4 * workers)))  # a small input still spreads over the threads
    parts = [items[i : i + step] for i in range(0, len(items), step)]
    with ThreadPoolExecutor(workers) as pool:
        return [r for part in pool.map(lambda p: [fn(x) for x in p], parts) for r in part]
