"""Error types that name the offending file (and line) so a user can fix their data."""

from __future__ import annotations

from pathlib import Path


class EarshotError(Exception):
    """Base class for errors that are reported to the user as one line, without a traceback."""


class AudioError(EarshotError):
    """An audio file could not be used: it is missing, empty, corrupt, truncated or holds bad samples."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DataError(EarshotError):
    """A manifest, CSV or label list is malformed. ``line`` is 1-based when known."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class ConfigError(EarshotError):
    """A recipe or ``key=value`` override does not fit the config schema."""
