"""VGG-style log-mel CNNs (the DCASE 2018 Task 2 baseline of seed 000, and smaller widths)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from earshot.models.registry import register_model


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 2x2 pooling: ``(B, Cin, T, F)`` -> ``(B, Cout, T/2, F/2)``."""

    def __init__(self, cin: int, cout: int, pool: str = "avg"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pool = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.pool(x)


class VggCnn(nn.Module):
    """Conv blocks over log-mel ``(B, T, F)``; frame logits at 1/2^k time resolution, clip logits
    from max-over-time of frame embeddings (mean over frequency)."""

    def __init__(self, n_classes: int, n_mels: int = 64, channels: Sequence[int] = (64, 128, 256, 512),
                 dropout: float = 0.2, pool: str = "avg"):
        super().__init__()
        chans = [1, *channels]
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.blocks = nn.Sequential(*[ConvBlock(a, b, pool) for a, b in zip(chans[:-1], chans[1:])])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], n_classes)
        self.embed_dim = chans[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> frame embeddings ``(B, T', D)``."""
        x = self.bn0(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # per-band BN
        x = self.blocks(x.unsqueeze(1))  # (B, D, T', F')
        return x.mean(dim=3).transpose(1, 2)  # (B, T', D)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] < 2 ** len(self.blocks):
            x = F.pad(x, (0, 0, 0, 2 ** len(self.blocks) - x.shape[1]))
        h = self.forward_features(x)  # (B, T', D)
        clip = self.head(self.dropout(h.max(dim=1).values))
        return {"clip_logits": clip, "frame_logits": self.head(h), "embedding": h.max(dim=1).values}


@register_model(input="logmel", frontend=dict(sample_rate=32000, n_fft=2048, hop_length=1024, n_mels=64, fmin=50.0))
def kong2018_cnn(n_classes: int, n_mels: int = 64, dropout: float = 0.2, **kw) -> nn.Module:
    """VGG-like CNN of the DCASE 2018 Task 2 PyTorch baseline: 4 blocks of 64-512 channels."""
    return VggCnn(n_classes, n_mels, (64, 128, 256, 512), dropout, **kw)


@register_model(input="logmel", frontend=dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0))
def cnn_small(n_classes: int, n_mels: int = 64, dropout: float = 0.2, **kw) -> nn.Module:
    """The same VGG design at a quarter of the width (16-128 channels): fast on a CPU."""
    return VggCnn(n_classes, n_mels, (16, 32, 64, 128), dropout, **kw)


@register_model(input="logmel", frontend=dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0))
def cnn_medium(n_classes: int, n_mels: int = 64, dropout: float = 0.2, **kw) -> nn.Module:
    """The VGG design at half width (32-256 channels)."""
    return VggCnn(n_classes, n_mels, (32, 64, 128, 256), dropout, **kw)
