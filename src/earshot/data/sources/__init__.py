"""One module per dataset layout; each returns validated clips plus a skip report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from earshot.data.manifest import write_manifest
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.data.sources.csv_table import prepare_csv, read_table
from earshot.data.sources.esc50 import prepare_esc50
from earshot.data.sources.files import prepare_files
from earshot.data.sources.folder import prepare_folder
from earshot.data.sources.fsdd import prepare_fsdd
from earshot.data.sources.fsdkaggle2018 import prepare_fsdkaggle2018
from earshot.data.sources.urbansound8k import prepare_urbansound8k
from earshot.errors import DataError

SOURCES: dict[str, Callable[..., PrepareResult]] = {
    "folder": prepare_folder,
    "csv": prepare_csv,
    "fsdd": prepare_fsdd,
    "files": prepare_files,
    "esc50": prepare_esc50,
    "urbansound8k": prepare_urbansound8k,
    "fsdkaggle2018": prepare_fsdkaggle2018,
}


def prepare(source: str, out: str | Path, **kwargs: Any) -> PrepareResult:
    """Run a source by name and write its manifest to ``out`` and the skip report beside it."""
    if source not in SOURCES:
        raise DataError(source, f"unknown dataset source; known: {sorted(SOURCES)}")
    result = SOURCES[source](**kwargs)
    out = Path(out)
    write_manifest(out, result.clips)
    result.skipped.write(report_path(out))
    return result


def report_path(manifest: str | Path) -> Path:
    """Where the skip report of a manifest lives: ``x.jsonl`` -> ``x.skipped.json``."""
    m = Path(manifest)
    return m.with_name(m.stem + ".skipped.json")


__all__ = ["SOURCES", "Candidate", "PrepareResult", "prepare", "prepare_csv", "prepare_esc50", "prepare_files",
           "prepare_folder", "prepare_fsdd", "prepare_fsdkaggle2018", "prepare_urbansound8k", "read_table",
           "report_path", "validate"]
