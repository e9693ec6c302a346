"""A compact C3D-style 3-D CNN (Tran et al. 2015) for short face clips.

Input ``(batch, channels, frames, size, size)``.  One block per entry of ``channels``: a 3x3x3
convolution, batch norm, ReLU and a 2x2x2 max pool (time is pooled only while more than one
frame is left, space while more than one pixel is).  Then global average pooling, a linear
``emb_dim`` embedding, ReLU, dropout and the class layer.  ``embed`` gives the embedding
before its ReLU: after it, most units are zero on small training sets (51 of 256 ever active
on paired_av), before it every unit varies.

With the defaults (1 grey channel, 16 frames of 48x48, channels 16-32-64-128, 256-d
embedding): 16x48x48 -> 8x24x24 -> 4x12x12 -> 2x6x6 -> 1x3x3, about 0.3 M parameters and
0.13 GMAC per clip.
"""

from __future__ import annotations

import torch
from torch import nn


def pools(frames: int, size: int, n_blocks: int) -> list[tuple[int, int, int]]:
    """Each block's max-pool kernel: 2 along an axis while that axis is still longer than 1."""
    out = []
    for _ in range(n_blocks):
        kt, ks = (2 if frames > 1 else 1), (2 if size > 1 else 1)
        out.append((kt, ks, ks))
        frames, size = frames // kt, size // ks
    return out


class C3D(nn.Module):
    def __init__(
        self,
        n_classes: int,
        frames: int = 16,
        size: int = 48,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        emb_dim: int = 256,
        dropout: float = 0.3,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for out, pool in zip(channels, pools(frames, size, len(channels))):
            layers += [
                nn.Conv3d(c, out, 3, padding=1, bias=False),
                nn.BatchNorm3d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool3d(pool),
            ]
            c = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.embedding = nn.Sequential(nn.Linear(c, emb_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(emb_dim, n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding[0](self.features(x))  # the linear layer, before the ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(self.features(x)))
