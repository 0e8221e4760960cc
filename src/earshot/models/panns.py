"""PANNs (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks"): Cnn6, Cnn10,
Cnn14, MobileNetV1 and MobileNetV2, written so that the published AudioSet checkpoints load.

The parameter names and shapes follow the public definitions (``qiuqiangkong/audioset_tagging_cnn``,
``pytorch/models.py``): ``bn0``, ``conv_block<i>.{conv1,bn1,conv2,bn2}`` or ``features.<i>``, then
``fc1`` and ``fc_audioset``. In earshot the log-mel front-end is our own :class:`LogMel` with
PANNs' settings (32 kHz, n_fft 1024, hop 320, 64 mels, 50-14000 Hz, reflect padding); ``bn0``
(a per-mel-band batch norm, part of the backbone here) replaces the fitted per-band statistics.
``fc1`` is the head's hidden layer and ``fc_audioset`` its classifier, so the head pools the last
feature map over time (max + mean), then ``relu(fc1)``, then the classifier, as PANNs does.

:func:`convert_panns` maps a published state dict onto these names; see
:mod:`earshot.models.pretrained` for the strict check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from earshot.errors import EarshotError
from earshot.models.pretrained import Converted
from earshot.models.registry import register_model

#: The front-end every published PANNs checkpoint (the 32 kHz ones) was trained with.
PANNS_FRONTEND: dict[str, Any] = {"sample_rate": 32000, "n_fft": 1024, "hop_length": 320, "n_mels": 64,
                                  "fmin": 50.0, "fmax": 14000.0, "pad_mode": "reflect"}


def _init(module: nn.Module) -> None:
    """PANNs' initialisation: Xavier-uniform weights and zero biases; batch norms at identity."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU (``kernel=3``), or one 5x5 (``kernel=5``, Cnn6); then average pooling."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv2d(c_in, c_out, kernel, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.double = kernel == 3
        if self.double:
            self.conv2 = nn.Conv2d(c_out, c_out, kernel, padding=pad, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.double:
            x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool != (1, 1) else x


class _PannsBase(nn.Module):
    """``(B, T, F)`` log-mel -> ``bn0`` over mel bands -> 2-D trunk ``(B, C, T', F')`` -> mean over
    frequency -> ``(B, T', C)``."""

    def __init__(self, n_features: int, dim: int, time_stride: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(n_features)
        self.dim = dim
        self.time_stride = time_stride
        self.min_frames = time_stride

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, T, F)
        x = self.bn0(feats.transpose(1, 2)[..., None])  # mel bands as channels: (B, F, T, 1)
        x = x[..., 0].transpose(1, 2)[:, None]  # (B, 1, T, F)
        x = self.trunk(x)  # (B, C, T', F')
        return x.mean(dim=3).transpose(1, 2)  # (B, T', C)


class PannsCnn(_PannsBase):
    """Cnn6 / Cnn10 / Cnn14: conv blocks with 2x2 average pooling (the last of Cnn14's: none) and
    dropout 0.2 after each."""

    def __init__(self, n_features: int, channels: tuple[int, ...], kernel: int, last_unpooled: bool,
                 dropout: float = 0.2):
        pooled = len(channels) - int(last_unpooled)
        super().__init__(n_features, channels[-1], 2**pooled)
        self.pools = [(2, 2)] * pooled + [(1, 1)] * int(last_unpooled)
        self.dropout = dropout
        c_in = 1
        for i, c in enumerate(channels, 1):
            self.add_module(f"conv_block{i}", ConvBlock(c_in, c, kernel))
            c_in = c
        _init(self)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for i, pool in enumerate(self.pools, 1):
            x = F.dropout(getattr(self, f"conv_block{i}")(x, pool), self.dropout, self.training)
        return x


def _conv_bn(c_in: int, c_out: int, stride: int, act: type[nn.Module]) -> nn.Sequential:
    # PANNs' MobileNets pool after the convolution instead of striding it (index 1: no parameters)
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.AvgPool2d(stride), nn.BatchNorm2d(c_out),
                         act())


def _conv_dw(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False), nn.AvgPool2d(stride),
                         nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class PannsMobileNetV1(_PannsBase):
    """MobileNetV1 as in PANNs: depthwise-separable convolutions, 5 stride-2 stages (32x in time)."""

    def __init__(self, n_features: int):
        super().__init__(n_features, 1024, 32)
        plan = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
                *[(512, 512, 1)] * 5, (512, 1024, 2), (1024, 1024, 1)]
        self.features = nn.Sequential(_conv_bn(1, 32, 2, nn.ReLU), *[_conv_dw(a, b, s) for a, b, s in plan])
        _init(self)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand (1x1), depthwise 3x3 with average pooling, project (1x1)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = round(c_in * expand)
        self.residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), nn.AvgPool2d(stride),
                   nn.BatchNorm2d(hidden), nn.ReLU6(), nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),
                   nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class PannsMobileNetV2(_PannsBase):
    """MobileNetV2 as in PANNs (width 1.0, 1280 channels at the end, 32x in time)."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 2), (6, 160, 3, 1),
                (6, 320, 1, 1))  # expansion, channels, repeats, stride

    def __init__(self, n_features: int):
        super().__init__(n_features, 1280, 32)
        layers: list[nn.Module] = [_conv_bn(1, 32, 2, nn.ReLU6)]
        c_in = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        layers.append(nn.Sequential(nn.Conv2d(c_in, 1280, 1, 1, 0, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        _init(self)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


# ---- published checkpoints -> earshot names ---------------------------------------------------

#: PANNs' own front-end buffers: earshot computes the log-mel itself, so they are checked and dropped.
FRONTEND_KEYS = ("spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
                 "logmel_extractor.melW")


def _check_frontend(state: dict[str, torch.Tensor], model: Any) -> None:
    """The checkpoint's mel filterbank must be the one our front-end computes: otherwise the
    checkpoint was trained on other settings (e.g. the 16 kHz Cnn14) and would silently degrade."""
    from earshot.features.frontends import mel_filterbank

    c = model.frontend_config
    if "logmel_extractor.melW" not in state:
        return
    mel_w = state["logmel_extractor.melW"].float().numpy()  # (n_freq, n_mels)
    ours = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax).T
    if mel_w.shape != ours.shape or float(np.abs(mel_w - ours).max()) > 1e-4 * float(np.abs(ours).max()):
        raise EarshotError(
            f"the checkpoint's mel filterbank {tuple(mel_w.shape)} differs from this model's front-end "
            f"(sample_rate={c.sample_rate}, n_fft={c.n_fft}, n_mels={c.n_mels}, fmin={c.fmin}, fmax={c.fmax}, "
            f"filterbank {tuple(ours.shape)}): it was trained with other front-end settings; set model.frontend "
            "to match them (PANNs' 16 kHz checkpoints use sample_rate=16000, n_fft=512, hop_length=160, fmax=8000)")


def convert_panns(state: dict[str, torch.Tensor], model: Any) -> Converted:
    """A published PANNs state dict in earshot's names, and the keys left out with the reason."""
    _check_frontend(state, model)
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    dropped: dict[str, str] = {}
    for k, v in state.items():
        if k in FRONTEND_KEYS:
            dropped[k] = "PANNs' front-end buffer (earshot computes the same log-mel itself)"
        elif k.startswith("fc1."):
            mapped["head.hidden.1." + k[4:]] = v
        elif k.startswith("fc_audioset."):
            target = "head.classifier." + k[len("fc_audioset."):]
            if target in ours and ours[target].shape != v.shape:
                dropped[k] = (f"AudioSet classifier {tuple(v.shape)}: this model has a new "
                              f"{ours['head.classifier.weight'].shape[0]}-class head, trained from scratch")
            else:
                mapped[target] = v
        else:
            mapped["backbone." + k] = v
    return Converted(mapped, dropped, ("head.classifier.",) if "fc_audioset.weight" in dropped else ())


def _head(width: int, input_dropout: float = 0.5) -> dict[str, Any]:
    # PANNs' clip head: max + mean over time, dropout, relu(fc1), then the classifier
    return {"type": "clip", "pool": "max+mean", "hidden": width, "input_dropout": input_dropout}


@register_model(frontend=PANNS_FRONTEND, head=_head(512), normalize=False, convert=convert_panns)
def panns_cnn6(n_features: int) -> nn.Module:
    """PANNs Cnn6 (4 blocks of one 5x5 conv, 512-d; AudioSet mAP 0.343 published)"""
    return PannsCnn(n_features, (64, 128, 256, 512), kernel=5, last_unpooled=False)


@register_model(frontend=PANNS_FRONTEND, head=_head(512), normalize=False, convert=convert_panns)
def panns_cnn10(n_features: int) -> nn.Module:
    """PANNs Cnn10 (4 blocks of two 3x3 convs, 512-d; AudioSet mAP 0.380 published)"""
    return PannsCnn(n_features, (64, 128, 256, 512), kernel=3, last_unpooled=False)


# NCHW: in channels_last Cnn14 ran 0.85x as fast in two runs of benchmarks/model_rtf.py, the one model slower
@register_model(frontend=PANNS_FRONTEND, head=_head(2048), normalize=False, convert=convert_panns, channels_last=False)
def panns_cnn14(n_features: int) -> nn.Module:
    """PANNs Cnn14 (6 blocks of two 3x3 convs, 2048-d, 80 M parameters; AudioSet mAP 0.431 published)"""
    return PannsCnn(n_features, (64, 128, 256, 512, 1024, 2048), kernel=3, last_unpooled=True)


@register_model(frontend=PANNS_FRONTEND, head=_head(1024), normalize=False, convert=convert_panns)
def panns_mobilenetv1(n_features: int) -> nn.Module:
    """PANNs MobileNetV1 (1024-d, 4.8 M parameters; AudioSet mAP 0.389 published)"""
    return PannsMobileNetV1(n_features)


@register_model(frontend=PANNS_FRONTEND, head={**_head(1024), "input_dropout": 0.0}, normalize=False,
                convert=convert_panns)
def panns_mobilenetv2(n_features: int) -> nn.Module:
    """PANNs MobileNetV2 (1280-d, 4.1 M parameters; AudioSet mAP 0.383 published)"""
    return PannsMobileNetV2(n_features)
