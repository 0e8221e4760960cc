"""The training driver: config in, run folder out (checkpoints, config, metrics, plots).

:func:`train` is a sequence of small steps: read the splits, build the task and the model, build
the loaders, fit, tune the task on validation, evaluate. Every file is written by rank zero only.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from earshot.atomic import atomic_write, atomic_write_text
from earshot.config import RunConfig, from_dict, save_config, to_dict
from earshot.data.augment import BackgroundMix, WaveformAugment, chain
from earshot.data.loading import (AudioCache, AudioReader, CropDataset, EpochSampler, ResumableLoader, TrainingSet,
                                  WindowDataset, check_clips, class_weights, collate_windows, seed_worker)
from earshot.data.manifest import (Clip, ClipStore, SkipReport, filter_clips, in_chunks, label_list, pairs_of,
                                   read_manifest_store, writer_like)
from earshot.data.sources import prepare
from earshot.data.sources.common import stable_fraction
from earshot.errors import ConfigError, DataError, EarshotError
from earshot.memory import release_freed_memory
from earshot.models.registry import AudioModel, create_model
from earshot.tasks import Task, create_task
from earshot.distributed import RUN_DIR_ENV, ShardSampler, barrier, is_rank_zero, shared_run_dir

log = logging.getLogger("earshot")


@dataclass
class Splits:
    train: Sequence[Clip]  # ClipStores in a training run (lists where a caller passes lists)
    val: Sequence[Clip]
    test: Sequence[Clip]


@dataclass
class Windowing:
    """Training crop and evaluation windows, in samples at the model's rate."""

    win: int
    hop: int
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.win / self.sample_rate

    @property
    def hop_seconds(self) -> float:
        return self.hop / self.sample_rate


def ensure_manifest(cfg: RunConfig) -> Path:
    """The manifest path; runs ``data.prepare`` first when the manifest does not exist yet."""
    m = Path(cfg.data.manifest) if cfg.data.manifest else None
    if m is None:
        raise ConfigError("data.manifest is not set (a JSONL written by `earshot prepare`)")
    if not m.exists() and cfg.data.prepare:
        spec = dict(cfg.data.prepare)
        source = spec.pop("source", None)
        if source is None:
            raise ConfigError("data.prepare needs a 'source' (see `earshot prepare --help`)")
        res = prepare(source, m, **spec)
        log.info("prepared %s: %d clips, %d skipped", m, len(res.clips), len(res.skipped))
    return m


def split_clips(clips: Sequence[Clip], cfg: RunConfig) -> Splits:
    """Train/val/test by the manifest's splits, or by folds (cross-validation); validation is carved
    from train when there is none. One pass; a :class:`ClipStore` gives stores, a list lists."""
    d = cfg.data
    by_folds = d.test_folds is not None or d.val_folds is not None  # folds decide the split
    test_f, val_f = set(d.test_folds or []), set(d.val_folds or [])
    train, val, test = writer_like(clips), writer_like(clips), writer_like(clips)
    part = {d.test_split: test, d.val_split: val, d.train_split: train, None: train}
    missing, first = 0, None
    for c, raw in pairs_of(clips):
        if by_folds:
            if c.fold is None:
                missing, first = missing + 1, first or c.path
                continue
            c, raw = replace(c, split="test" if c.fold in test_f else "val" if c.fold in val_f else d.train_split), None
        if (w := part.get(c.split)) is not None:
            w.append(c, raw)
    if missing:
        raise DataError(d.manifest, f"{missing} clip(s) have no fold (e.g. {first}); "
                                    "data.test_folds needs a manifest with folds")
    if not len(train) and not scenes_on(cfg):
        raise DataError(d.manifest, f"no training clips (split {d.train_split!r})")
    train = train.finish()
    if not len(val):
        val, kept = writer_like(train), writer_like(train)
        for c, raw in pairs_of(train):
            (val if stable_fraction(c.id, cfg.seed) < d.val_fraction else kept).append(c, raw)
        train = kept.finish()
    return Splits(train, val.finish(), test.finish())


def scenes_on(cfg: RunConfig) -> bool:
    """Whether training scenes are mixed on the fly (``data.scenes``); checks their settings."""
    s = cfg.data.scenes
    if s.per_epoch <= 0:
        return False
    if not s.foreground or not s.background:
        raise ConfigError("data.scenes.per_epoch needs data.scenes.foreground (FOREGROUND_DIR/<class>/*.wav) and "
                          "data.scenes.background (a folder of background recordings)")
    if cfg.task.name not in ("tagging", "detection"):
        raise ConfigError(f"data.scenes mixes several events per scene: use task.name=detection or tagging, "
                          f"not {cfg.task.name}")
    if cfg.task.name == "detection" and "strong" not in cfg.task.train_on:
        raise ConfigError("data.scenes are strongly labelled: add strong to task.train_on")
    if cfg.data.balanced:
        raise ConfigError("data.balanced draws manifest clips by class; scenes draw their classes uniformly "
                          "already: turn one of them off")
    return True


def scene_stream(cfg: RunConfig, task: Task, sample_rate: int, frame_hop: float, augment: Any) -> Any:
    """The :class:`SceneStream` of ``data.scenes`` (None when it is off)."""
    if not scenes_on(cfg):
        return None
    from earshot.data.soundscapes import SceneSpec, SceneStream

    s = cfg.data.scenes
    spec = SceneSpec(n_clips=s.per_epoch, clip_seconds=cfg.data.clip_seconds, sample_rate=sample_rate,
                     ebr_db=tuple(s.ebr_db), events_per_minute=(s.events_per_minute[0], s.events_per_minute[-1]),
                     polyphony=s.polyphony, loop_backgrounds=s.loop_backgrounds,
                     speed=(s.speed[0], s.speed[-1]) if s.speed else None, seed=cfg.seed)
    stream = SceneStream(s.foreground, s.background, spec, task.target, frame_hop, augment)
    unknown = sorted(set(stream.classes) - set(task.labels))
    if unknown:
        raise DataError(s.foreground, f"event class folder(s) {unknown} are not among the labels {task.labels}")
    return stream


def _scene_classes(cfg: RunConfig) -> list[str]:
    """The class folders of ``data.scenes.foreground`` (none when scenes are off)."""
    if not scenes_on(cfg):
        return []
    folder = Path(cfg.data.scenes.foreground)
    if not folder.is_dir():
        raise DataError(folder, "data.scenes.foreground: folder not found")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def build_task(cfg: RunConfig, splits: Splits, skipped: SkipReport) -> tuple[Task, Splits]:
    """The task over the label list, and the splits reduced to the clips it admits."""
    t = cfg.task
    labels = list(cfg.data.labels) if cfg.data.labels else sorted(set(label_list(splits.train)) |
                                                                  set(_scene_classes(cfg)))
    if t.merge and t.name != "classification":
        raise ConfigError(f"task.merge (class split/merge) is for classification, not {t.name}")
    if not labels:
        raise DataError(cfg.data.manifest, "the training clips carry no labels")
    task = create_task(t.name, labels, label_smoothing=t.label_smoothing, calibrate=t.calibrate,
                       threshold=t.threshold, pos_weight=t.pos_weight, tune_thresholds=t.tune_thresholds,
                       train_on=t.train_on, strong_loss=t.strong_loss, decode=t.decode, merge=t.merge or None,
                       decode_tuning=t.decode_tuning)
    kept = Splits(*(filter_clips(cs, lambda chunk, where=where: task.admit(chunk, where, skipped)) for cs, where in
                    ((splits.train, "train"), (splits.val, "val"), (splits.test, "test"))))
    if kept.train or not scenes_on(cfg):
        task.prepare(kept.train)
    return task, kept


def chain_clips(*parts: Sequence[Clip]) -> Iterator[Clip]:
    return (c for part in parts for c in part)


class ClipKeys:
    """Each clip's sampling keys (:meth:`Task.sampling_keys`), re-iterable, never all held at once."""

    def __init__(self, clips: Sequence[Clip], task: Task):
        self.clips, self.task = clips, task

    def __iter__(self) -> Iterator[list[str]]:
        return (self.task.sampling_keys(c) for c in self.clips)


def build_model(cfg: RunConfig, n_classes: int) -> AudioModel:
    model = create_model(cfg.model.name, n_classes, frontend=cfg.model.frontend, head=cfg.model.head,
                         pretrained=cfg.model.pretrained, **cfg.model.args)
    a = cfg.augment
    spectral = a.specaugment or a.filter_augment or (a.mixup_alpha > 0 and a.mixup_on == "logmel")
    if model.input_kind != "logmel" and spectral:
        raise ConfigError(f"{cfg.model.name} reads the waveform: augment.specaugment, augment.filter_augment and "
                          "augment.mixup_on=logmel need a log-mel model (use augment.mixup_on=waveform)")
    bad_db = len(a.filter_db) != 2 or a.filter_db[0] > a.filter_db[1]
    bad_bands = len(a.filter_bands) != 2 or not 1 <= a.filter_bands[0] <= a.filter_bands[1]
    if a.filter_augment and (bad_db or bad_bands or a.filter_min_bins < 1):
        raise ConfigError(f"augment.filter_db must be [low, high] with low <= high (got {a.filter_db}), "
                          f"augment.filter_bands [min, max] with 1 <= min <= max (got {a.filter_bands}) and "
                          f"augment.filter_min_bins >= 1 (got {a.filter_min_bins})")
    return model


def windowing(cfg: RunConfig, model: AudioModel) -> Windowing:
    """A fixed-length model's input length, else ``data.clip_seconds``; evaluation hops by half a
    window (a fixed-length model scores consecutive segments, as SampleCNN's authors did)."""
    sr = model.sample_rate
    win = model.input_samples or int(round(cfg.data.clip_seconds * sr))
    if cfg.data.eval_hop_seconds is not None:
        hop = int(round(cfg.data.eval_hop_seconds * sr))
    else:
        hop = win if model.input_samples else win // 2
    return Windowing(win, max(1, hop), sr)


@dataclass
class Loaders:
    train: torch.utils.data.DataLoader
    val: torch.utils.data.DataLoader | None
    val_clips: Sequence[Clip]  # ClipStores: the main process holds no Python object per clip
    train_clips: Sequence[Clip]
    scenes: Any = None  # the SceneStream of data.scenes

    @property
    def n_train(self) -> int:
        """Training examples an epoch: manifest clips and mixed scenes."""
        return len(self.train_clips) + (len(self.scenes) if self.scenes is not None else 0)


def build_loaders(cfg: RunConfig, model: AudioModel, task: Task, splits: Splits, w: Windowing,
                  skipped: SkipReport) -> Loaders:
    """Check the files, then lazy loaders: random crops for training, per-clip windows for validation."""
    d = cfg.data
    sr = model.sample_rate
    min_samples = max(model.input.min_samples, model.input_samples or 0)
    rates = sorted({c.sample_rate for c in chain_clips(splits.train, splits.val) if c.sample_rate and c.sample_rate != sr})
    if rates:  # e.g. 44.1 kHz data for a 32 kHz pretrained network: resampled on load, never silently
        say = log.warning if cfg.model.pretrained else log.info
        say("the %smodel reads %d Hz audio: clips at %s Hz are resampled to it",
            "pretrained " if cfg.model.pretrained else "", sr, ", ".join(str(r) for r in rates))
    cache = AudioCache(d.audio_cache, sr) if d.audio_cache else None
    # the clips are checked a chunk at a time into stores: no Python object per clip outlives its chunk
    train, val = (ClipStore.of(filter_clips(part, lambda chunk: check_clips(chunk, sr, d.strict, skipped, min_samples,
                                                                            cache=cache)))
                  for part in (splits.train, splits.val))
    if not train and not scenes_on(cfg):
        raise DataError(d.manifest, "no usable training clips left after skipping bad files")
    if cache is not None:
        for chunk in in_chunks(chain_clips(train, val)):
            cache.build(chunk)
    weights = class_weights(ClipKeys(train, task)) if d.balanced else None
    reader = AudioReader(sr, cache, d.memory_cache_mb * 2**20)
    a = cfg.augment
    if task.frame_outputs and a.shift != "none":
        raise ConfigError("augment.shift moves the audio but not the event times of frame targets; "
                          f"use augment.shift=none with task.name={task.name}")
    aug = chain(WaveformAugment(a.shift, a.shift_seconds, a.gain_db, a.noise_prob, tuple(a.noise_snr_db),
                                tuple(a.noise_colours), sr),
                BackgroundMix(a.backgrounds, sr, tuple(a.background_snr_db), a.background_prob)
                if a.backgrounds else None)
    scenes = scene_stream(cfg, task, sr, model.frame_hop_seconds, aug)
    ds = TrainingSet(CropDataset(train, reader, task.target, w.win, model.frame_hop_seconds, cfg.seed, aug), scenes)
    sampler = EpochSampler(len(ds), weights, cfg.seed)  # the order and every crop: functions of (seed, epoch)
    workers = dict(num_workers=d.num_workers, persistent_workers=d.num_workers > 0, worker_init_fn=seed_worker,
                   pin_memory=uses_gpu(cfg.trainer.accelerator))  # pinned batches copy to the GPU asynchronously
    train_dl = ResumableLoader(ds, batch_size=d.batch_size, sampler=sampler, drop_last=len(ds) > d.batch_size,
                               **workers)
    val_dl = None
    if val:
        val_ds = WindowDataset(val, reader, task.target, w.win, w.hop)
        val_dl = torch.utils.data.DataLoader(val_ds, batch_size=max(1, d.batch_size // 4), sampler=ShardSampler(len(val)),
                                             collate_fn=collate_windows, **workers)
    return Loaders(train_dl, val_dl, val, train, scenes)


def new_run_dir(cfg: RunConfig, tag: str | None = None) -> Path:
    """``OUT_DIR/NAME-TIME`` (made on rank zero only), or ``OUT_DIR/NAME-TAG`` for a tag shared by
    every rank (a SLURM job)."""
    if tag is not None:
        run = Path(cfg.out_dir) / f"{cfg.name}-{tag}"
        if is_rank_zero():
            run.mkdir(parents=True, exist_ok=True)
        return run
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = Path(cfg.out_dir) / f"{cfg.name}-{stamp}"
    i = 1
    while run.exists():
        run = Path(cfg.out_dir) / f"{cfg.name}-{stamp}-{i}"
        i += 1
    if is_rank_zero():
        run.mkdir(parents=True)
    return run


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*number of training batches.*", ".*LeafSpec.*",
                    ".*torch.jit.*", ".*no `val_dataloader`.*",
                    ".*sync_dist=True.*"):  # validation metrics are computed from every rank's clips already
        warnings.filterwarnings("ignore", pattern)


def scale_epochs(cfg: RunConfig, steps_per_epoch: int, n_clips: int, n_classes: int) -> RunConfig:
    """On a small training set, enough epochs for ``trainer.min_steps`` optimizer steps."""
    from earshot.training.baseline import small_data

    t = cfg.trainer
    if isinstance(t.limit_train_batches, int):
        steps_per_epoch = min(steps_per_epoch, t.limit_train_batches)
    if not t.min_steps or not small_data(n_clips, n_classes) or steps_per_epoch * t.max_epochs >= t.min_steps:
        return cfg
    epochs = -(-t.min_steps // max(1, steps_per_epoch))
    log.warning("small training set (%d clips, %d steps an epoch): %d epochs instead of %d, for %d optimizer steps "
                "(trainer.min_steps; 0 keeps the recipe's epochs)", n_clips, steps_per_epoch, epochs, t.max_epochs,
                t.min_steps)
    return replace(cfg, trainer=replace(t, max_epochs=epochs))


def build_trainer(cfg: RunConfig, run: Path, task: Task, validate: bool, resumed: bool) -> Any:
    """The Lightning trainer with its checkpoints (best and last), early stopping or stages, and loggers."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from earshot.training.checkpoint_io import AtomicCheckpointIO
    from earshot.training.resume import Resumable
    from earshot.training.schedules import StagedLearningRate

    monitor = f"val/{cfg.trainer.monitor or task.monitor}"
    mode = "min" if monitor.endswith("loss") else "max"
    ckdir = run / "checkpoints"
    callbacks: list[Any] = [ModelCheckpoint(dirpath=ckdir, filename="last", monitor=None, save_top_k=1,
                                            enable_version_counter=False),
                            Resumable(cfg.seed, ckdir, cfg.trainer.checkpoint_every_n_steps)]
    if validate:
        callbacks.append(ModelCheckpoint(dirpath=ckdir, filename="best", monitor=monitor, mode=mode,
                                         enable_version_counter=False))
    if cfg.trainer.ema_decay > 0:
        from earshot.training.averaging import EMAWeights

        callbacks.insert(0, EMAWeights(cfg.trainer.ema_decay))  # updated before Resumable's step checkpoint
    if cfg.trainer.max_minutes:
        from earshot.training.budget import TimeBudget

        callbacks.append(TimeBudget(cfg.trainer.max_minutes, cfg.trainer.max_epochs))
    if cfg.trainer.patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.trainer.patience))
    if cfg.optim.schedule == "staged":
        if mode != "max":
            raise ConfigError("optim.schedule=staged needs a metric where higher is better (trainer.monitor)")
        o = cfg.optim
        callbacks.append(StagedLearningRate(monitor, o.patience, o.lr_decay, o.num_stages))
    version = f"resumed-{datetime.now().strftime('%Y%m%d-%H%M%S')}" if resumed else ""  # keep the first part's logs
    t = cfg.trainer
    return L.Trainer(
        max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
        strategy=t.strategy, use_distributed_sampler=False,  # earshot's samplers shard by rank themselves
        precision=training_precision(cfg.trainer.precision, cfg.trainer.accelerator), default_root_dir=run,
        callbacks=callbacks,
        logger=[CSVLogger(run, name="logs", version=version), TensorBoardLogger(run, name="tensorboard",
                                                                                 version=version)],
        enable_progress_bar=cfg.trainer.progress_bar, num_sanity_val_steps=0, log_every_n_steps=10,
        limit_train_batches=cfg.trainer.limit_train_batches, enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
    )


def uses_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()


def training_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision; ``auto`` is ``bf16-mixed`` on CPUs that run bf16 natively, else
    ``32-true`` (on a GPU too: see :func:`earshot.inference.predictor.resolve_precision`)."""
    if precision != "auto":
        return precision
    from earshot.inference.predictor import resolve_precision

    device = torch.device("cuda" if uses_gpu(accelerator) else "cpu")
    return "bf16-mixed" if resolve_precision("auto", device) == "bf16" else "32-true"


def check_validation(cfg: RunConfig, validate: bool) -> None:
    if validate:
        return
    if cfg.data.val_fraction > 0:
        raise DataError(cfg.data.manifest, "no usable validation clips (set data.val_fraction=0 to train without "
                                           "validation and keep the last epoch)")
    if cfg.trainer.patience:
        raise ConfigError("trainer.patience needs validation clips (data.val_fraction > 0 or a val split)")
    if cfg.optim.schedule == "staged":
        raise ConfigError("optim.schedule=staged needs validation clips (data.val_fraction > 0 or a val split)")


def finish(cfg: RunConfig, run: Path, splits: Splits, loaders: Loaders, skipped: SkipReport, validate: bool,
           extra: dict[str, Any]) -> dict[str, Any]:
    """Tune the task on validation (stored in ``best.ckpt``), then evaluate on test (else validation)."""
    from earshot.checkpoint import load_checkpoint, update_task_state
    from earshot.inference.evaluation import write_evaluation
    from earshot.inference.predictor import Predictor

    ckdir = run / "checkpoints"
    best = ckdir / "best.ckpt"
    if not validate:  # no validation: the last epoch is the model
        atomic_write(best, lambda f: f.write((ckdir / "last.ckpt").read_bytes()))
    ck = load_checkpoint(best)
    pred = Predictor(ck.model, ck.task, ck.meta, device="cpu" if cfg.trainer.accelerator == "cpu" else None,
                     precision="fp32", fold_batchnorm=True)  # reported figures do not depend on the machine
    tuned: dict[str, Any] = {}
    if validate:
        tuned = pred.tune(loaders.val_clips)
        if tuned:
            update_task_state(best, ck.task)
    eval_split, eval_clips = ("test", splits.test) if splits.test else ("val", loaders.val_clips)
    if not eval_clips:
        raise DataError(cfg.data.manifest, "nothing to evaluate: no test split and no validation clips")
    report = pred.evaluate(eval_clips, skipped, predictions=run / "predictions.jsonl", pictures=run / "events")
    if "temperature" in tuned:  # calibration on validation: the temperature, ECE and NLL before and after
        report["calibration"] = tuned
    report.update(_baseline_beside(cfg, ck.task, splits, loaders, eval_clips))
    report.update(split=eval_split, best_checkpoint=str(best), tuned_on_validation=bool(tuned), **extra,
                  selection=f"best val/{cfg.trainer.monitor or ck.task.monitor}" if validate
                  else "last epoch (no validation)")
    write_evaluation(report, run, ck.task)
    skipped.write(run / "skipped.json")
    summary = {"run": str(run), "task": ck.task.name, "verb": ck.task.verb, "split": eval_split, "n_clips": report["n_clips"],
               **{k: report.get(k) for k in report["headline"]}, "train_seconds": report["train_seconds"],
               "skipped": len(skipped), "headline": report["headline"]}
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2))
    return report


def _baseline_beside(cfg: RunConfig, task: Task, splits: Splits, loaders: Loaders, eval_clips: list[Clip]
                     ) -> dict[str, Any]:
    """The classical baseline on the same training and evaluation clips (``trainer.baseline``)."""
    from earshot.training.baseline import run_baseline, small_data

    mode = cfg.trainer.baseline
    train_clips = [*loaders.train_clips, *(loaders.val_clips if splits.test else [])]
    if mode == "never" or not loaders.train_clips or task.name not in ("classification", "tagging") or (
            mode == "auto" and not small_data(len(loaders.train_clips), len(task.labels))):
        return {}
    try:
        base = run_baseline(task, train_clips, eval_clips, SkipReport())
    except EarshotError as e:  # never lose a finished run to its side comparison
        log.warning("baseline skipped: %s", e)
        return {}
    keep = [*task.headline, "mAP", "roc_auc_macro", "wall_seconds", "n_train"]
    return {"baseline": {k: base[k] for k in keep if k in base}}


def trained_epochs(ckpt: Path | dict[str, Any]) -> int:
    """How many epochs a Lightning checkpoint (a file, or one loaded) has finished training."""
    import torch

    state = ckpt if isinstance(ckpt, dict) else torch.load(ckpt, map_location="cpu", weights_only=True)
    return int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])


def _resume_config(run: Path) -> tuple[RunConfig, Path, int]:
    """The run's config, its last checkpoint and how many epochs that checkpoint has trained."""
    import yaml

    cfg = from_dict(RunConfig, yaml.safe_load((run / "config.yaml").read_text()))
    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        raise DataError(ckpt, "no last checkpoint to resume from")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    done = trained_epochs(state)
    if done >= _planned_epochs(state, cfg.trainer.max_epochs) and (run / "metrics.json").exists():
        raise DataError(run, f"this run has finished its {done} epochs: there is nothing to resume (raise "
                             "trainer.max_epochs, or trainer.max_minutes, in its config.yaml to train it further)")
    return cfg, ckpt, done


def _planned_epochs(state: dict[str, Any], max_epochs: int) -> int:
    """The epochs a run meant to train: ``max_epochs``, or fewer where a time budget planned fewer."""
    callbacks = state.get("callbacks", {})
    planned = next((v.get("planned") for k, v in callbacks.items() if k.startswith("TimeBudget")), None)
    return max_epochs if planned is None else min(max_epochs, int(planned))


def train(cfg: RunConfig, resume: str | Path | None = None) -> Path:
    """Train, keep best/last checkpoints, evaluate the best on the test split; return the run folder.

    With ``resume`` (a run folder), its saved config is reused and training continues from
    ``checkpoints/last.ckpt``.
    """
    import lightning as L

    from earshot.checkpoint import build_meta
    from earshot.training.module import EarshotModule
    from earshot.training.resume import Interrupted, Resumable, StopRequested

    _quiet_lightning()
    ckpt_path, done = None, 0
    if resume is not None:
        run = Path(resume)
        cfg, ckpt_path, done = _resume_config(run)
    L.seed_everything(cfg.seed, verbose=False)
    t0 = time.time()
    skipped = SkipReport()
    cfg, task, splits, model, w, loaders = build_data(cfg, skipped)
    if resume is None:
        cfg = scale_epochs(cfg, len(loaders.train), loaders.n_train, len(task.labels))
    validate = loaders.val is not None
    if resume is None:
        run = shared_run_dir(lambda tag: new_run_dir(cfg, tag), cfg.trainer.accelerator,
                             launches_more=cfg.trainer.devices not in (1, "1") or cfg.trainer.num_nodes > 1)
    if is_rank_zero():
        save_config(cfg, run / "config.yaml")
    if not cfg.model.pretrained:  # a pretrained backbone keeps the input statistics it was trained with
        model.input.fit(_stats_audio(loaders, cfg, skipped))
    if cfg.trainer.channels_last:
        model.fast_layout()
    meta = build_meta(model, task, w.seconds, w.hop_seconds, cfg.data.eval_pooling, to_dict(cfg))
    val_targets = np.stack([task.target(c) for c in loaders.val_clips]) if validate else None
    module = EarshotModule(model, task, cfg.optim, meta, val_targets, cfg.data.eval_pooling, cfg.augment, cfg.seed,
                           monitor=cfg.trainer.monitor, mean_teacher=_mean_teacher(cfg, model, loaders),
                           val_clips=loaders.val_clips if validate else None)
    trainer = build_trainer(cfg, run, task, validate, ckpt_path is not None)
    stopper = next(c for c in trainer.callbacks if isinstance(c, Resumable))
    stopper.loader = loaders.train
    t_fit = time.time()
    fit = done < cfg.trainer.max_epochs  # epochs trained so far: read once, with the config
    gc.freeze()  # loader workers fork from here: the collector must not touch (and so copy) every object
    try:  # (a run killed after its last epoch, before its evaluation, only needs the evaluation)
        if fit:
            trainer.fit(module, loaders.train, loaders.val, ckpt_path=ckpt_path)
    except StopRequested:  # Ctrl-C: the checkpoint is written; evaluation waits for the resumed run
        raise Interrupted(run, trainer.global_step) from None
    finally:
        os.environ.pop(RUN_DIR_ENV, None)  # handed to the processes Lightning started; not to a next run
        gc.unfreeze()  # a next run (the next fold) may collect this one's garbage
    if is_rank_zero():  # evaluation on one process: the figures are those of a single-process run
        finish(cfg, run, splits, loaders, skipped, validate,
               {"train_seconds": round(time.time() - t0, 1), "fit_seconds": round(time.time() - t_fit, 1),
                "epochs": trainer.current_epoch if fit else done, **_budget_report(trainer),
                "environment": _environment(cfg)})
    barrier()  # the other ranks wait, so that a next run (the next fold) starts together
    return run


def _environment(cfg: RunConfig) -> dict[str, Any]:
    """What the run trained on, for metrics.json: the same recipe trains 2x slower in float32 on an AVX2
    CPU than in bf16 on one with AMX, and ``precision=auto`` picks between them."""
    import platform

    gpu = uses_gpu(cfg.trainer.accelerator)
    return {"precision": training_precision(cfg.trainer.precision, cfg.trainer.accelerator),
            "device": torch.cuda.get_device_name(0) if gpu else f"cpu ({torch.backends.cpu.get_cpu_capability()})",
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}


def _budget_report(trainer: Any) -> dict[str, Any]:
    """``trainer.max_minutes``: the budget and how each epoch's plan went, for metrics.json."""
    from earshot.training.budget import TimeBudget

    tb = next((c for c in trainer.callbacks if isinstance(c, TimeBudget)), None)
    return {} if tb is None else {"time_budget": {"seconds": tb.budget, "max_epochs": tb.max_epochs,
                                                  "epochs": tb.history}}


def build_data(cfg: RunConfig, skipped: SkipReport) -> tuple[RunConfig, Task, Splits, AudioModel, Windowing, Loaders]:
    """Manifest, splits, task, model, windowing and loaders; the config comes back with the manifest's
    absolute path, so the saved config works from anywhere."""
    manifest = ensure_manifest(cfg).resolve()
    cfg = replace(cfg, data=replace(cfg.data, manifest=str(manifest)))
    task, splits = build_task(cfg, _with_noise_clips(cfg, split_clips(read_manifest_store(
        manifest, allow_outside_root=cfg.data.allow_outside_root, skipped=skipped), cfg)), skipped)
    model = build_model(cfg, len(task.labels))
    w = windowing(cfg, model)
    loaders = build_loaders(cfg, model, task, splits, w, skipped)
    check_validation(cfg, loaders.val is not None)
    # the clips live in ClipStores from the manifest on: no Python object per record
    splits = Splits(loaders.train_clips, loaders.val_clips, ClipStore.of(splits.test))
    release_freed_memory()
    return cfg, task, splits, model, w, loaders


def _with_noise_clips(cfg: RunConfig, splits: Splits) -> Splits:
    """``augment.noise_clips`` generated coloured-noise clips added to training, as ``noise_clips_label``."""
    a = cfg.augment
    if a.noise_clips <= 0:
        return splits
    if not a.noise_clips_label:
        raise ConfigError("augment.noise_clips needs augment.noise_clips_label (the class the noise belongs to)")
    if cfg.task.name == "detection":
        raise ConfigError("augment.noise_clips adds clip-labelled examples; detection needs events")
    from earshot.data.synth import noise_clips

    folder = Path(cfg.out_dir) / ".noise_clips" / f"{a.noise_clips_label}-{cfg.seed}"
    extra = noise_clips(folder, a.noise_clips_label, a.noise_clips, 16000, max(1.0, cfg.data.clip_seconds), cfg.seed)
    log.info("added %d coloured-noise clips labelled %r to training", len(extra), a.noise_clips_label)
    return Splits(ClipStore(chain_clips(splits.train, extra)), splits.val, splits.test)


def _mean_teacher(cfg: RunConfig, model: AudioModel, loaders: Loaders) -> Any:
    """The EMA teacher when ``task.mean_teacher`` is on (its ramp-up counted in optimizer steps)."""
    t = cfg.task
    if not t.mean_teacher:
        return None
    from earshot.training.mean_teacher import MeanTeacher

    steps = int(t.rampup_epochs * max(1, len(loaders.train)))
    return MeanTeacher(model, t.ema_decay, t.consistency_weight, steps)


def _stats_audio(loaders: Loaders, cfg: RunConfig, skipped: SkipReport) -> Any:
    """Audio of up to ``data.stats_clips`` training clips (a fixed random choice) for input statistics."""
    from earshot.errors import AudioError

    clips = loaders.train_clips
    reader = loaders.train.dataset.reader
    chosen = sorted(np.random.default_rng(cfg.seed).permutation(len(clips))[: cfg.data.stats_clips])
    for i in chosen:
        try:
            yield reader(clips[i])
        except AudioError as e:
            skipped.add(clips[i].path, e.reason)
    if loaders.scenes is not None:  # scenes of an epoch no training run draws (the loader's epochs count from 0)
        for k in range(min(len(loaders.scenes), cfg.data.stats_clips - len(chosen))):
            yield loaders.scenes.scene((k, 2**31 - 1, k))[0]
