"""Atomic file writes: to a temporary file in the same folder, flushed and fsynced, then renamed
over the target. A crash or a full disk mid-write leaves the old file intact."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def content_hash(x: Any) -> str:
    """A short hash of an array's bytes (blake2b, 128 bits)."""
    import numpy as np

    return hashlib.blake2b(memoryview(np.ascontiguousarray(x)).cast("B"), digest_size=16).hexdigest()


class _Recording:
    """A file whose failed writes are remembered: a serializer that swallows the ``OSError`` of a
    full disk and raises something else (torch's zip writer does) still reports the real cause."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.error: OSError | None = None

    def write(self, b: Any) -> int:
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    If anything fails (a full disk included), the temporary file is removed, ``path`` is left as
    it was, and a failed write is raised as the ``OSError`` it was, naming ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    rec: _Recording | None = None
    try:
        with os.fdopen(fd, "wb") as f:
            rec = _Recording(f)
            write(rec)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = e if isinstance(e, OSError) else rec.error if rec is not None else None
        if cause is not None:
            raise OSError(cause.errno, f"{cause.strerror or cause}: nothing was written, the previous file is "
                                       "intact", str(path)) from e
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def read_json(path: str | Path, what: str = "file") -> Any:
    """A JSON file earshot wrote; a missing, truncated or damaged one raises :class:`DataError`
    naming it and saying what to do, never a bare ``JSONDecodeError``."""
    import json

    from earshot.errors import DataError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(p, f"{what} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(p, f"{what} could not be read ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        state = "empty" if not text.strip() else f"damaged or cut short ({e.msg} at line {e.lineno})"
        raise DataError(p, f"{what} is {state}; write it again (e.g. re-run the command that made it)",
                        e.lineno) from None
