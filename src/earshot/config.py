"""Typed run configuration: dataclasses, YAML recipes that override them, and ``key=value`` overrides.

Each run saves its fully resolved config as ``config.yaml`` beside its results.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from earshot.atomic import atomic_write_text
from earshot.errors import ConfigError


@dataclass
class ScenesConfig:
    """Training scenes mixed afresh every epoch (dynamic mixing), beside or instead of the manifest's
    training clips: isolated events of ``foreground/<class>/*`` at random onsets over crops of the
    recordings in ``background``, as ``earshot synthesize`` builds them. Off while ``per_epoch`` is 0.
    Scenes last ``data.clip_seconds``; they are strongly labelled (tagging and detection)."""

    foreground: str | None = None  # FOREGROUND_DIR/<class>/*.wav
    background: str | None = None  # folder of background recordings
    per_epoch: int = 0  # scenes per epoch
    ebr_db: list[float] = field(default_factory=lambda: [-6.0, 0.0, 6.0])  # each event draws one (event-to-background, dB)
    events_per_minute: list[float] = field(default_factory=lambda: [5.5, 27.5])  # each scene draws a rate in this range
    polyphony: Literal["mono", "poly", "both"] = "both"  # both: each scene is mono or poly at random
    loop_backgrounds: bool = False  # loop (crossfaded) backgrounds shorter than a scene
    speed: list[float] | None = None  # e.g. [0.9, 1.1]: each event played at a random speed (pitch and tempo)


@dataclass
class DataConfig:
    """Where the clips come from and how they are cut into training examples."""

    manifest: str = ""  # JSONL written by `earshot prepare`
    prepare: dict[str, Any] = field(default_factory=dict)  # e.g. {source: fsdd, root: DIR}: run if manifest is missing
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    val_fraction: float = 0.1  # carved from train when the manifest has no val split
    labels: list[str] | None = None  # default: the labels of the training clips, sorted
    clip_seconds: float = 1.0  # training crop and evaluation window (a model with a fixed input length uses that)
    eval_hop_seconds: float | None = None  # default: half a window (a whole window for fixed-length models)
    eval_pooling: Literal["mean", "max"] = "mean"  # how window predictions combine into a clip's
    batch_size: int = 32
    num_workers: int = 0
    strict: bool = False  # fail on the first bad file instead of skipping it
    allow_outside_root: bool = False  # admit manifest clips outside the dataset root its header names
    balanced: bool = False  # class-balanced sampling of training clips
    test_folds: list[int] | None = None  # clips of these folds form the test split (cross-validation)
    val_folds: list[int] | None = None  # and these the validation split; default: carved from train
    stats_clips: int = 2000  # training clips used to fit per-band normalisation
    audio_cache: str | None = None  # folder of decoded, resampled audio (.npy, memory-mapped), built once
    memory_cache_mb: int = 512  # decoded clips also kept in RAM up to this size, per loader process (0: none)
    scenes: ScenesConfig = field(default_factory=ScenesConfig)  # training scenes mixed on the fly


@dataclass
class AugmentConfig:
    """Training-time augmentations; every one is off by default."""

    gain_db: float = 0.0  # random gain drawn in [-gain_db, +gain_db]
    shift: Literal["none", "wrap", "pad"] = "none"  # random time shift of the crop: roll or zero-pad
    shift_seconds: float = 0.0  # largest shift
    noise_prob: float = 0.0  # chance of additive coloured noise
    noise_snr_db: list[float] = field(default_factory=lambda: [10.0, 30.0])
    noise_colours: list[Literal["white", "pink", "brown"]] = field(default_factory=lambda: ["white", "pink", "brown"])
    mixup_alpha: float = 0.0  # > 0 turns mixup on (Beta(alpha, alpha))
    mixup_on: Literal["waveform", "logmel"] = "waveform"  # logmel needs a log-mel model
    specaugment: bool = False
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bins: int = 8
    filter_augment: bool = False  # a random smooth gain over the mel bands per clip (FilterAugment)
    filter_db: list[float] = field(default_factory=lambda: [-6.0, 6.0])  # gain range at the band edges
    filter_bands: list[int] = field(default_factory=lambda: [3, 6])  # how many bands, drawn in this range
    filter_min_bins: int = 6  # narrowest band, in mel bins
    backgrounds: str | None = None  # folder of background recordings mixed into every training crop
    background_snr_db: list[float] = field(default_factory=lambda: [0.0, 20.0])  # crop-to-background SNR range
    background_prob: float = 1.0  # chance that a crop gets a background
    noise_clips: int = 0  # seed 003: this many generated coloured-noise clips join the training set ...
    noise_clips_label: str | None = None  # ... labelled with this class (e.g. Other)


@dataclass
class ModelConfig:
    """A registered model: input (log-mel or waveform) + backbone + head."""

    name: str = "resnet_small"  # chosen by measurement on real data (benchmarks/RESULTS.md)
    args: dict[str, Any] = field(default_factory=dict)  # backbone arguments, e.g. {block: se, multi: true}
    frontend: dict[str, Any] = field(default_factory=dict)  # overrides the model's default front-end
    head: dict[str, Any] = field(default_factory=dict)  # overrides the model's default head, e.g. {pool: attention}
    # A published checkpoint file (PANNs, VGGish), a name fetched by `earshot download`, or an earshot
    # checkpoint of the same model (its head is replaced when the classes differ).
    pretrained: str | None = None


@dataclass
class TaskConfig:
    """What is predicted: one label per clip (classification), any number (tagging), or events in
    time (detection)."""

    name: Literal["classification", "tagging", "detection"] = "classification"
    label_smoothing: float = 0.0  # classification
    calibrate: bool = True  # classification: softmax temperature fitted on validation (NLL); argmax unchanged
    # classification: class split/merge, {output class: [training classes]}; probabilities are summed
    merge: dict[str, Any] = field(default_factory=dict)
    pos_weight: Literal["none", "balanced"] = "none"  # tagging: BCE positive weight per class (n_neg / n_pos)
    threshold: float = 0.5  # tagging, detection: decision threshold before per-class tuning on validation
    tune_thresholds: bool = True  # tagging, detection: per-class thresholds tuned on validation
    # detection (earshot.tasks.detection):
    train_on: list[Literal["weak", "strong", "unlabelled"]] = field(
        default_factory=lambda: ["weak", "strong", "unlabelled"])  # clip kinds used for training
    strong_loss: Literal["frame", "clip"] = "frame"  # strong clips: frame-wise or clip-wise BCE
    decode: dict[str, Any] = field(default_factory=dict)  # DecodeParams overrides: high, low, median_seconds, ...
    # How validation tunes the decoding: one threshold and median window per class, one shared by every class,
    # or auto: per class where every class has at least 50 validation events, else shared (fewer events make
    # a per-class F1 too noisy to choose by; benchmarks/RESULTS.md, "Decoding tuned per class or shared")
    decode_tuning: Literal["auto", "per_class", "shared"] = "auto"
    mean_teacher: bool = False  # consistency with an EMA teacher on every clip (unlabelled ones included)
    consistency_weight: float = 2.0  # weight of the consistency loss after its ramp-up
    ema_decay: float = 0.999  # teacher = ema_decay * teacher + (1 - ema_decay) * student, every step
    rampup_epochs: float = 5.0  # sigmoid ramp-up of the consistency weight


@dataclass
class OptimConfig:
    name: Literal["adamw", "sgd"] = "adamw"  # sgd uses Nesterov momentum
    lr: float = 1e-3
    weight_decay: float = 1e-2
    momentum: float = 0.9
    schedule: Literal["cosine", "constant", "staged"] = "cosine"  # staged: SampleCNN's stages (below)
    warmup_epochs: float = 1.0
    lr_decay: float = 0.2  # staged: the learning rate is multiplied by this at each new stage
    num_stages: int = 5  # staged: stop after this many stages
    patience: int = 2  # staged: epochs without validation improvement that end a stage
    # Fine-tuning a pretrained backbone (model.pretrained):
    freeze_backbone_epochs: int = 0  # the backbone (and its batch-norm statistics) stays fixed this many epochs
    backbone_lr_scale: float = 1.0  # backbone learning rate = lr * this (the head keeps lr)
    layer_decay: float = 1.0  # < 1: each backbone block below the top gets this factor once more


@dataclass
class TrainerConfig:
    max_epochs: int = 30
    # > 0: a time budget for the fit (training + validation) in minutes. After each epoch the run plans as
    # many more as fit in the time left, at most max_epochs in all, and fits the cosine decay to end with
    # them (training/budget.py). 0: exactly max_epochs.
    max_minutes: float = 0.0
    monitor: str | None = None  # validation metric for best checkpoint / early stopping (default: the task's)
    patience: int | None = None  # early stopping on the monitored validation metric
    accelerator: str = "auto"
    # Several processes (Lightning DDP): devices per node and nodes, e.g. devices=2 strategy=ddp on one
    # machine; torchrun or SLURM launch them as well (README, "More than one machine")
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    # auto: bf16-mixed on CPUs that run bf16 natively (AMX/AVX-512-BF16; 1.5-1.9x faster, FSDD accuracy 1.000
    # against 0.997 in float32), else 32-true, GPUs included (on an H100 bf16 gained at most 1.16x at the recipes'
    # batch sizes and cost FSDD half a point); or any Lightning precision ("32-true", "bf16-mixed")
    precision: str = "auto"
    # 2-D convolutions in channels_last (NHWC), the registry's choice per model: with bf16, training steps
    # 1.2-1.5x faster on this CPU (benchmarks/train_throughput.py); false keeps NCHW
    channels_last: bool = True
    progress_bar: bool = True
    limit_train_batches: float | int | None = None
    # Small training sets (< 50 clips per class) train for at least this many optimizer steps: a recipe's
    # epochs are tuned for its full dataset, and a few dozen clips give too few steps. 0 turns it off.
    min_steps: int = 600
    # Score the log-mel statistics + logistic regression baseline on the same clips, beside the model:
    # auto = when the training set is small (< 50 clips per class), where it can win.
    baseline: Literal["auto", "always", "never"] = "auto"
    # Write checkpoints/last.ckpt every this many optimizer steps as well as every epoch (0: epochs only);
    # an interrupted run resumes from it exactly (earshot train --resume RUN_DIR).
    checkpoint_every_n_steps: int = 0
    # > 0: validate, checkpoint and evaluate an exponential moving average of the weights with this decay
    # (e.g. 0.999), updated every optimizer step (training/averaging.py); 0 uses the weights as trained.
    ema_decay: float = 0.0


@dataclass
class RunConfig:
    """Everything a training run needs; saved with its results."""

    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def _check_type(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        opts = typing.get_args(tp)
        if value is None and type(None) in opts:
            return None
        for o in opts:
            if o is type(None):
                continue
            try:
                return _check_type(value, o, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: {value!r} is not a {tp}")
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            near = difflib.get_close_matches(str(value), [str(a) for a in allowed], 1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}{hint}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        return [_check_type(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float:
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp in (int, str, bool) and type(value) is not tp:
        if tp is str and isinstance(value, (int, float)):
            return str(value)
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type, d: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if k not in names:
            near = difflib.get_close_matches(k, names, 1)
            raise ConfigError(f"unknown config key {key!r}" + (f"; did you mean {prefix + near[0]!r}?" if near else ""))
        tp = hints[k]
        kwargs[k] = from_dict(tp, v, key + ".") if dataclasses.is_dataclass(tp) else _check_type(v, tp, key)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def set_key(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels as needed."""
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"cannot set {dotted!r}: {p!r} is not a mapping")
    d[parts[-1]] = value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "model.name=cnn_small"]`` -> nested dict; values parsed as YAML."""
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"override {it!r} is not of the form key=value")
        k, v = it.split("=", 1)
        try:
            val = yaml.safe_load(v) if v != "" else ""
        except yaml.YAMLError:
            val = v
        set_key(out, k.strip(), _fix_sci(val))
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``over`` into a copy of ``base``."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _yaml_number(v: str) -> Any:
    try:
        return float(v)
    except ValueError:
        return v


def load_config(recipe: str | Path | None = None, overrides: Sequence[str] = (), base: RunConfig | None = None) -> RunConfig:
    """Defaults, then the recipe's YAML, then ``key=value`` overrides."""
    d = to_dict(base or RunConfig())
    if recipe is not None:
        p = Path(recipe)
        if not p.exists():
            raise ConfigError(f"recipe not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML ({e})") from None
        d = merge(d, _fix_sci(loaded))
    d = merge(d, parse_overrides(overrides))
    return from_dict(RunConfig, d)


def _fix_sci(d: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; read such strings as floats."""
    if isinstance(d, dict):
        return {k: _fix_sci(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_fix_sci(v) for v in d]
    if isinstance(d, str) and any(c.isdigit() for c in d) and "e" in d.lower():
        return _yaml_number(d)
    return d


def save_config(cfg: RunConfig, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
