"""Models register by name; a model is an input, a backbone and a head.

- The **input** is :class:`~earshot.features.frontends.LogMelInput` (log-mel + per-band
  normalisation, ``(B, N)`` -> ``(B, T, F)``) or :class:`~earshot.features.frontends.Waveform`.
- The **backbone** maps the input to frame embeddings ``(B, T', D)``. It declares ``dim`` (D),
  ``time_stride`` (input frames, or samples, per output frame) and ``min_frames``.
- The **head** (:mod:`earshot.models.heads`) turns frame embeddings into ``clip_logits``
  ``(B, C)`` and ``frame_logits`` ``(B, T', C)``.

A registered name fixes the backbone's builder and its default input and head settings;
:meth:`AudioModel.describe` records everything, so ``create_model(**describe())`` rebuilds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Literal

import torch
from torch import nn
from torch.nn import functional as F

from earshot.errors import ConfigError
from earshot.features.frontends import LogMelConfig, LogMelInput, Waveform, WaveformConfig
from earshot.models.heads import build_head

InputKind = Literal["logmel", "waveform"]


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before it is built."""

    name: str
    builder: Callable[..., nn.Module]
    input: InputKind
    frontend: dict[str, Any] = field(default_factory=dict)
    head: dict[str, Any] = field(default_factory=dict)
    input_samples: int | None = None  # a fixed input length (e.g. SampleCNN's 59049); None: any length
    description: str = ""
    normalize: bool = True  # fit per-band statistics of the log-mel on training audio
    # Maps a published checkpoint's state dict onto this model (see earshot.models.pretrained).
    convert: Callable[..., Any] | None = None
    # Runs its 2-D convolutions in channels_last (NHWC): faster for most models on oneDNN and cuDNN,
    # not for all (benchmarks/model_rtf.py measures each)
    channels_last: bool = True

    def frontend_config(self, **overrides: Any) -> LogMelConfig | WaveformConfig:
        cls = LogMelConfig if self.input == "logmel" else WaveformConfig
        given = {**self.frontend, **overrides}
        allowed = {f.name for f in fields(cls)}
        bad = set(given) - allowed
        if bad:
            raise ConfigError(f"unknown front-end setting(s) {sorted(bad)} for {self.input} input; "
                              f"known: {sorted(allowed)}")
        return cls(**given)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(input: InputKind = "logmel", frontend: dict[str, Any] | None = None,
                   head: dict[str, Any] | None = None, input_samples: int | None = None,
                   name: str | None = None, normalize: bool = True,
                   convert: Callable[..., Any] | None = None, channels_last: bool = True) -> Callable:
    """Decorator: register ``fn(n_features, **kwargs) -> backbone`` under ``name`` (default: its own).
    ``convert`` maps a published checkpoint onto the model, for ``create_model(pretrained=...)``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (fn.__doc__ or "").strip().splitlines()
        key = name or fn.__name__
        _REGISTRY[key] = ModelSpec(key, fn, input, dict(frontend or {}), dict(head or {}), input_samples,
                                   doc[0] if doc else "", normalize, convert, channels_last)
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_families()
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; unknown names list the known ones."""
    _load_families()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _load_families() -> None:
    from earshot.models import cnn, cnn1d, crnn, efficient, panns, sample_cnn, vggish  # noqa: F401  (register on import)


class AudioModel(nn.Module):
    """Input + backbone + head: waveform ``(B, N)`` -> ``{clip_logits, frame_logits, embedding}``."""

    def __init__(self, spec: ModelSpec, input: nn.Module, backbone: nn.Module, head: nn.Module,
                 model_args: dict[str, Any], head_args: dict[str, Any]):
        super().__init__()
        self.name = spec.name
        self.input_samples = spec.input_samples
        self.channels_last = spec.channels_last
        self.model_args = dict(model_args)
        self.head_args = dict(head_args)
        self.input = input
        self.backbone = backbone
        self.head = head

    def fast_layout(self) -> "AudioModel":
        """Weights in the memory layout this model runs fastest in: channels_last (NHWC) for 2-D
        convolutions unless its registry entry says otherwise. The outputs are the same; 1-D
        convolutions, GRUs and linear layers are untouched."""
        return self.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    @torch.no_grad()
    def fold_batchnorm(self) -> int:
        """For inference: fold every BatchNorm that directly follows a convolution (its only reader)
        into the convolution's weights, and drop it. The outputs are the same in eval mode, with one
        pass over the activations less per pair. The pairs are found by tracing the backbone with
        torch.fx; a backbone that cannot be traced is left as it is. Returns the pairs folded."""
        if self.training:
            raise RuntimeError("fold_batchnorm is for inference: call .eval() first")
        try:
            graph = torch.fx.symbolic_trace(self.backbone).graph
        except Exception:  # noqa: BLE001 (control flow that tracing cannot follow)
            return 0
        mods = dict(self.backbone.named_modules())
        convs = (nn.Conv1d, nn.Conv2d)
        bns = (nn.BatchNorm1d, nn.BatchNorm2d)
        pairs = []
        for node in graph.nodes:
            src = node.args[0] if node.op == "call_module" and node.args else None
            if (isinstance(mods.get(node.target), bns) and getattr(src, "op", None) == "call_module"
                    and isinstance(mods.get(src.target), convs) and len(src.users) == 1):
                pairs.append((src.target, node.target))
        for conv, bn in pairs:
            fused = nn.utils.fusion.fuse_conv_bn_eval(mods[conv], mods[bn])
            self.backbone.set_submodule(conv, fused)
            self.backbone.set_submodule(bn, nn.Identity())
        return len(pairs)

    @property
    def frontend_config(self) -> LogMelConfig | WaveformConfig:
        return self.input.config

    @property
    def input_kind(self) -> str:
        return self.input.kind

    @property
    def sample_rate(self) -> int:
        return self.input.sample_rate

    @property
    def frame_hop_seconds(self) -> float:
        """Seconds between consecutive frames of ``frame_logits``."""
        return self.input.hop_seconds * self.backbone.time_stride

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """What the backbone reads: normalised log-mel ``(B, T, F)`` or the waveform ``(B, N)``."""
        return self.input(wave)

    def _backbone(self, feats: torch.Tensor) -> torch.Tensor:
        short = self.backbone.min_frames - feats.shape[1]
        if short > 0:  # too short for the backbone's pooling: zero-pad the time axis
            feats = F.pad(feats, (0, 0, 0, short) if feats.dim() == 3 else (0, short))
        return self.backbone(feats)  # (B, T', D)

    def forward_features(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backbone and head on input features (e.g. after feature-level augmentation)."""
        return self.head(self._backbone(feats))

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_features(self.features(wave))

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """Frame embeddings ``(B, T', D)`` of a waveform batch."""
        return self._backbone(self.features(wave))

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (weights aside)."""
        return {"name": self.name, "args": self.model_args, "frontend": asdict(self.frontend_config),
                "head": self.head_args}


def create_model(name: str, n_classes: int, frontend: dict[str, Any] | LogMelConfig | WaveformConfig | None = None,
                 head: dict[str, Any] | None = None, pretrained: str | None = None, **kwargs: Any) -> AudioModel:
    """Build a registered model. ``frontend`` and ``head`` override the model's defaults; ``kwargs``
    go to the backbone (e.g. ``block="se"``, ``multi=True`` for SampleCNN).

    ``pretrained`` is a published checkpoint file (e.g. PANNs' ``Cnn14_mAP=0.431.pth``) or the name
    of one that ``earshot download`` fetched; it is loaded with strict key checking, see
    :func:`earshot.models.pretrained.load_pretrained`."""
    spec = model_spec(name)
    if isinstance(frontend, (LogMelConfig, WaveformConfig)):
        fe = replace(frontend)
    else:
        fe = spec.frontend_config(**dict(frontend or {}))
    inp = LogMelInput(fe, normalize=spec.normalize) if spec.input == "logmel" else Waveform(fe)
    try:
        backbone = spec.builder(n_features=inp.n_features, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model.args for {name}: {e}") from None
    head = dict(head or {})
    same_type = head.get("type", "clip") == spec.head.get("type", "clip")
    head_args = {**spec.head, **head} if same_type else head  # another head type: none of the defaults apply
    model = AudioModel(spec, inp, backbone, build_head(backbone.dim, n_classes, **head_args),
                       {"n_classes": n_classes, **kwargs}, head_args)
    if pretrained:
        from earshot.models.pretrained import load_pretrained

        load_pretrained(model, pretrained)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
