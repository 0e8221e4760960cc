"""FSDKaggle2018 / DCASE 2018 Task 2 in its published layout.

``audio_train/`` with ``train.csv`` (fname,label,manually_verified); ``audio_test/`` with
``test_post_competition_scoring_clips.csv`` (fname,label,usage); ``sample_submission.csv``.
Options: keep verified clips only, or weight unverified ones; hold out one of ``n_folds``
stratified folds of the verified training clips as validation, as in the seed.
"""

from __future__ import annotations

from pathlib import Path

from earshot.data.sources.common import PrepareResult, stratified_folds, validate
from earshot.data.sources.csv_table import read_table
from earshot.errors import DataError

TEST_CSV = "test_post_competition_scoring_clips.csv"


def prepare_fsdkaggle2018(root: str | Path, verified_only: bool = False, unverified_weight: float = 1.0,
                          holdout_fold: int | None = 1, n_folds: int = 4, seed: int = 0,
                          strict: bool = False) -> PrepareResult:
    """Train (and val = verified clips of ``holdout_fold``) from train.csv; test from the scoring csv."""
    root = Path(root)
    train_csv = root / "train.csv"
    if not train_csv.exists():
        raise DataError(train_csv, "FSDKaggle2018 train.csv not found")
    train, report = read_table(train_csv, root / "audio_train", path_col="fname", label_col="label", label_sep="\0")
    for c in train:
        if c.verified is None:
            report.add(train_csv, "manually_verified is empty", c.line)
    train = [c for c in train if c.verified is not None]
    excluded = 0
    if verified_only:
        excluded = sum(not c.verified for c in train)
        train = [c for c in train if c.verified]
    for c in train:
        c.split = "train"
        if not c.verified:
            c.weight = unverified_weight
    if holdout_fold is not None:
        by_label: dict[str, list[str]] = {}
        for c in train:
            if c.verified:
                by_label.setdefault(c.labels[0], []).append(c.path.name)
        folds = stratified_folds(by_label, n_folds, seed)
        for c in train:
            if c.verified:
                c.fold = folds[c.path.name]
                if c.fold == holdout_fold:
                    c.split = "val"
    labels = {c.labels[0] for c in train}
    test: list = []
    test_csv = root / TEST_CSV
    if test_csv.exists():
        test, report = read_table(test_csv, root / "audio_test", path_col="fname", label_col="label",
                                  label_sep="\0", skipped=report)
        kept = []
        for c in test:
            if c.labels and c.labels[0] not in labels:
                report.add(test_csv, f"test label {c.labels[0]!r} is absent from the training labels", c.line)
                continue
            c.split = "test"
            kept.append(c)
        test = kept
    res = validate(train + test, strict=strict, skipped=report)
    res.excluded = excluded
    return res
