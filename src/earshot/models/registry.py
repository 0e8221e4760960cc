"""Models register by name; ``create_model`` builds the backbone with its front-end.

A registered builder returns a backbone taking features ``(B, T, F)`` (log-mel input) or a
waveform ``(B, N)`` and returning a dict with ``clip_logits`` ``(B, C)`` and, where it keeps
time, ``frame_logits`` ``(B, T', C)``. :class:`AudioModel` puts the front-end and its
normalisation in front, so the whole graph runs from a waveform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

import torch
from torch import nn

from earshot.features.frontends import LogMel, LogMelConfig, Normalize


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before it is built."""

    name: str
    builder: Callable[..., nn.Module]
    input: str  # "logmel" or "waveform"
    frontend: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def frontend_config(self, **overrides: Any) -> LogMelConfig:
        return LogMelConfig(**{**self.frontend, **overrides})


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(input: str = "logmel", frontend: dict[str, Any] | None = None) -> Callable:
    """Decorator: register ``fn(n_classes, n_mels, **kwargs) -> nn.Module`` under its name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[fn.__name__] = ModelSpec(fn.__name__, fn, input, dict(frontend or {}), doc[0] if doc else "")
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
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _load_families() -> None:
    from earshot.models import cnn, cnn1d, efficient  # noqa: F401  (register on import)


class AudioModel(nn.Module):
    """Front-end + normalisation + backbone: waveform ``(B, N)`` -> dict of logits."""

    def __init__(self, name: str, backbone: nn.Module, frontend: LogMelConfig, model_args: dict[str, Any]):
        super().__init__()
        self.name = name
        self.model_args = dict(model_args)
        self.frontend_config = frontend
        self.frontend = LogMel(frontend)
        self.norm = Normalize(frontend.n_mels)
        self.backbone = backbone

    @property
    def sample_rate(self) -> int:
        return self.frontend_config.sample_rate

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``(B, T, F)`` from a waveform ``(B, N)``."""
        return self.norm(self.frontend(wave))

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.backbone(self.features(wave))

    def forward_features(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the backbone on un-normalised log-mel ``(B, T, F)`` (e.g. read from a cache)."""
        return self.backbone(self.norm(feats))

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (weights aside)."""
        return {"name": self.name, "args": self.model_args, "frontend": asdict(self.frontend_config)}


def create_model(name: str, n_classes: int, frontend: dict[str, Any] | LogMelConfig | None = None,
                 **kwargs: Any) -> AudioModel:
    """Build a registered model. ``frontend`` overrides the model's default front-end settings."""
    spec = model_spec(name)
    if isinstance(frontend, LogMelConfig):
        fe = replace(frontend)
    else:
        given = dict(frontend or {})
        allowed = {f.name for f in fields(LogMelConfig)}
        bad = set(given) - allowed
        if bad:
            raise KeyError(f"unknown front-end setting(s) {sorted(bad)}; known: {sorted(allowed)}")
        fe = spec.frontend_config(**given)
    backbone = spec.builder(n_classes=n_classes, n_mels=fe.n_mels, **kwargs)
    return AudioModel(name, backbone, fe, {"n_classes": n_classes, **kwargs})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
