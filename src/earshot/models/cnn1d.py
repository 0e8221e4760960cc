"""1-D convolutions over log-mel time with mel bands as channels (seed 004, the Kaggle Freesound
Keras model), in three variants: plain, dropout before the classifier, and an extra dense layer
with dropout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from earshot.models.registry import register_model

FRONTEND = dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0)


class Cnn1d(nn.Module):
    """``(B, T, F)`` -> Conv1d stack over T (mel bands as channels) -> frame embeddings ``(B, T / 8, D)``."""

    def __init__(self, n_features: int = 64, channels: Sequence[int] = (64, 128, 256), kernel: int = 5):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(n_features)]
        cin = n_features
        for c in channels:
            layers += [nn.Conv1d(cin, c, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(c), nn.ReLU(),
                       nn.MaxPool1d(2, ceil_mode=True)]
            cin = c
        self.body = nn.Sequential(*layers)
        self.dim = cin
        self.time_stride = 2 ** len(channels)
        self.min_frames = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.transpose(1, 2)).transpose(1, 2)  # (B, T', D)


@register_model(input="logmel", frontend=FRONTEND, head=dict(pool="max|mean"))
def cnn1d(n_features: int = 64, **kw) -> nn.Module:
    """Seed 004's 1-D CNN over log-mel time (mel bands as channels), no dropout."""
    return Cnn1d(n_features, **kw)


@register_model(input="logmel", frontend=FRONTEND, head=dict(pool="max|mean", dropout=0.5))
def cnn1d_dropout(n_features: int = 64, **kw) -> nn.Module:
    """Seed 004's 1-D CNN with dropout before the classifier."""
    return Cnn1d(n_features, **kw)


@register_model(input="logmel", frontend=FRONTEND,
                head=dict(pool="max|mean", hidden=256, input_dropout=0.5, dropout=0.5))
def cnn1d_dense_dropout(n_features: int = 64, **kw) -> nn.Module:
    """Seed 004's 1-D CNN with a dense layer and dropout before the classifier."""
    return Cnn1d(n_features, **kw)
