"""2-D CNNs for face-expression images (FER2013-style grey 48x48, or any square size):
a VGG-style and a ResNet-style network, plain PyTorch (no torchvision).

Both expose :meth:`features` returning named intermediate outputs, so the frame CNN
extractor can write bottleneck features from any of them:

``vgg``     stages of 2 (or ``convs``) 3x3 conv-BN-ReLU + max-pool; layers
            ``pool<k>`` (stage k's output, global-average-pooled), ``fc`` (the
            fully connected bottleneck after the flattened last stage), ``logits``.
``resnet``  a 3x3 stem and stages of basic residual blocks (the second and later
            stages stride 2); layers ``stage<k>`` (global-average-pooled), ``pool``
            (the last stage, pooled: the bottleneck), ``logits``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class VGG(nn.Module):
    def __init__(
        self,
        n_classes: int,
        in_channels: int = 1,
        size: int = 48,
        widths=(32, 64, 128, 256),
        convs: int = 2,
        fc: int = 256,
        dropout: float = 0.4,
    ):
        super().__init__()
        self.stages = nn.ModuleList()
        c = in_channels
        for w in widths:
            layers = [_conv_bn(c if i == 0 else w, w) for i in range(convs)]
            self.stages.append(nn.Sequential(*layers))
            c = w
        side = size // 2 ** len(widths)
        if side < 1:
            raise ValueError(f"input size {size} is too small for {len(widths)} pooling stages")
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * side * side, fc), nn.BatchNorm1d(fc), nn.ReLU(inplace=True)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(fc, n_classes))
        self.dims = {**{f"pool{k + 1}": w for k, w in enumerate(widths)}, "fc": fc, "logits": n_classes}

    def features(self, x: torch.Tensor, layers=("fc",)) -> dict[str, torch.Tensor]:
        out = {}
        for k, stage in enumerate(self.stages):
            x = F.max_pool2d(stage(x), 2)
            if f"pool{k + 1}" in layers:
                out[f"pool{k + 1}"] = x.mean((2, 3))
        h = self.fc(x)
        out["fc"] = h
        out["logits"] = self.head(h)
        return {name: out[name] for name in layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, ("logits",))["logits"]


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = _conv_bn(c_in, c_out, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.short = None
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        s = x if self.short is None else self.short(x)
        return F.relu(self.conv2(self.conv1(x)) + s, inplace=True)


class ResNet(nn.Module):
    def __init__(
        self,
        n_classes: int,
        in_channels: int = 1,
        size: int = 48,
        widths=(32, 64, 128, 256),
        blocks=(2, 2, 2, 2),
        dropout: float = 0.3,
    ):
        super().__init__()
        if len(blocks) != len(widths):
            raise ValueError("resnet: 'blocks' and 'widths' need one entry per stage")
        self.stem = _conv_bn(in_channels, widths[0])
        self.stages = nn.ModuleList()
        c = widths[0]
        for k, (w, n) in enumerate(zip(widths, blocks)):
            stride = 1 if k == 0 else 2
            self.stages.append(
                nn.Sequential(*[BasicBlock(c if i == 0 else w, w, stride if i == 0 else 1) for i in range(n)])
            )
            c = w
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, n_classes))
        self.dims = {**{f"stage{k + 1}": w for k, w in enumerate(widths)}, "pool": c, "logits": n_classes}

    def features(self, x: torch.Tensor, layers=("pool",)) -> dict[str, torch.Tensor]:
        out = {}
        x = self.stem(x)
        for k, stage in enumerate(self.stages):
            x = stage(x)
            if f"stage{k + 1}" in layers:
                out[f"stage{k + 1}"] = x.mean((2, 3))
        h = x.mean((2, 3))
        out["pool"] = h
        out["logits"] = self.head(h)
        return {name: out[name] for name in layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, ("logits",))["logits"]


ARCHS = {"vgg": VGG, "resnet": ResNet}


def build(arch: str, n_classes: int, in_channels: int = 1, size: int = 48, **kwargs) -> nn.Module:
    """A network by name (``vgg`` | ``resnet``) with its keyword options (widths, ...)."""
    try:
        cls = ARCHS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})") from None
    return cls(n_classes, in_channels=in_channels, size=size, **kwargs)
