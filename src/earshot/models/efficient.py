"""Efficient 2-D log-mel CNNs: a small residual network and a depthwise-separable
(MobileNet-style) network. Both keep a time axis for frame logits."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from earshot.models.registry import register_model

FRONTEND = dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; ``stride`` 2 halves T and F."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class SeparableBlock(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride), 1x1 project (MobileNetV2)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Conv2dNet(nn.Module):
    """Stem conv, stages of ``block`` (first of each stage strided), frame embeddings by mean over F."""

    def __init__(self, n_classes: int, n_mels: int, block: type, widths: Sequence[int], depths: Sequence[int],
                 stem: int, dropout: float = 0.2):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        layers, cin = [], stem
        for w, d in zip(widths, depths):
            for i in range(d):
                layers.append(block(cin, w, 2 if i == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, n_classes)
        self.min_frames = 2 ** len(widths)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> frame embeddings ``(B, T', D)``."""
        x = self.bn0(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # per-band BN
        x = self.stages(self.stem(x.unsqueeze(1)))  # (B, D, T', F')
        return x.mean(3).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] < self.min_frames:
            x = F.pad(x, (0, 0, 0, self.min_frames - x.shape[1]))
        h = self.forward_features(x)
        pooled = h.amax(1) + h.mean(1)
        return {"clip_logits": self.head(self.dropout(pooled)), "frame_logits": self.head(h), "embedding": pooled}


@register_model(input="logmel", frontend=FRONTEND)
def resnet_small(n_classes: int, n_mels: int = 64, dropout: float = 0.2, **kw) -> nn.Module:
    """Small ResNet: 4 stages of 2 basic blocks, 16-128 channels."""
    return Conv2dNet(n_classes, n_mels, BasicBlock, (16, 32, 64, 128), (2, 2, 2, 2), 16, dropout, **kw)


@register_model(input="logmel", frontend=FRONTEND)
def mobilenet_small(n_classes: int, n_mels: int = 64, dropout: float = 0.2, **kw) -> nn.Module:
    """Depthwise-separable inverted-residual CNN (MobileNetV2-style), 16-128 channels."""
    return Conv2dNet(n_classes, n_mels, SeparableBlock, (24, 48, 96, 128), (1, 2, 2, 1), 16, dropout, **kw)
