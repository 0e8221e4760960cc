"""One module per dataset layout; each returns validated clips plus a skip report."""

from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.data.sources.csv_table import prepare_csv, read_table
from earshot.data.sources.esc50 import prepare_esc50
from earshot.data.sources.files import prepare_files
from earshot.data.sources.folder import prepare_folder
from earshot.data.sources.fsdd import prepare_fsdd
from earshot.data.sources.fsdkaggle2018 import prepare_fsdkaggle2018
from earshot.data.sources.urbansound8k import prepare_urbansound8k

__all__ = ["Candidate", "PrepareResult", "prepare_csv", "prepare_esc50", "prepare_files", "prepare_folder",
           "prepare_fsdd", "prepare_fsdkaggle2018", "prepare_urbansound8k", "read_table", "validate"]

from pathlib import Path as _Path
from typing import Any as _Any, Callable as _Callable

from earshot.data.manifest import write_manifest as _write_manifest
from earshot.errors import DataError as _DataError

SOURCES: dict[str, _Callable[..., PrepareResult]] = {
    "folder": prepare_folder,
    "csv": prepare_csv,
    "fsdd": prepare_fsdd,
    "files": prepare_files,
    "esc50": prepare_esc50,
    "urbansound8k": prepare_urbansound8k,
    "fsdkaggle2018": prepare_fsdkaggle2018,
}


def prepare(source: str, out: str | _Path, **kwargs: _Any) -> PrepareResult:
    """Run a source by name and write its manifest to ``out`` and the skip report beside it."""
    if source not in SOURCES:
        raise _DataError(source, f"unknown dataset source; known: {sorted(SOURCES)}")
    result = SOURCES[source](**kwargs)
    out = _Path(out)
    _write_manifest(out, result.clips)
    result.skipped.write(report_path(out))
    return result


def report_path(manifest: str | _Path) -> _Path:
    """Where the skip report of a manifest lives: ``x.jsonl`` -> ``x.skipped.json``."""
    m = _Path(manifest)
    return m.with_name(m.stem + ".skipped.json")


__all__ += ["SOURCES", "prepare", "report_path"]
