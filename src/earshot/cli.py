"""The ``earshot`` command. Each sub-command calls one library function."""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from earshot import __version__
from earshot.errors import EarshotError
from earshot.memory import keep_large_blocks

PRECISIONS = ("auto", "fp32", "bf16")
OUTSIDE_ROOT_HELP = "read clips outside the dataset root the manifest's header names (skipped otherwise)"
PRECISION_HELP = ("the network's arithmetic: auto (default) runs bf16 on CPUs that have it natively (AMX or "
                  "AVX-512-BF16: 2-3.5x faster, same accuracy in benchmarks/RESULTS.md), fp32 elsewhere, GPUs "
                  "included (bf16 was slower there for these models); the log-mel front-end stays float32")

EPILOG = """examples:
  earshot quickstart
  earshot prepare folder data/my_sounds -o data/my_sounds.jsonl
  earshot train recipes/fsdd.yaml trainer.max_epochs=10 optim.lr=3e-4
  earshot evaluate runs/fsdd-*/checkpoints/best.ckpt data/fsdd.jsonl --split test
  earshot predict runs/fsdd-*/checkpoints/best.ckpt some.wav more/ --top-k 3
  earshot detect runs/office-sed-*/checkpoints/best.ckpt scene.wav -o events.tsv
"""


def _print(lines: Sequence[str], file: Any = None) -> None:
    for line in lines:
        print(line, file=file or sys.stdout)


def cmd_prepare(a: argparse.Namespace) -> int:
    from earshot.data.sources import SOURCES, prepare, report_path
    from earshot.report.console import prepare_lines

    params = inspect.signature(SOURCES[a.source]).parameters
    res = prepare(a.source, a.output, **{k: getattr(a, k) for k in params if hasattr(a, k)})
    _print(prepare_lines(f"prepare {a.source}", res, Path(a.output), report_path(a.output)))
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from earshot.config import load_config
    from earshot.distributed import is_rank_zero
    from earshot.report.console import run_lines
    from earshot.training.run import train

    if a.resume:
        run = train(load_config(), resume=a.resume)
    else:
        if a.recipe is None:
            raise EarshotError("train needs a RECIPE.yaml (or --resume RUN_DIR)")
        run = train(load_config(*_recipe_and_overrides(a)))
    if is_rank_zero():  # under DDP the other ranks have nothing to say
        _print(run_lines(run))
    return 0


def cmd_quickstart(a: argparse.Namespace) -> int:
    from earshot.quickstart import run_quickstart
    from earshot.report.console import run_lines

    print(f"earshot quickstart: built-in synthetic dataset (6 classes) -> log-mel CNN, in {a.workdir}")
    _print(run_lines(run_quickstart(a.workdir, overrides=a.overrides)))
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from earshot.inference.evaluation import evaluate_checkpoint
    from earshot.report.console import evaluation_lines

    out = Path(a.out) if a.out else Path(a.checkpoint).resolve().parent.parent / f"eval-{Path(a.manifest).stem}"
    rep = evaluate_checkpoint(a.checkpoint, a.manifest, a.split, out, a.device, a.precision,
                              a.allow_outside_root, a.hop)
    _print(evaluation_lines(rep, a.checkpoint, a.manifest, a.split))
    return 0


def _load_for(a: argparse.Namespace, verb: str) -> Any:
    """The predictor for ``--backend`` (a checkpoint in PyTorch, or an exported .onnx), checked to
    make ``verb``'s outputs (naming the right verb for another task's model)."""
    if getattr(a, "backend", "torch") == "onnx" or str(a.checkpoint).endswith(".onnx"):
        from earshot.inference.onnx_backend import OnnxPredictor

        pred: Any = OnnxPredictor(a.checkpoint)
    else:
        from earshot.inference.predictor import Predictor

        pred = Predictor.load(a.checkpoint, a.device, a.precision)
    if pred.task.verb != verb:
        raise EarshotError(f"{a.checkpoint} is a {pred.task.name} model: use `earshot {pred.task.verb} "
                           f"{a.checkpoint} FILES` for its outputs")
    return pred


def _run_over_files(a: argparse.Namespace, verb: str, write: Any) -> int:
    """Load the model for ``verb``, expand the inputs, and stream ``write(predictor, files, out)``
    to ``--output`` or stdout."""
    from earshot.audio.io import list_audio

    pred = _load_for(a, verb)
    files = list_audio(a.inputs)
    if not files:
        raise EarshotError(f"no audio files found in {a.inputs}")
    out = open(a.output, "w", newline="") if a.output else sys.stdout
    try:
        failed = write(pred, files, out)
    finally:
        if a.output:
            out.close()
    if a.output:
        print(f"wrote {a.output}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(files)} file(s) could not be read", file=sys.stderr)
    return 1 if failed == len(files) else 0


def cmd_predict(a: argparse.Namespace) -> int:
    from earshot.inference.writers import write_predictions_stream, write_windows_stream

    if a.window is not None or a.hop is not None:  # per-window scores with start and end times
        return _run_over_files(a, "predict", lambda pred, files, out: write_windows_stream(
            pred.window_files(files, a.window, a.hop), out, a.format, pred, sys.stderr, a.top_k))
    return _run_over_files(a, "predict", lambda pred, files, out: write_predictions_stream(
        pred.predict_files(files, a.top_k), out, a.format, pred, sys.stderr, a.top_k))


def cmd_detect(a: argparse.Namespace) -> int:
    from earshot.inference.writers import write_detections_stream

    return _run_over_files(a, "detect", lambda pred, files, out: write_detections_stream(
        pred.detect_files(files, a.window, a.hop), out, a.format, pred, sys.stderr))


def cmd_synthesize(a: argparse.Namespace) -> int:
    from earshot.data.manifest import read_manifest
    from earshot.data.soundscapes import SceneSpec, synthesize

    def floats(v: str) -> tuple[float, ...]:
        try:
            return tuple(float(x) for x in v.split(",") if x.strip())
        except ValueError:
            raise EarshotError(f"expected comma-separated numbers, got {v!r}") from None

    rate = floats(a.events_per_minute)
    spec = SceneSpec(n_clips=a.n_clips, clip_seconds=a.clip_seconds, sample_rate=a.sample_rate, ebr_db=floats(a.ebr),
                     events_per_minute=(rate[0], rate[-1]), polyphony=a.polyphony, loop_backgrounds=a.loop_backgrounds,
                     prefix=a.prefix, split=a.split, seed=a.seed)
    manifest = synthesize(a.foreground_dir, a.background_dir, a.out, spec)
    clips = read_manifest(manifest)
    n_events = sum(len(c.events) for c in clips)
    print(f"wrote {len(clips)} scenes ({n_events} events) to {a.out}: audio/, strong.tsv, weak.tsv, {manifest.name}")
    return 0


def _recipe_and_overrides(a: argparse.Namespace) -> tuple[str | None, list[str]]:
    if a.recipe is not None and "=" in a.recipe and not a.recipe.endswith((".yaml", ".yml")):
        return None, [a.recipe, *a.overrides]
    return a.recipe, list(a.overrides)


def cmd_cv(a: argparse.Namespace) -> int:
    from earshot.config import load_config
    from earshot.report.console import cv_lines
    from earshot.training.cv import cross_validate, parse_folds

    recipe, overrides = _recipe_and_overrides(a)
    folds, overrides = parse_folds(overrides)
    summary = cross_validate(load_config(recipe, overrides), folds)
    if summary:  # empty on ranks other than zero under DDP
        _print(cv_lines(summary))
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
    from earshot.models.profile import registry_table

    _print(registry_table())
    return 0


def cmd_baseline(a: argparse.Namespace) -> int:
    from earshot.config import load_config
    from earshot.report.console import metric_lines
    from earshot.training.baseline import baseline_for_config

    rep = baseline_for_config(load_config(*_recipe_and_overrides(a)))
    _print([f"baseline (log-mel statistics + logistic regression) on the {rep['split']} split: "
            f"{rep['n_clips']} clips, trained on {rep['n_train']} in {rep['wall_seconds']:.1f} s",
            *metric_lines(rep)] + ([f"  skipped {rep['skipped']} clip(s)"] if rep["skipped"] else []))
    return 0


def cmd_cache(a: argparse.Namespace) -> int:
    from earshot.data.sharding import build_cache, parse_shard

    rate = a.sample_rate
    if a.recipe:
        from earshot.config import load_config
        from earshot.models.registry import create_model

        cfg = load_config(a.recipe)
        rate = create_model(cfg.model.name, 2, frontend=cfg.model.frontend, **cfg.model.args).sample_rate
    r = build_cache(a.manifest, a.out, rate, parse_shard(a.shard), a.workers, a.allow_outside_root)
    print(f"shard {r['shard']}: {r['clips']} clips, {r['decoded']} decoded ({r['clips_per_second']:.0f}/s), "
          f"{r['already_cached']} already cached, {r['skipped']} skipped ({r['skip_report']}); "
          f"{r['audio_hours']:.2f} h of audio at {rate} Hz in {r['cache']}")
    print(f"  train with: data.audio_cache={a.out}")
    return 0


def cmd_merge_cache(a: argparse.Namespace) -> int:
    from earshot.data.sharding import merge_caches

    r = merge_caches(a.parts, a.out)
    print(f"merged {r['parts']} parts into {r['cache']}: {r['copied']} entries copied, {r['already_there']} "
          f"already there, {len(r['damaged'])} damaged and left out")
    for f in r["damaged"]:
        print(f"  damaged: {f} (run `earshot cache` for its shard again)")
    return 0 if not r["damaged"] else 1


def cmd_embed(a: argparse.Namespace) -> int:
    from earshot.inference.embed import embed_manifest

    r = embed_manifest(a.source, a.manifest, a.output, a.pretrained, a.window_seconds, a.split,
                       a.allow_outside_root)
    print(f"embedded {r['n_clips']} clips ({r['audio_seconds'] / 3600:.2f} h of audio, {r['dim']}-d frames) in "
          f"{r['wall_seconds']:.1f} s: {r['seconds_per_audio_hour']:.0f} s per hour of audio; skipped {r['skipped']}")
    print(f"  cache: {r['cache']}\n  try:   earshot train-head {r['cache']} -o HEAD_DIR")
    return 0


def cmd_train_head(a: argparse.Namespace) -> int:
    from earshot.report.console import metric_lines
    from earshot.training.heads import HeadConfig, cross_validate_head, train_head

    head = {"attention": {"type": "frame", "pool": "attention"}, "linear": {"type": "clip", "pool": "mean"},
            "mlp": {"type": "clip", "pool": "max|mean", "hidden": 256, "dropout": 0.3}}[a.head]
    cfg = HeadConfig(task=a.task, head=head, epochs=a.epochs, lr=a.lr)
    if a.folds:
        s = cross_validate_head(a.cache, a.output, [int(f) for f in a.folds.split(",")], cfg)
        _print([f"{len(s['folds'])}-fold cross-validation of a {a.head} head ({s['fit_seconds']:.1f} s)"] +
               [f"  {k:18s} {s[k]['mean']:.4f} ± {s[k]['std']:.4f}" for k in s["headline"] if k in s])
        return 0
    r = train_head(a.cache, a.output, cfg)
    _print([f"{a.head} head on {r['n_train']} clips in {r['fit_seconds']:.1f} s; {r['split']} split "
            f"({r['n_clips']} clips):", *metric_lines(r), f"  checkpoint: {r['checkpoint']}"])
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    try:
        from earshot.serve.app import ServeLimits, serve
    except ImportError as e:
        raise EarshotError(f"earshot serve needs the [serve] extra: pip install -e \".[serve]\" ({e})") from None

    serve(a.checkpoint, a.host, a.port, ServeLimits(a.max_upload_mb, a.max_seconds, a.body_timeout), a.precision)
    return 0


def cmd_client(a: argparse.Namespace) -> int:
    from earshot.serve.client import post_files, table

    reply = post_files(a.url, a.files)
    _print(table(reply))
    return 0 if reply["status"] == 200 else 1


def cmd_export(a: argparse.Namespace) -> int:
    from earshot.inference.export import export_onnx

    out = a.output or str(Path(a.checkpoint).with_suffix(".onnx"))
    print(f"wrote {export_onnx(a.checkpoint, out)} (front-end included; labels, task and settings in its metadata)")
    return 0


def cmd_download(a: argparse.Namespace) -> int:
    from earshot.models.weights import WEIGHTS, download

    if a.list or not a.names:
        _print([f"{n:20s} {w.filename:28s} {w.checksum:44s} {w.source}" for n, w in sorted(WEIGHTS.items())])
        return 0
    for name in a.names:
        print(f"{name}: {download(name, a.cache)}")
    return 0


def _add_source_parsers(psub: Any) -> None:
    """One sub-command per dataset source, its options read from the source function's signature."""
    from earshot.data.sources import SOURCES, source_options

    for name, fn in SOURCES.items():
        doc = (fn.__doc__ or "").strip()
        sp = psub.add_parser(name, help=doc.splitlines()[0] if doc else name, description=doc)
        for opt in source_options(fn):
            sp.add_argument(*opt.flags, **opt.kwargs)
        sp.add_argument("-o", "--output", required=True, help="manifest to write (JSONL)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="earshot", description="Train, evaluate and serve audio classifiers.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"earshot {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_training_commands(sub)
    _add_cache_commands(sub)
    _add_small_data_commands(sub)
    _add_inference_commands(sub)
    m = sub.add_parser("models", help="list registered models", description="List the model registry.")
    m.set_defaults(fn=cmd_models)
    _add_serving_commands(sub)
    d = sub.add_parser("download", help="fetch published checkpoints (PANNs, VGGish) into the cache, checksum-verified",
                       description="Download published checkpoints with pooch into the cache folder ($EARSHOT_CACHE, "
                                   "else the per-user cache). Interrupted downloads resume; a file that fails its "
                                   "checksum is deleted. Then use model.pretrained=NAME.")
    d.add_argument("names", nargs="*", help="e.g. panns_cnn14 vggish; none: list what is known")
    d.add_argument("--cache", help="folder to download into (default: $EARSHOT_CACHE or the user cache)")
    d.add_argument("--list", action="store_true", help="list the known checkpoints, their files and checksums")
    d.set_defaults(fn=cmd_download)
    return p


def _add_serving_commands(sub: Any) -> None:
    """serve, client, export."""
    sv = sub.add_parser("serve", help="an HTTP service for a checkpoint (SageMaker contract, /v1 API, /docs)",
                        description="Serve a checkpoint over HTTP with FastAPI: GET /ping, POST /invocations (raw "
                                    "audio bytes, SageMaker's contract), POST /v1/predict and /v1/detect (multipart "
                                    "files), GET /v1/model; a page to try the model at / and OpenAPI docs at /docs. Bad uploads get "
                                    "413/415/422.")
    sv.add_argument("checkpoint")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--max-upload-mb", type=float, default=20.0)
    sv.add_argument("--max-seconds", type=float, default=600.0, help="longest audio accepted per file")
    sv.add_argument("--body-timeout", type=float, default=30.0, help="seconds a request body may take to arrive")
    sv.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    sv.set_defaults(fn=cmd_serve)
    cl = sub.add_parser("client", help="post files to a running `earshot serve` and print its predictions",
                        description="The local tester: posts FILES to URL (/v1/predict or /v1/detect, whichever "
                                    "the served checkpoint answers) and prints one line per file.")
    cl.add_argument("url", help="e.g. http://127.0.0.1:8080")
    cl.add_argument("files", nargs="+")
    cl.set_defaults(fn=cmd_client)
    ex = sub.add_parser("export", help="the model, front-end included, as ONNX (waveform in, probabilities out)",
                        description="Export a checkpoint to ONNX: input a mono waveform (batch, samples) at the "
                                    "model's rate, both dynamic; outputs probabilities (and frame probabilities for "
                                    "detection); labels, task state and front-end settings in the metadata.")
    ex.add_argument("checkpoint")
    ex.add_argument("--format", choices=["onnx"], default="onnx")
    ex.add_argument("-o", "--output", help="default: CHECKPOINT with .onnx")
    ex.set_defaults(fn=cmd_export)


def _add_cache_commands(sub: Any) -> None:
    """cache, merge-cache."""
    ca = sub.add_parser("cache", help="decode and resample a manifest's clips (or one shard of them) into the audio "
                                      "cache that training reads",
                        description="Decode every clip once, resampled to the model's rate, into DIR (train with "
                                    "data.audio_cache=DIR). --shard i/n takes the clips of shard i of n, fixed by a "
                                    "hash of each clip's id, so n machines can each build a part; they write into one "
                                    "shared DIR, or into their own folders joined by `earshot merge-cache`.")
    ca.add_argument("manifest")
    ca.add_argument("--out", required=True, help="the cache folder")
    ca.add_argument("--sample-rate", type=int, default=16000, help="the model's rate (default: %(default)s)")
    ca.add_argument("--recipe", help="take the sample rate from this recipe's model instead")
    ca.add_argument("--shard", default="1/1", help="i/n: this machine's shard (default: all clips)")
    ca.add_argument("--workers", type=int, default=2, help="decoding threads")
    ca.add_argument("--allow-outside-root", action="store_true", help=OUTSIDE_ROOT_HELP)
    ca.set_defaults(fn=cmd_cache)
    mc = sub.add_parser("merge-cache", help="join audio-cache folders built shard by shard",
                        description="Copy the entries of cache folders built by `earshot cache --shard` into one, "
                                    "checking each entry's content hash; damaged entries are named and left out.")
    mc.add_argument("parts", nargs="+")
    mc.add_argument("--out", required=True)
    mc.set_defaults(fn=cmd_merge_cache)


def _add_training_commands(sub: Any) -> None:
    """quickstart, prepare, synthesize, train, cv."""
    q = sub.add_parser("quickstart", help="train and evaluate on a built-in synthetic dataset (offline, ~2 min)",
                       description="Generate a six-class synthetic dataset, train a log-mel CNN on it, evaluate it "
                                   "and write a run folder (checkpoint, config, metrics.json, plots).")
    q.add_argument("--workdir", default="earshot-quickstart", help="where data and runs go (default: %(default)s)")
    q.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. trainer.max_epochs=5")
    q.set_defaults(fn=cmd_quickstart)

    pr = sub.add_parser("prepare", help="turn a dataset layout into a validated JSONL manifest",
                        description="Scan a dataset, decode and check every file, and write a JSONL manifest plus "
                                    "a report of skipped files (MANIFEST.skipped.json).")
    psub = pr.add_subparsers(dest="source", metavar="SOURCE", required=True)
    _add_source_parsers(psub)
    pr.set_defaults(fn=cmd_prepare)

    sy = sub.add_parser("synthesize", help="soundscapes with strong labels from isolated events and backgrounds",
                        description="Place events from FOREGROUND_DIR/<class>/*.wav at random onsets over crops of "
                                    "BACKGROUND_DIR/* recordings, each at an event-to-background ratio, and write the "
                                    "audio, a strong-label TSV, a weak-label TSV and a manifest. The same seed gives "
                                    "the same output.")
    sy.add_argument("foreground_dir")
    sy.add_argument("background_dir")
    sy.add_argument("--out", required=True, help="output folder")
    sy.add_argument("--n-clips", type=int, default=100)
    sy.add_argument("--clip-seconds", type=float, default=10.0)
    sy.add_argument("--sample-rate", type=int, default=16000)
    sy.add_argument("--ebr", default="-6,0,6", help="event-to-background ratios in dB; each event draws one (write --ebr=-6,0,6: a leading minus needs the =)")
    sy.add_argument("--events-per-minute", default="5.5,27.5", help="LOW,HIGH: each scene draws a rate")
    sy.add_argument("--polyphony", choices=("mono", "poly", "both"), default="both")
    sy.add_argument("--loop-backgrounds", action="store_true", help="loop a background shorter than a clip")
    sy.add_argument("--prefix", default="scene", help="file name prefix")
    sy.add_argument("--split", help="split written into the manifest (e.g. train)")
    sy.add_argument("--seed", type=int, default=0)
    sy.set_defaults(fn=cmd_synthesize)

    t = sub.add_parser("train", help="train from a recipe with key=value overrides",
                       description="Train a model from a YAML recipe; key=value arguments override it, e.g. "
                                   "optim.lr=3e-4 model.name=cnn_small. Writes a run folder with checkpoints, "
                                   "config.yaml, metrics.json and plots.")
    t.add_argument("recipe", nargs="?", help="recipe YAML (see recipes/)")
    t.add_argument("overrides", nargs="*", help="key=value config overrides")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    t.set_defaults(fn=cmd_train)

    cv = sub.add_parser("cv", help="k-fold cross-validation: mean and std over folds",
                        description="Train once per fold with that fold as the test split (needs a manifest with "
                                    "folds), then report mean and standard deviation. Example: earshot cv "
                                    "recipes/dcase2016_events.yaml folds=1,2,3,4,5")
    cv.add_argument("recipe", nargs="?")
    cv.add_argument("overrides", nargs="*", help="folds=1,2,3 and key=value config overrides")
    cv.set_defaults(fn=cmd_cv)


def _add_small_data_commands(sub: Any) -> None:
    """The classical baseline, frozen embeddings and heads trained on them."""
    bl = sub.add_parser("baseline", help="the log-mel statistics + logistic regression baseline on a recipe's data",
                        description="Per-band log-mel statistics (mean, std, max, std of deltas) and a logistic "
                                    "regression, trained in seconds on the recipe's training (+ validation) clips and "
                                    "scored on its test split with the task's metrics: the figure a model must beat. "
                                    "Example: earshot baseline data.manifest=clips.jsonl")
    bl.add_argument("recipe", nargs="?")
    bl.add_argument("overrides", nargs="*", help="key=value config overrides")
    bl.set_defaults(fn=cmd_baseline)
    em = sub.add_parser("embed", help="frozen embeddings of a manifest's clips (a checkpoint's or a pretrained "
                                      "backbone's) into an HDF5 cache",
                        description="Run a backbone once over every clip: frame embeddings per clip and clip-level "
                                    "means, with the manifest's labels, splits and folds. SOURCE is an earshot "
                                    "checkpoint or a registered model (e.g. panns_cnn14 --pretrained panns_cnn14). "
                                    "Then earshot train-head CACHE trains a head in seconds.")
    em.add_argument("source")
    em.add_argument("manifest")
    em.add_argument("-o", "--output", required=True, help="the cache to write (.h5)")
    em.add_argument("--pretrained", help="weights for a registered model: a file or a downloaded name")
    em.add_argument("--window-seconds", type=float, help="clips are read in windows this long (default: the "
                                                         "checkpoint's inference window, else 10 s)")
    em.add_argument("--split", help="only this split")
    em.add_argument("--allow-outside-root", action="store_true", help=OUTSIDE_ROOT_HELP)
    em.set_defaults(fn=cmd_embed)
    th = sub.add_parser("train-head", help="train a head on an embedding cache (seconds); writes a checkpoint",
                        description="Train an attention-pooling (seed 003), linear or MLP head on the frozen "
                                    "embeddings of `earshot embed`, with validation-picked epoch and temperature, "
                                    "scored on the test split (or cross-validated over folds). The checkpoint holds "
                                    "the source backbone and the new head: predict, evaluate and serve use it.")
    th.add_argument("cache")
    th.add_argument("-o", "--output", required=True, help="folder for best.ckpt and metrics.json")
    th.add_argument("--head", choices=["attention", "linear", "mlp"], default="attention")
    th.add_argument("--task", choices=["classification", "tagging"], default="classification")
    th.add_argument("--epochs", type=int, default=60)
    th.add_argument("--lr", type=float, default=3e-3)
    th.add_argument("--folds", help="cross-validate: e.g. 1,2,3,4,5 (each fold the test split once)")
    th.set_defaults(fn=cmd_train_head)


def _add_backend_args(p: Any, window_help: str) -> None:
    """--device, --backend, --window and --hop of predict and detect."""
    p.add_argument("--device", help="torch device (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                   help="onnx: CHECKPOINT is a model from `earshot export`, run on ONNX Runtime without torch "
                        "(a .onnx path picks it too)")
    p.add_argument("--window", type=float, metavar="SECONDS", help=f"window length; {window_help} "
                                                                   "(default: the model's own window)")
    p.add_argument("--hop", type=float, metavar="SECONDS", help="seconds between window starts (default: the "
                                                                "window, or the model's hop)")


def _add_evaluate_command(sub: Any) -> None:
    """evaluate."""
    e = sub.add_parser("evaluate", help="the task's metrics and plots for a checkpoint on a manifest",
                       description="The task's metrics (accuracy, MAP@k and a confusion matrix for a classifier; "
                                   "ROC-AUC, mAP, F1 and per-class AUC and AP for a tagger), written to JSON "
                                   "with the task's plots.")
    e.add_argument("checkpoint")
    e.add_argument("manifest")
    e.add_argument("--split", help="only clips of this split (default: all)")
    e.add_argument("--out", help="output folder (default: RUN/eval-MANIFEST)")
    e.add_argument("--device")
    e.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default: figures that do not depend on the machine), bf16, or auto")
    e.add_argument("--allow-outside-root", action="store_true", help=OUTSIDE_ROOT_HELP)
    e.add_argument("--hop", type=float, metavar="SECONDS",
                   help="seconds between the windows of clips longer than one window (default: the checkpoint's)")
    e.set_defaults(fn=cmd_evaluate)


def _add_inference_commands(sub: Any) -> None:
    """evaluate, predict, detect, submit, report."""
    _add_evaluate_command(sub)
    pp = sub.add_parser("predict", help="top-k labels (or the tags above threshold) for audio files or folders",
                        description="Predict files of any length, sample rate and channel count: audio is "
                                    "streamed block by block, resampled and mixed down to what the checkpoint "
                                    "expects, so an hour-long file needs no more memory than a short one. A bad "
                                    "file gets a one-line error and the others are still predicted.")
    pp.add_argument("checkpoint")
    pp.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    pp.add_argument("--top-k", type=int, help="labels per file (default: 3 for classification; every tag above "
                                               "its threshold for tagging)")
    pp.add_argument("--format", choices=("table", "csv", "json"), default="table")
    pp.add_argument("-o", "--output", help="write predictions to this file instead of stdout")
    _add_backend_args(pp, "each window's scores (start, end, one column per label) instead of one row per file")
    pp.set_defaults(fn=cmd_predict)

    dt = sub.add_parser("detect", help="sound events in audio files or folders, as a DCASE event list",
                        description="Detect sound events with a detection checkpoint in files of any length "
                                    "(sliding windows, one timeline per file, so an event across two windows comes "
                                    "out once). Writes filename, onset, offset, event_label (tab-separated), or "
                                    "JSON with each event's confidence.")
    dt.add_argument("checkpoint")
    dt.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    dt.add_argument("--format", choices=("tsv", "json"), default="tsv")
    dt.add_argument("-o", "--output", help="write events to this file instead of stdout")
    _add_backend_args(dt, "the detector's window length (its frames still stitch into one timeline)")
    dt.set_defaults(fn=cmd_detect)

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
                        description="Config, data summary, training curves, the task's metrics, per-class table and "
                                    "plots, and the most confidently wrong clips with log-mel "
                                    "images and audio players; opens in a browser without a server.")
    rp.add_argument("run_dir")
    rp.add_argument("-o", "--output", help="default: RUN_DIR/report.html")
    rp.add_argument("--wrong", type=int, default=8, help="how many wrong clips to show")
    rp.set_defaults(fn=cmd_report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "fn", None):
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(message)s")
    keep_large_blocks()  # big tensors from the heap, not a fresh mmap each: 1.3-1.4x on CPU inference
    try:
        return a.fn(a)
    except EarshotError as e:
        if a.verbose:
            raise
        code = getattr(e, "exit_code", 2)
        print(f"{'error: ' if code == 2 else ''}{e}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a missing permission: the file and the reason
        if a.verbose:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e} (files earshot writes are replaced only once complete, so the "
              "previous version is intact)", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: one line, the traceback on request
        if a.verbose:
            raise
        print(f"error: unexpected {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}\n"
              "This is a bug in earshot; run the command again with -v for the traceback and report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
