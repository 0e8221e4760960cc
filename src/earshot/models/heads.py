"""Heads: frame embeddings ``(B, T', D)`` in, ``clip_logits`` ``(B, C)`` and ``frame_logits`` ``(B, T', C)`` out.

Every backbone shares these, so any backbone can tag, classify or (later) detect:

- :class:`ClipHead` pools the embeddings over time (max, mean, their sum or their concatenation),
  then an optional hidden layer, dropout and a linear classifier. Frame logits apply the same
  layers to each frame.
- :class:`FramePoolHead` classifies every frame, then pools the frame decisions into a clip
  decision: mean or max of the frame logits, attention (per-class attention weights over the
  frame logits), or linear-softmax (Wang et al. 2019, over frame probabilities).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from earshot.errors import ConfigError

EmbeddingPool = Literal["max", "mean", "max+mean", "max|mean"]
FramePool = Literal["mean", "max", "attention", "linear_softmax"]


def _pool(h: torch.Tensor, how: str) -> torch.Tensor:
    """Pool ``(B, T, D)`` over time; ``max|mean`` concatenates to ``(B, 2D)``."""
    if how == "max":
        return h.amax(1)
    if how == "mean":
        return h.mean(1)
    if how == "max+mean":
        return h.amax(1) + h.mean(1)
    return torch.cat([h.amax(1), h.mean(1)], dim=-1)


class ClipHead(nn.Module):
    """Pooled embedding -> [dropout -> linear -> (BN) -> ReLU] -> dropout -> linear.

    ``hidden=0`` leaves out the bracketed hidden layer; ``hidden=-1`` makes it as wide as its input.
    """

    def __init__(self, dim: int, n_classes: int, pool: EmbeddingPool = "max", hidden: int = 0,
                 hidden_norm: bool = False, dropout: float = 0.0, input_dropout: float = 0.0):
        super().__init__()
        if pool not in ("max", "mean", "max+mean", "max|mean"):
            raise ConfigError(f"model.head.pool: {pool!r} is not one of max, mean, max+mean, max|mean")
        self.pool = pool
        width = 2 * dim if pool == "max|mean" else dim
        layers: list[nn.Module] = []
        hidden = width if hidden < 0 else hidden  # -1: as wide as the pooled embedding
        if hidden:
            layers += [nn.Dropout(input_dropout), nn.Linear(width, hidden)]
            layers += [nn.BatchNorm1d(hidden)] if hidden_norm else []
            layers += [nn.ReLU()]
            width = hidden
        self.hidden = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, n_classes)

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.hidden(x)))

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t, d = h.shape
        pooled = _pool(h, self.pool)  # (B, D) or (B, 2D)
        frames = torch.cat([h, h], -1) if self.pool == "max|mean" else h  # a frame pools to itself
        frame_logits = self._classify(frames.reshape(b * t, -1)).reshape(b, t, -1)
        return {"clip_logits": self._classify(pooled), "frame_logits": frame_logits, "embedding": pooled}


class FramePoolHead(nn.Module):
    """Frame classifier, then the frame decisions pooled into a clip decision."""

    def __init__(self, dim: int, n_classes: int, pool: FramePool = "attention", dropout: float = 0.0):
        super().__init__()
        if pool not in ("mean", "max", "attention", "linear_softmax"):
            raise ConfigError(f"model.head.pool: {pool!r} is not one of mean, max, attention, linear_softmax")
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, n_classes)
        self.attention = nn.Linear(dim, n_classes) if pool == "attention" else None

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.dropout(h)
        frame = self.classifier(x)  # (B, T, C)
        if self.pool == "mean":
            clip = frame.mean(1)
        elif self.pool == "max":
            clip = frame.amax(1)
        elif self.pool == "attention":
            assert self.attention is not None
            weights = self.attention(x).softmax(dim=1)  # (B, T, C): per-class weights over time
            clip = (weights * frame).sum(1)
        else:  # linear-softmax over frame probabilities, returned as a logit
            p = frame.sigmoid()
            clip_p = (p * p).sum(1) / p.sum(1).clamp_min(1e-7)
            clip_p = clip_p.clamp(1e-7, 1 - 1e-7)
            clip = torch.log(clip_p) - torch.log1p(-clip_p)
        return {"clip_logits": clip, "frame_logits": frame, "embedding": h.mean(1)}


HEADS: dict[str, type[nn.Module]] = {"clip": ClipHead, "frame": FramePoolHead}


def build_head(dim: int, n_classes: int, type: str = "clip", **kwargs: Any) -> nn.Module:
    """``type=clip`` (pool embeddings, then classify) or ``type=frame`` (classify frames, then pool)."""
    if type not in HEADS:
        raise ConfigError(f"model.head.type: {type!r} is not one of {sorted(HEADS)}")
    try:
        return HEADS[type](dim, n_classes, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model.head: {e}") from None
