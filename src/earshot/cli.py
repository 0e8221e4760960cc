"""The ``earshot`` command. Each sub-command calls one library function."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from earshot import __version__
from earshot.errors import EarshotError

EPILOG = """examples:
  earshot quickstart
  earshot prepare folder data/my_sounds -o data/my_sounds.jsonl
  earshot train recipes/fsdd.yaml trainer.max_epochs=10 optim.lr=3e-4
  earshot evaluate runs/fsdd-*/checkpoints/best.ckpt data/fsdd.jsonl --split test
  earshot predict runs/fsdd-*/checkpoints/best.ckpt some.wav more/ --top-k 3
"""


def _console():
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=True)


def _print_summary(title: str, result: Any, out: Path) -> None:
    from earshot.data.manifest import summarize
    from earshot.data.sources import report_path

    s = summarize(result.clips) if result.clips else {"clips": 0, "classes": 0, "hours": 0, "splits": {}}
    c = _console()
    c.print(f"[bold]{title}[/bold]: wrote {out}")
    c.print(f"  clips: {s['clips']}   classes: {s['classes']}   hours: {s['hours']:.3f}   splits: {s['splits']}")
    n = len(result.skipped)
    if getattr(result, "excluded", 0):
        c.print(f"  excluded by option: {result.excluded}")
    c.print(f"  skipped: {n}" + (f"  (report: {report_path(out)})" if n else ""))
    for reason, k in sorted(result.skipped.reasons().items(), key=lambda kv: -kv[1]):
        c.print(f"    {k:5d}  {reason}")
    for item in result.skipped.items[:10]:
        c.print(f"    - {item}")
    if n > 10:
        c.print(f"    ... and {n - 10} more")
    for item in result.skipped.notes[:10]:
        c.print(f"  note: {item}")


def cmd_prepare(a: argparse.Namespace) -> int:
    from earshot.data.sources import prepare

    labels = _labels_arg(a.labels) if getattr(a, "labels", None) else None
    common = {"strict": a.strict}
    if a.source == "folder":
        res = prepare("folder", a.output, root=a.root, val_fraction=a.val_fraction, test_fraction=a.test_fraction,
                      seed=a.seed, labels=labels, keep_silent=a.keep_silent, **common)
    elif a.source == "csv":
        res = prepare("csv", a.output, csv_path=a.csv, audio_dir=a.audio_dir, labels=labels, path_col=a.path_col,
                      label_col=a.label_col, label_sep=a.label_sep, keep_silent=a.keep_silent, **common)
    elif a.source == "files":
        res = prepare("files", a.output, root=a.root, pattern=a.pattern, n_folds=a.folds, seed=a.seed, **common)
    elif a.source == "esc50":
        res = prepare("esc50", a.output, root=a.root, esc10=a.esc10, **common)
    elif a.source == "fsdkaggle2018":
        res = prepare("fsdkaggle2018", a.output, root=a.root, verified_only=a.verified_only,
                      unverified_weight=a.unverified_weight, holdout_fold=a.holdout_fold or None,
                      n_folds=a.folds, **common)
    else:
        res = prepare(a.source, a.output, root=a.root, **common)
    _print_summary(f"prepare {a.source}", res, Path(a.output))
    return 0


def _labels_arg(value: str) -> list[str]:
    p = Path(value)
    if p.exists():
        return [x.strip() for x in p.read_text().splitlines() if x.strip()]
    return [x.strip() for x in value.split(",") if x.strip()]


def _report_run(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    c = _console()
    c.print(f"\n[bold]done[/bold] in {summary['train_seconds']:.0f} s; evaluated on the {summary['split']} split "
            f"({metrics['n_clips']} clips)")
    keys = ["accuracy", "balanced_accuracy", "top3_accuracy", "map@3"]
    c.print("  " + "   ".join(f"{k}: {metrics[k]:.4f}" for k in keys if k in metrics))
    if summary["skipped"]:
        c.print(f"  skipped {summary['skipped']} clip(s): see {run / 'skipped.json'}")
    c.print(f"  run folder: [bold]{run}[/bold]")
    c.print(f"  checkpoint: {run / 'checkpoints' / 'best.ckpt'}")
    c.print(f"  try:        earshot predict {run / 'checkpoints' / 'best.ckpt'} FILE.wav")


def cmd_train(a: argparse.Namespace) -> int:
    from earshot.config import load_config
    from earshot.training.run import train

    if a.resume:
        run = train(load_config(), resume=a.resume)
    else:
        if a.recipe is None:
            raise EarshotError("train needs a RECIPE.yaml (or --resume RUN_DIR)")
        recipe, overrides = _recipe_and_overrides(a)
        run = train(load_config(recipe, overrides))
    _report_run(run)
    return 0


def cmd_quickstart(a: argparse.Namespace) -> int:
    from earshot.quickstart import run_quickstart

    c = _console()
    c.print(f"[bold]earshot quickstart[/bold]: built-in synthetic dataset (6 classes) -> log-mel CNN, in {a.workdir}")
    run = run_quickstart(a.workdir, overrides=a.overrides)
    _report_run(run)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from earshot.inference.evaluation import evaluate_checkpoint

    out = Path(a.out) if a.out else Path(a.checkpoint).resolve().parent.parent / f"eval-{Path(a.manifest).stem}"
    rep = evaluate_checkpoint(a.checkpoint, a.manifest, a.split, out, a.device)
    c = _console()
    c.print(f"[bold]evaluate[/bold] {a.checkpoint} on {a.manifest}" + (f" (split {a.split})" if a.split else ""))
    c.print(f"  clips: {rep['n_clips']}   skipped: {rep['skipped']}")
    for k in ["accuracy", "balanced_accuracy", "top3_accuracy", "map@3", "top5_accuracy", "map@5"]:
        if k in rep:
            c.print(f"  {k:18s} {rep[k]:.4f}")
    worst = sorted(((v, k) for k, v in rep["per_class_accuracy"].items() if v is not None))[:5]
    c.print("  lowest classes: " + ", ".join(f"{k} {v:.2f}" for v, k in worst))
    c.print(f"  wrote {out}/metrics.json, class_accuracy.png, confusion_matrix.png")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from earshot.errors import AudioError
    from earshot.inference.predictor import Predictor, list_audio

    pred = Predictor.load(a.checkpoint, a.device)
    files = list_audio(a.inputs)
    if not files:
        raise EarshotError(f"no audio files found in {a.inputs}")
    out = open(a.output, "w", newline="") if a.output else sys.stdout
    err = sys.stderr
    rows, failed = [], 0
    writer = csv.writer(out) if a.format == "csv" else None
    if writer:
        writer.writerow(["file"] + [f"{kind}{i + 1}" for i in range(a.top_k) for kind in ("label", "score")])
    for r in pred.predict_files(files, a.top_k):
        if isinstance(r, AudioError):
            failed += 1
            print(f"error: {r}", file=err)
            continue
        for note in r.notes:
            print(f"note: {r.source}: {note} (the model expects {pred.sample_rate} Hz mono)", file=err)
        if writer:
            writer.writerow([r.source] + [x for lab, s in r.top for x in (lab, f"{s:.4f}")])
        elif a.format == "json":
            rows.append(r.to_dict())
        else:
            print(f"{r.source}\t" + "  ".join(f"{lab} ({s:.3f})" for lab, s in r.top), file=out)
    if a.format == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    if a.output:
        out.close()
        print(f"wrote {a.output}", file=err)
    if failed:
        print(f"{failed} of {len(files)} file(s) could not be read", file=err)
    return 1 if failed == len(files) else 0


def _recipe_and_overrides(a: argparse.Namespace) -> tuple[str | None, list[str]]:
    if a.recipe is not None and "=" in a.recipe and not a.recipe.endswith((".yaml", ".yml")):
        return None, [a.recipe, *a.overrides]
    return a.recipe, list(a.overrides)


def cmd_cv(a: argparse.Namespace) -> int:
    from earshot.config import load_config
    from earshot.training.cv import cross_validate

    recipe, overrides = _recipe_and_overrides(a)
    folds_arg = [o for o in overrides if o.startswith("folds=")]
    overrides = [o for o in overrides if not o.startswith("folds=")]
    if not folds_arg:
        raise EarshotError("cv needs folds=1,2,3,4,5 (the folds to hold out in turn)")
    folds = [int(f) for f in folds_arg[-1].split("=", 1)[1].strip("[]").split(",") if f.strip()]
    s = cross_validate(load_config(recipe, overrides), folds)
    c = _console()
    c.print(f"\n[bold]{len(folds)}-fold cross-validation[/bold] ({s['train_seconds']:.0f} s of training)")
    for r in s["folds"]:
        c.print(f"  fold {r['fold']}: accuracy {r['accuracy']:.4f}   {r['run']}")
    for k in ("accuracy", "balanced_accuracy", "map@3", "mAP"):
        if k in s:
            c.print(f"  {k:18s} {s[k]['mean']:.4f} ± {s[k]['std']:.4f}")
    c.print(f"  summary: {s['summary_file']}")
    return 0


def cmd_submit(a: argparse.Namespace) -> int:
    from earshot.inference.submission import kaggle_submission

    sample = a.sample_submission or str(Path(a.audio_dir).parent / "sample_submission.csv")
    r = kaggle_submission(a.checkpoint, a.audio_dir, sample, a.output, a.top_k, a.device)
    print(f"wrote {r['file']}: {r['rows']} rows in the order of {sample}")
    for e in r["failed"]:
        print(f"error: {e} (row filled with the most frequent predictions: {r['fallback']})", file=sys.stderr)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from earshot.report.html import build_report

    print(f"wrote {build_report(a.run_dir, a.output, a.wrong)}")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from earshot.models.registry import count_parameters, create_model, list_models, model_spec

    rows = [("name", "params", "input", "rate", "front-end", "description")]
    for name in list_models():
        spec = model_spec(name)
        m = create_model(name, 10)
        fe = m.frontend_config
        rows.append((name, f"{count_parameters(m) / 1e6:.2f}M", spec.input, f"{fe.sample_rate} Hz",
                     f"{fe.n_mels} mels/{fe.n_fft}/{fe.hop_length}", spec.description))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    print("\nparams are counted for 10 classes; front-end is mels/n_fft/hop, overridable with model.frontend.*")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="earshot", description="Train, evaluate and serve audio classifiers.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"earshot {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("quickstart", help="train and evaluate on a built-in synthetic dataset (offline, ~1 min)",
                       description="Generate a six-class synthetic dataset, train a log-mel CNN on it, evaluate it "
                                   "and write a run folder (checkpoint, config, metrics.json, plots).")
    q.add_argument("--workdir", default="earshot-quickstart", help="where data and runs go (default: %(default)s)")
    q.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. trainer.max_epochs=5")
    q.set_defaults(fn=cmd_quickstart)

    pr = sub.add_parser("prepare", help="turn a dataset layout into a validated JSONL manifest",
                        description="Scan a dataset, decode and check every file, and write a JSONL manifest plus "
                                    "a report of skipped files (MANIFEST.skipped.json).")
    psub = pr.add_subparsers(dest="source", metavar="SOURCE", required=True)
    pf = psub.add_parser("folder", help="ROOT/<class>/*.wav (optionally ROOT/{train,val,test}/<class>/)")
    pf.add_argument("root")
    pf.add_argument("--val-fraction", type=float, default=0.1, help="without split folders (default: %(default)s)")
    pf.add_argument("--test-fraction", type=float, default=0.1, help="without split folders (default: %(default)s)")
    pf.add_argument("--seed", type=int, default=0)
    pc = psub.add_parser("csv", help="a CSV with a path column and a label column",
                         description="Columns by header name: path/filename/fname, label/labels/category, and "
                                     "optional split, fold, verified/manually_verified, onset/offset.")
    pc.add_argument("csv")
    pc.add_argument("--audio-dir", help="folder the CSV paths are relative to (default: the CSV's folder)")
    pc.add_argument("--path-col")
    pc.add_argument("--label-col")
    pc.add_argument("--label-sep", default=",", help="separator of several labels in one cell")
    pd = psub.add_parser("fsdd", help="Free Spoken Digit Dataset ({digit}_{speaker}_{index}.wav; index 0-4 = test)")
    pd.add_argument("root")
    pfi = psub.add_parser("files", help="a flat folder whose file names carry the label (e.g. cough168.wav)",
                          description="Label = first regex group on the file name; stratified folds for CV.")
    pfi.add_argument("root")
    pfi.add_argument("--pattern", default=r"^([A-Za-z]+)", help="label regex on the file stem (default: %(default)s)")
    pfi.add_argument("--folds", type=int, default=5)
    pfi.add_argument("--seed", type=int, default=0)
    pe = psub.add_parser("esc50", help="ESC-50: audio/ and meta/esc50.csv, 5 folds")
    pe.add_argument("root")
    pe.add_argument("--esc10", action="store_true", help="only the ESC-10 subset")
    pu = psub.add_parser("urbansound8k", help="UrbanSound8K: audio/fold1..10 and metadata/UrbanSound8K.csv")
    pu.add_argument("root")
    pk = psub.add_parser("fsdkaggle2018", help="FSDKaggle2018 / DCASE 2018 Task 2 (train.csv, audio_train/, ...)",
                         description="Train from train.csv; validation = verified clips of the holdout fold; test "
                                     "from test_post_competition_scoring_clips.csv when present.")
    pk.add_argument("root")
    pk.add_argument("--verified-only", action="store_true", help="train on manually verified clips only")
    pk.add_argument("--unverified-weight", type=float, default=1.0, help="loss weight of unverified clips")
    pk.add_argument("--holdout-fold", type=int, default=1, help="fold held out for validation (0: none)")
    pk.add_argument("--folds", type=int, default=4)
    for sp in (pf, pc):
        sp.add_argument("--labels", help="allowed labels: comma-separated, or a file with one per line")
        sp.add_argument("--keep-silent", action="store_true", help="keep all-silent clips instead of skipping them")
    for sp in (pf, pc, pd, pfi, pe, pu, pk):
        sp.add_argument("-o", "--output", required=True, help="manifest to write (JSONL)")
        sp.add_argument("--strict", action="store_true", help="fail on the first bad file instead of skipping it")
    pr.set_defaults(fn=cmd_prepare)

    t = sub.add_parser("train", help="train from a recipe with key=value overrides",
                       description="Train a model from a YAML recipe; key=value arguments override it, e.g. "
                                   "optim.lr=3e-4 model.name=cnn_small. Writes a run folder with checkpoints, "
                                   "config.yaml, metrics.json and plots.")
    t.add_argument("recipe", nargs="?", help="recipe YAML (see recipes/)")
    t.add_argument("overrides", nargs="*", help="key=value config overrides")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="metrics, class-wise accuracy and confusion matrix of a checkpoint",
                       description="Accuracy, MAP@k, top-k accuracy, per-class accuracy and the confusion matrix, "
                                   "written to JSON with a class-wise accuracy chart and a confusion-matrix PNG.")
    e.add_argument("checkpoint")
    e.add_argument("manifest")
    e.add_argument("--split", help="only clips of this split (default: all)")
    e.add_argument("--out", help="output folder (default: RUN/eval-MANIFEST)")
    e.add_argument("--device")
    e.set_defaults(fn=cmd_evaluate)

    pp = sub.add_parser("predict", help="top-k labels for audio files or folders",
                        description="Predict files of any length, sample rate and channel count: audio is "
                                    "resampled and mixed down to what the checkpoint expects. A bad file gets a "
                                    "one-line error and the others are still predicted.")
    pp.add_argument("checkpoint")
    pp.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    pp.add_argument("--top-k", type=int, default=3)
    pp.add_argument("--format", choices=("table", "csv", "json"), default="table")
    pp.add_argument("-o", "--output", help="write predictions to this file instead of stdout")
    pp.add_argument("--device")
    pp.set_defaults(fn=cmd_predict)

    cv = sub.add_parser("cv", help="k-fold cross-validation: mean and std over folds",
                        description="Train once per fold with that fold as the test split (needs a manifest with "
                                    "folds), then report mean and standard deviation. Example: earshot cv "
                                    "recipes/dcase2016_events.yaml folds=1,2,3,4,5")
    cv.add_argument("recipe", nargs="?")
    cv.add_argument("overrides", nargs="*", help="folds=1,2,3 and key=value config overrides")
    cv.set_defaults(fn=cmd_cv)

    sb = sub.add_parser("submit", help="write a Kaggle submission (fname,label with top-3 labels)",
                        description="Predict every file listed in sample_submission.csv, in its row order, and "
                                    "write fname,label with the top-3 labels separated by spaces.")
    sb.add_argument("checkpoint")
    sb.add_argument("audio_dir")
    sb.add_argument("--format", choices=("kaggle",), default="kaggle")
    sb.add_argument("--sample-submission", help="default: AUDIO_DIR/../sample_submission.csv")
    sb.add_argument("-o", "--output", default="submission.csv")
    sb.add_argument("--top-k", type=int, default=3)
    sb.add_argument("--device")
    sb.set_defaults(fn=cmd_submit)

    rp = sub.add_parser("report", help="one self-contained HTML report of a run",
                        description="Config, data summary, training curves, metrics with per-class accuracy and "
                                    "AP, confusion matrix, and the most confidently wrong clips with log-mel "
                                    "images and audio players; opens in a browser without a server.")
    rp.add_argument("run_dir")
    rp.add_argument("-o", "--output", help="default: RUN_DIR/report.html")
    rp.add_argument("--wrong", type=int, default=8, help="how many wrong clips to show")
    rp.set_defaults(fn=cmd_report)

    m = sub.add_parser("models", help="list registered models", description="List the model registry.")
    m.set_defaults(fn=cmd_models)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "fn", None):
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(message)s")
    try:
        return a.fn(a)
    except EarshotError as e:
        if a.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyError as e:  # unknown model/task names
        if a.verbose:
            raise
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
