"""One module per dataset layout; each returns validated clips plus a skip report."""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from earshot.data.manifest import write_manifest
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.data.sources.audioset_strong import prepare_audioset_strong
from earshot.data.sources.csv_table import prepare_csv, read_table
from earshot.data.sources.dcase2017_task4 import prepare_dcase2017_task4
from earshot.data.sources.desed import prepare_desed
from earshot.data.sources.esc50 import prepare_esc50
from earshot.data.sources.files import prepare_files
from earshot.data.sources.folder import prepare_folder
from earshot.data.sources.fsdd import prepare_fsdd
from earshot.data.sources.fsdkaggle2018 import prepare_fsdkaggle2018
from earshot.data.sources.mtt import prepare_mtt
from earshot.data.sources.speech_commands import prepare_speech_commands
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
    "mtt": prepare_mtt,
    "speech_commands": prepare_speech_commands,
    "dcase2017_task4": prepare_dcase2017_task4,
    "desed": prepare_desed,
    "audioset_strong": prepare_audioset_strong,
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


def parse_label_list(value: str) -> list[str]:
    """``a,b,c``, or the path of a file with one label per line."""
    p = Path(value)
    if p.is_file():
        return [x.strip() for x in p.read_text().splitlines() if x.strip()]
    return [x.strip() for x in value.split(",") if x.strip()]


@dataclass
class SourceOption:
    """One command-line argument of a source, read from its function's signature."""

    flags: list[str]
    kwargs: dict[str, Any] = field(default_factory=dict)


def source_options(fn: Callable[..., Any]) -> list[SourceOption]:
    """Arguments for ``earshot prepare SOURCE``: required parameters are positional, the others become
    ``--dashed-names`` (``n_folds`` also answers to ``--folds``); booleans are switches and label
    lists take ``a,b,c`` or a file."""
    out = []
    hints = typing.get_type_hints(fn)
    for name, p in inspect.signature(fn).parameters.items():
        tp = hints.get(name, str)
        args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        base = args[0]
        if p.default is inspect.Parameter.empty:
            out.append(SourceOption([name]))
            continue
        flags = ["--" + name.replace("_", "-")] + (["--" + name[2:].replace("_", "-")] if name.startswith("n_") else [])
        kw: dict[str, Any] = {"dest": name, "default": p.default}
        if typing.get_origin(base) is typing.Literal:
            kw.update(choices=[str(a) for a in typing.get_args(base)], type=str, help=f"(default: {p.default})")
        elif base is bool:
            kw.update(action="store_true", help="(switch)")
        elif typing.get_origin(base) in (list, tuple, Sequence) or base in (list, Sequence) or \
                typing.get_origin(base) is typing.get_origin(Sequence[str]):
            kw.update(type=parse_label_list, help="comma-separated, or a file with one per line")
        else:
            kw.update(type=base if base in (int, float) else str, help=f"(default: {p.default})")
        out.append(SourceOption(flags, kw))
    return out


def report_path(manifest: str | Path) -> Path:
    """Where the skip report of a manifest lives: ``x.jsonl`` -> ``x.skipped.json``."""
    m = Path(manifest)
    return m.with_name(m.stem + ".skipped.json")


__all__ = ["SOURCES", "SourceOption", "parse_label_list", "source_options", "Candidate", "PrepareResult", "prepare", "prepare_csv", "prepare_dcase2017_task4", "prepare_desed", "prepare_esc50", "prepare_files",
           "prepare_folder", "prepare_fsdd", "prepare_fsdkaggle2018", "prepare_mtt", "prepare_speech_commands", "prepare_urbansound8k", "read_table",
           "report_path", "validate"]
