"""The e2e network: one branch per modality, a fused head and auxiliary per-branch heads.

A branch standardises its frames (training-frame mean/std kept as buffers), maps them to
``hidden`` wide frames (audio: a 1-D convolutional front end that downsamples time by
``audio_stride``; face: Linear + ReLU), and pools them over time:

* ``attention``: a BiLSTM whose outputs are pooled by additive attention (:class:`AttentionPool`)
* ``mean``: the masked mean
* any head of :mod:`emoflow.classify.sequence` (``lstm``/``gru`` bidirectional, ``netvlad``,
  ``netrvlad``, ``softdbow``, ``netfv``)

The fused head reads every branch's pooled vector, each multiplied by the clip's presence
flag of that modality, and the flags themselves, so a clip without a face (or without audio)
still gets a prediction from what it has (training drops whole modalities at random to teach
it).  :func:`save` / :func:`load`: one torch file of state dicts and plain data (an ensemble's
members, their constructor arguments, metadata), read back with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emoflow.classify.sequence import make_head

FORMAT = "emoflow.e2e/1"
BRANCHES = ("audio", "face")


class AttentionPool(nn.Module):
    """``sum_t softmax_t(v . tanh(W h_t)) h_t`` over the real frames (masked)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)
        self.out_dim = dim

    def weights(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.score(torch.tanh(self.proj(h))).squeeze(-1)
        s = s.masked_fill(~mask, -1e9)
        return torch.softmax(s, dim=1) * mask.to(h.dtype)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bt,btd->bd", self.weights(h, mask), h)


class BiLSTMAttention(nn.Module):
    """BiLSTM over the real frames (a prefix of each row), then :class:`AttentionPool`."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * hidden, hidden)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.pool(out, mask)


class MeanPool(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def make_pool(name: str, dim: int, hidden: int) -> nn.Module:
    if name == "attention":
        return BiLSTMAttention(dim, hidden)
    if name == "mean":
        return MeanPool(dim)
    return make_head({"head": name, "hidden": hidden, "bidirectional": True, "clusters": 8}, dim)


class Branch(nn.Module):
    """Standardise -> front end (conv for audio, Linear for face) -> pooling."""

    def __init__(self, dim: int, kind: str, spec: dict):
        super().__init__()
        self.dim, self.kind = int(dim), kind
        h = int(spec["hidden"])
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))
        self.stride = int(spec["audio_stride"]) if kind == "audio" else 1
        if self.stride > 1:
            layers, width = [], dim
            for _ in range({2: 1, 4: 2}[self.stride]):
                layers += [nn.Conv1d(width, h, kernel_size=5, stride=2, padding=2), nn.ReLU()]
                width = h
            self.front = nn.Sequential(*layers)
        else:
            self.front = nn.Sequential(nn.Linear(dim, h), nn.ReLU())
        self.pool = make_pool(spec["pooling"], h, h)
        self.out_dim = self.pool.out_dim

    @torch.no_grad()
    def set_standardization(self, mean, std) -> None:
        self.feat_mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.feat_std.copy_(torch.as_tensor(np.asarray(std, np.float32)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (x - self.feat_mean) / self.feat_std * mask.unsqueeze(-1).to(x.dtype)
        if self.stride > 1:
            x = self.front(x.transpose(1, 2)).transpose(1, 2)
            lengths = mask.sum(1)
            for _ in range({2: 1, 4: 2}[self.stride]):
                lengths = (lengths + 1) // 2
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        else:
            x = self.front(x)
        x = x * mask.unsqueeze(-1).to(x.dtype)
        return self.pool(x, mask)


class E2ENet(nn.Module):
    """``forward({branch: (x (B,T,D), mask (B,T) bool, present (B,) float)})`` ->
    ``{"fused": logits, branch: logits...}``."""

    def __init__(self, dims: dict, n_classes: int, spec: dict):
        super().__init__()
        self.dims = {k: int(v) for k, v in dims.items() if v}
        if not self.dims:
            raise ValueError("E2ENet needs at least one branch")
        self.n_classes, self.spec = int(n_classes), dict(spec)
        self.branches = nn.ModuleDict({k: Branch(d, k, spec) for k, d in sorted(self.dims.items())})
        self.aux = nn.ModuleDict({k: nn.Linear(b.out_dim, n_classes) for k, b in self.branches.items()})
        width = sum(b.out_dim for b in self.branches.values()) + len(self.branches)
        p = float(spec["dropout"])
        self.fused = nn.Sequential(
            nn.Dropout(p),
            nn.Linear(width, int(spec["fused_hidden"])),
            nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(int(spec["fused_hidden"]), n_classes),
        )

    def config(self) -> dict:
        return {"dims": dict(self.dims), "n_classes": self.n_classes, "spec": self.spec}

    def head(self, pooled: dict, present: dict) -> torch.Tensor:
        """Fused logits from each branch's pooled vector (B, out_dim) and presence (B,)."""
        parts = []
        for k in self.branches:
            parts += [pooled[k] * present[k].unsqueeze(1), present[k].unsqueeze(1)]
        return self.fused(torch.cat(parts, dim=1))

    def forward(self, inputs: dict) -> dict:
        pooled, present, out = {}, {}, {}
        for k, branch in self.branches.items():
            x, mask, present[k] = inputs[k]
            pooled[k] = branch(x, mask)
            out[k] = self.aux[k](pooled[k])
        out["fused"] = self.head(pooled, present)
        return out


def save(members: list[tuple[E2ENet, dict]], path: str | Path, meta: dict | None = None) -> Path:
    """One torch file: format tag, per member (constructor arguments, CPU state dict, its
    fit record), ``meta``.  Plain data and tensors only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "members": [
            {
                "args": m.config(),
                "state_dict": {k: v.detach().cpu() for k, v in m.state_dict().items()},
                "record": dict(rec),
            }
            for m, rec in members
        ],
        "meta": dict(meta or {}),
    }
    torch.save(blob, path)
    return path


def load(path: str | Path, device: str = "cpu") -> tuple[list[E2ENet], dict]:
    """The ensemble's members (eval mode) and the file's meta; nothing but tensors and plain data is read."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not an e2e model file ({FORMAT})")
    members = []
    for m in blob["members"]:
        a = m["args"]
        net = E2ENet(a["dims"], a["n_classes"], a["spec"])
        net.load_state_dict(m["state_dict"])
        members.append(net.to(torch.device(device)).eval())
    return members, blob["meta"]


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over rows (weighted by ``weights`` when given) of ``-sum_c t_c log softmax(z)_c``."""
    per = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    if weights is None:
        return per.mean()
    return (per * weights).sum() / weights.sum().clamp_min(1e-6)
