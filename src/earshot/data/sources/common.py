"""Shared step of every source: turn candidate rows into validated :class:`Clip` records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from earshot.audio.io import SILENCE_PEAK, probe_audio
from earshot.data.manifest import Clip, Event, SkipReport, duration_notes
from earshot.errors import AudioError, DataError
from earshot.parallel import thread_map


@dataclass
class Candidate:
    """A row a dataset layout proposes, before its audio is checked."""

    path: Path
    labels: list[str]
    split: str | None = None
    fold: int | None = None
    verified: bool | None = None
    weight: float = 1.0
    events: list[Event] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    annotation: str | None = None  # detection: weak, strong or unlabelled
    source: str | None = None  # file that listed it (CSV), for error messages
    line: int | None = None


@dataclass
class PrepareResult:
    """Clips that passed validation and the report of those that did not."""

    clips: list[Clip]
    skipped: SkipReport
    excluded: int = 0  # left out by an option (e.g. verified_only), not for being bad


def clip_id(path: Path) -> str:
    return path.stem


def validate(
    cands: Sequence[Candidate],
    labels: Sequence[str] | None = None,
    strict: bool = False,
    keep_silent: bool = False,
    workers: int = 4,
    skipped: SkipReport | None = None,
) -> PrepareResult:
    """Decode each candidate's audio and keep the good ones.

    A bad file is skipped and reported (its CSV line when known); ``strict`` raises instead.
    ``labels`` restricts the allowed labels; unknown ones are reported.
    """
    report = skipped if skipped is not None else SkipReport()
    known = set(labels) if labels is not None else None

    def check(c: Candidate) -> Clip | tuple[str, str, int | None]:
        where = c.source or c.path
        if known is not None:
            bad = [lab for lab in c.labels + [e.label for e in c.events] if lab not in known]
            if bad:
                return (str(where), f"unknown label(s) {bad}", c.line)
        try:
            info = probe_audio(c.path, decode=True)
        except AudioError as e:
            ref = f"{c.path}" if c.source is None else f"{c.path} (listed in {c.source})"
            return (ref, e.reason, c.line)
        if info.peak is not None and info.peak < SILENCE_PEAK and not keep_silent:
            return (str(c.path), "all-silent clip (peak below -100 dBFS)", c.line)
        return Clip(
            id=clip_id(c.path), path=str(c.path.resolve()), duration=round(info.duration, 6),
            sample_rate=info.sample_rate, channels=info.channels, labels=list(c.labels),
            split=c.split, fold=c.fold, verified=c.verified, weight=c.weight, events=list(c.events),
            extra=dict(c.extra), annotation=c.annotation,
        )

    results = thread_map(check, cands, workers)
    clips = []
    for r in results:
        if isinstance(r, Clip):
            clips.append(r)
        else:
            report.add(*r)
    if strict and len(report):
        first = report.items[0]
        raise DataError(first.path, f"{first.reason} (and {len(report) - 1} more; --strict is set)", first.line)
    duration_notes(clips, report)
    ids: dict[str, int] = {}
    for c in clips:  # ids must be unique; disambiguate same-named files in different folders
        if c.id in ids:
            c.id = f"{c.id}-{hashlib.sha1(c.path.encode()).hexdigest()[:8]}"
        ids[c.id] = 1
    return PrepareResult(clips, report)


def stable_fraction(key: str, seed: int = 0) -> float:
    """A number in [0, 1) fixed by ``key``: assignments survive reordering and added files."""
    h = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def stratified_folds(keys_by_label: dict[str, list[str]], n_folds: int, seed: int = 0) -> dict[str, int]:
    """Folds 1..n_folds, each class spread evenly: sort a class's keys by a stable hash, deal round-robin."""
    out: dict[str, int] = {}
    for label in sorted(keys_by_label):
        keys = sorted(keys_by_label[label], key=lambda k: stable_fraction(k, seed))
        for i, k in enumerate(keys):
            out[k] = 1 + i % n_folds
    return out
