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
    """``(B, T, F)`` -> Conv1d stack over T (F as channels) -> max+mean over time -> classifier."""

    def __init__(self, n_classes: int, n_mels: int = 64, channels: Sequence[int] = (64, 128, 256),
                 kernel: int = 5, dropout: float = 0.0, dense: int = 0):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(n_mels)]
        cin = n_mels
        for c in channels:
            layers += [nn.Conv1d(cin, c, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(c), nn.ReLU(),
                       nn.MaxPool1d(2, ceil_mode=True)]
            cin = c
        self.body = nn.Sequential(*layers)
        head: list[nn.Module] = []
        if dense:
            head += [nn.Dropout(dropout), nn.Linear(2 * cin, dense), nn.ReLU()]
            cin_head = dense
        else:
            cin_head = 2 * cin
        head += [nn.Dropout(dropout), nn.Linear(cin_head, n_classes)]
        self.head = nn.Sequential(*head)
        self.frame_head = nn.Linear(cin, n_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> ``(B, D, T')``."""
        return self.body(x.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.forward_features(x)  # (B, D, T')
        pooled = torch.cat([h.amax(-1), h.mean(-1)], dim=1)  # (B, 2D)
        return {"clip_logits": self.head(pooled), "frame_logits": self.frame_head(h.transpose(1, 2)),
                "embedding": pooled}


@register_model(input="logmel", frontend=FRONTEND)
def cnn1d(n_classes: int, n_mels: int = 64, **kw) -> nn.Module:
    """Seed 004's 1-D CNN over log-mel time (mel bands as channels), no dropout."""
    return Cnn1d(n_classes, n_mels, dropout=0.0, **kw)


@register_model(input="logmel", frontend=FRONTEND)
def cnn1d_dropout(n_classes: int, n_mels: int = 64, dropout: float = 0.5, **kw) -> nn.Module:
    """Seed 004's 1-D CNN with dropout before the classifier."""
    return Cnn1d(n_classes, n_mels, dropout=dropout, **kw)


@register_model(input="logmel", frontend=FRONTEND)
def cnn1d_dense_dropout(n_classes: int, n_mels: int = 64, dropout: float = 0.5, dense: int = 256, **kw) -> nn.Module:
    """Seed 004's 1-D CNN with a dense layer and dropout before the classifier."""
    return Cnn1d(n_classes, n_mels, dropout=dropout, dense=dense, **kw)
