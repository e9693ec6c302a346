"""The expression embedding network: the workflow's frame CNN (its trunk) and a small head
giving a ``dim``-d (16) L2-normalised vector.

The network splits in two: :meth:`Embedder.frozen` (the trunk up to where it is tuned; it
never changes, so a fit computes it once per face and caches it) and :meth:`Embedder.tail`
(what trains: the tuned part of the trunk, the head, the normalisation).  ``tune``:

``none``   the trunk is frozen; the head reads its named ``inputs`` layers (``fc`` the VGG
           bottleneck, ``pool`` the ResNet one, ``logits``, ``pool<k>`` / ``stage<k>``)
``fc``     (vgg) the trunk's bottleneck layer trains too: the cache holds the last stage's
           pooled maps
``block``  the last convolutional stage (and, for vgg, the bottleneck layer) trains too:
           the cache holds the stage before it

The saved state (``.pt``) holds trunk and head, so the fit's JSON + ``.pt`` are all an
extractor, a bundle or a search needs (:func:`load`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emoflow.errors import EmoflowError
from emoflow.nets.frame import build

TUNES = ("none", "fc", "block")


def load_trunk(meta_path: str | Path):
    """(frame CNN network in eval mode, its fit's metadata) from a ``fit_frame_cnn`` JSON."""
    p = Path(meta_path)
    if not p.is_file() or not p.with_suffix(".pt").is_file():
        raise EmoflowError(f"{meta_path}: a frame CNN fit (JSON with its .pt beside it) is needed as the trunk")
    meta = json.loads(p.read_text())
    net = build(meta["arch"], len(meta["classes"]), size=meta["size"], **meta["net"])
    state = torch.load(p.with_suffix(".pt"), map_location="cpu", weights_only=True)
    net.load_state_dict(state["state_dict"])
    return net.eval(), meta


class Embedder(nn.Module):
    def __init__(
        self,
        trunk: nn.Module,
        arch: str,
        tune: str = "none",
        inputs=None,
        hidden: int = 256,
        dim: int = 16,
        dropout: float = 0.2,
    ):
        super().__init__()
        if tune not in TUNES:
            raise ValueError(f"tune: {tune!r} is not one of {TUNES}")
        if arch not in ("vgg", "resnet"):
            raise ValueError(f"unknown trunk architecture {arch!r}")
        if arch == "resnet" and tune == "fc":
            raise ValueError("tune: fc needs a vgg trunk (a resnet has no bottleneck layer); use none or block")
        self.trunk, self.arch, self.tune = trunk, arch, tune
        default = "fc" if arch == "vgg" else "pool"
        self.inputs = list(inputs or [default])
        if tune != "none":
            bad = [n for n in self.inputs if n not in (default, "logits")]
            if bad:
                raise ValueError(f"tune: {tune} reads the {default} (and logits) layers only, not {bad}")
        unknown = [n for n in self.inputs if n not in trunk.dims]
        if unknown:
            raise ValueError(f"unknown trunk layer(s) {unknown} (known: {sorted(trunk.dims)})")
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        for m in self._tuned():
            for p in m.parameters():
                p.requires_grad_(True)
        width = sum(trunk.dims[n] for n in self.inputs)
        layers: list[nn.Module] = [nn.BatchNorm1d(width)]
        if hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, dim)]
        else:
            layers += [nn.Linear(width, dim)]
        self.head = nn.Sequential(*layers)
        self.dim = dim

    def _tuned(self) -> list[nn.Module]:
        """The trunk modules that train (the rest stays as the frame CNN learnt it)."""
        t = self.trunk
        if self.tune == "none":
            return []
        out = [t.stages[-1]] if self.tune == "block" else []
        if self.arch == "vgg":
            out.append(t.fc)
        if "logits" in self.inputs:
            out.append(t.head)
        return out

    def train(self, mode: bool = True):
        """The frozen trunk stays in eval mode (its batch-norm statistics never move)."""
        super().train(mode)
        self.trunk.eval()
        if mode:
            for m in self._tuned():
                m.train()
        return self

    @torch.no_grad()
    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        """What the fit caches per face: the frozen part of the network's output."""
        t = self.trunk
        if self.tune == "none":
            f = t.features(x, tuple(self.inputs))
            return torch.cat([f[n] for n in self.inputs], 1)
        if self.arch == "vgg":
            stages = t.stages if self.tune == "fc" else t.stages[:-1]
            for stage in stages:
                x = F.max_pool2d(stage(x), 2)
            return x.flatten(1) if self.tune == "fc" else x
        x = t.stem(x)
        for stage in t.stages[:-1]:
            x = stage(x)
        return x

    def tail(self, c: torch.Tensor) -> torch.Tensor:
        """The trained part: cached values -> L2-normalised embedding."""
        t = self.trunk
        if self.tune == "none":
            h = c
        else:
            if self.arch == "vgg":
                x = F.max_pool2d(t.stages[-1](c), 2) if self.tune == "block" else c
                bottleneck = t.fc(x)
            else:
                bottleneck = t.stages[-1](c).mean((2, 3))
            parts = {"fc": bottleneck, "pool": bottleneck}
            if "logits" in self.inputs:
                parts["logits"] = t.head(bottleneck)
            h = torch.cat([parts[n] for n in self.inputs], 1)
        return F.normalize(self.head(h), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.frozen(x))


def spec(meta: dict) -> dict:
    """The keyword arguments of :class:`Embedder` recorded in a fit's metadata."""
    h = meta["head"]
    return {"tune": h["tune"], "inputs": h["inputs"], "hidden": h["hidden"], "dim": h["dim"], "dropout": h["dropout"]}


def from_meta(meta: dict) -> Embedder:
    tr = meta["trunk"]
    trunk = build(tr["arch"], len(tr["classes"]), size=tr["size"], **tr["net"])
    return Embedder(trunk, tr["arch"], **spec(meta))


def load(meta_path: str | Path, device="cpu") -> tuple[Embedder, dict]:
    """(embedding network in eval mode on ``device``, the fit's metadata) from a fit's JSON."""
    p = Path(meta_path)
    if not p.is_file() or not p.with_suffix(".pt").is_file():
        raise EmoflowError(f"{meta_path}: no expression embedding fit (JSON with its .pt beside it)")
    meta = json.loads(p.read_text())
    net = from_meta(meta)
    state = torch.load(p.with_suffix(".pt"), map_location="cpu", weights_only=True)
    net.load_state_dict(state["state_dict"])
    return net.to(device).eval(), meta


def face_images(color: np.ndarray | None, grey: np.ndarray, framing: dict | None, size: int) -> np.ndarray:
    """Aligned crops -> the grey images the trunk saw in its fit: the central ``framing`` part
    of the colour crops (FER2013-trained trunks), else the grey crops, at ``size``."""
    from emoflow.features.face_images import central_crop, resize

    if framing:
        return resize(central_crop(color, framing["crop"], framing.get("center_y", 0.5)), size)
    return grey if grey.shape[1] == size else resize(grey, size)


@torch.no_grad()
def embed(
    net: Embedder,
    images: np.ndarray,
    mean: float,
    std: float,
    device="cpu",
    batch_size: int = 256,
    flip_tta: bool = False,
) -> np.ndarray:
    """(n, dim) float32 embeddings of uint8 grey images (n, s, s); ``flip_tta`` averages the
    embeddings of each image and its mirror image (then normalises again)."""
    from emoflow.nets.common import batches
    from emoflow.nets.train import to_tensor

    net.eval()
    out = []
    for s in batches(len(images), batch_size):
        x = to_tensor(images[s], mean, std, device)
        e = net(x)
        if flip_tta:
            e = F.normalize(e + net(x.flip(3)), dim=1)
        out.append(e.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, net.dim), np.float32)
