"""Torch sequence classifiers on variable-length frame-feature sequences.

Each video is an ``(n_i, d)`` float array of per-frame features (``n_i >= 1``), e.g. the
frame CNN embeddings of its face track.  A :class:`SequenceClassifier` normalises the
frames, pools them with a *head* into one vector and maps it to class logits, as in the
EmotiW literature (an LSTM over frame CNN features) and the learnable pooling family of
Miech et al. (NetVLAD, NetRVLAD, soft bag of words, NetFV).

Heads (``forward(x, mask) -> (B, out_dim)``, ``x`` (B, T, D), ``mask`` (B, T) bool with
True on real frames; padded positions never influence the output):

* :class:`NetVLAD`   -- soft-assigned residuals ``sum_t a_tk (x_t - c_k)`` (K*D)
* :class:`NetRVLAD`  -- residual-less ``sum_t a_tk x_t`` (K*D)
* :class:`SoftDBoW`  -- soft bag of words ``sum_t a_tk`` (K)
* :class:`NetFV`     -- first and second order Fisher-vector-like statistics (2*K*D)
* :class:`RecurrentHead` -- last valid hidden state of an LSTM/GRU (hidden * directions)
* :class:`MeanHead`  -- masked mean of the frames (D), a baseline

Model spec (a dict, JSON-serialisable; defaults in :data:`SPEC_DEFAULTS`):

* ``head``: ``netvlad`` | ``netrvlad`` | ``softdbow`` | ``netfv`` | ``lstm`` | ``gru`` | ``mean``
* ``clusters`` (cluster heads, default 16), ``hard`` (one-hot nearest-centre assignment),
  ``normalize`` (intra-normalisation + L2; default True)
* ``hidden`` (recurrent heads, default 128), ``layers`` (1), ``bidirectional`` (False)
* ``norm``: ``standardize`` (mean/std of the training frames, stored as buffers; default)
  | ``layernorm`` | ``none``
* ``frame_dropout`` (on the frames, default 0), ``dropout`` (on the pooled vector, 0.25)
* ``proj``: width of a Linear+ReLU after the head (0: none), ``gating``: context gating
  ``v * sigmoid(W v + b)`` on the pooled (or projected) vector (default False)

:func:`fit` trains one model (AdamW, cross-entropy, random crops/subsampling to
``max_len`` frames, k-means initialised cluster centres, best epoch by validation
accuracy, early stopping); :func:`predict_proba` gives softmax probabilities;
:func:`save`/:func:`load` keep state dict, constructor arguments and metadata in one file.

References: R. Arandjelovic et al., "NetVLAD: CNN architecture for weakly supervised
place recognition", CVPR 2016; A. Miech, I. Laptev, J. Sivic, "Learnable pooling with
context gating for video classification", arXiv:1706.06905, 2017; EmotiW challenge
entries using LSTMs on frame CNN features (e.g. Fan et al., ICMI 2016).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from emoflow.nets import loop
from emoflow.nets.common import batches, pick_device, setup_torch

CLUSTER_HEADS = ("netvlad", "netrvlad", "softdbow", "netfv")
RECURRENT_HEADS = ("lstm", "gru")
HEADS = (*CLUSTER_HEADS, *RECURRENT_HEADS, "mean")

SPEC_DEFAULTS: dict = {
    "clusters": 16,
    "hard": False,
    "normalize": True,
    "hidden": 128,
    "layers": 1,
    "bidirectional": False,
    "norm": "standardize",
    "frame_dropout": 0.0,
    "dropout": 0.25,
    "proj": 0,
    "gating": False,
}

FORMAT = "emoflow.sequence/1"


# --------------------------------------------------------------------------- heads


class _ClusterHead(nn.Module):
    """Shared parts of the cluster pooling heads: a learned soft assignment
    ``softmax(x W + b)`` over ``clusters`` (or, with ``hard``, one-hot to the nearest of
    the centres ``c``), masked so padded frames get no weight."""

    residual_centers = False  # centres take part in the output (NetVLAD, NetFV) -> learned

    def __init__(self, dim: int, clusters: int, hard: bool = False, normalize: bool = True):
        super().__init__()
        if clusters < 1:
            raise ValueError(f"clusters must be >= 1, got {clusters}")
        self.dim, self.clusters, self.hard, self.normalize = int(dim), int(clusters), bool(hard), bool(normalize)
        self.assign = nn.Linear(dim, clusters)
        centers = torch.randn(clusters, dim) * 0.1
        if self.residual_centers:
            self.centers = nn.Parameter(centers)
        else:  # only used by hard assignment and to initialise ``assign``
            self.register_buffer("centers", centers)

    @torch.no_grad()
    def init_from_centers(self, centers, alpha: float | None = None, frames=None) -> float:
        """Set the centres and make the soft assignment ``softmax(-alpha ||x - c_k||^2)``
        (``W = 2 alpha c^T``, ``b = -alpha ||c||^2``).  Without ``alpha``: chosen from
        ``frames`` so that a median frame's nearest centre gets 10x the weight of the second
        nearest; 1 without frames.  Returns alpha."""
        c = torch.as_tensor(np.asarray(centers, dtype=np.float32)).to(self.centers.device)
        if c.shape != self.centers.shape:
            raise ValueError(f"centers of shape {tuple(c.shape)}, expected {tuple(self.centers.shape)}")
        if alpha is None:
            alpha = 1.0
            if frames is not None and self.clusters > 1:
                d2 = torch.cdist(torch.as_tensor(np.asarray(frames, dtype=np.float32)).to(c.device), c) ** 2
                two = d2.topk(2, dim=1, largest=False).values
                gap = float((two[:, 1] - two[:, 0]).median())
                alpha = math.log(10.0) / max(gap, 1e-6)
        self.centers.copy_(c)
        self.assign.weight.copy_(2.0 * alpha * c)
        self.assign.bias.copy_(-alpha * (c * c).sum(1))
        return float(alpha)

    def assignment(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, K) assignment weights, zero on padded frames."""
        if self.hard:
            c = self.centers
            d2 = (c * c).sum(1) - 2.0 * x @ c.T  # (B, T, K): squared distance less ||x||^2
            a = F.one_hot(d2.argmin(-1), self.clusters).to(x.dtype)
        else:
            a = torch.softmax(self.assign(x), dim=-1)
        return a * mask.unsqueeze(-1).to(x.dtype)

    def _norm(self, v: torch.Tensor) -> torch.Tensor:
        """Intra-normalisation (L2 per cluster, over the last axis) then L2 of the whole."""
        if not self.normalize:
            return v.flatten(1)
        return F.normalize(F.normalize(v, dim=-1).flatten(1), dim=1)


class NetVLAD(_ClusterHead):
    """``sum_t a_tk (x_t - c_k)`` per cluster, intra- and L2-normalised (out_dim K*D)."""

    residual_centers = True

    def __init__(self, dim: int, clusters: int, hard: bool = False, normalize: bool = True):
        super().__init__(dim, clusters, hard, normalize)
        self.out_dim = self.clusters * self.dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.assignment(x, mask)
        # sum_t a_tk x_t - (sum_t a_tk) c_k
        v = torch.einsum("btk,btd->bkd", a, x) - a.sum(1).unsqueeze(-1) * self.centers
        return self._norm(v)


class NetRVLAD(_ClusterHead):
    """Residual-less VLAD: ``sum_t a_tk x_t`` per cluster, normalised like NetVLAD (K*D)."""

    def __init__(self, dim: int, clusters: int, hard: bool = False, normalize: bool = True):
        super().__init__(dim, clusters, hard, normalize)
        self.out_dim = self.clusters * self.dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._norm(torch.einsum("btk,btd->bkd", self.assignment(x, mask), x))


class SoftDBoW(_ClusterHead):
    """Soft bag of words: ``sum_t a_tk`` (out_dim K), L2-normalised unless ``normalize=False``."""

    def __init__(self, dim: int, clusters: int, hard: bool = False, normalize: bool = True):
        super().__init__(dim, clusters, hard, normalize)
        self.out_dim = self.clusters

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.assignment(x, mask).sum(1)
        return F.normalize(h, dim=1) if self.normalize else h


class NetFV(_ClusterHead):
    """Fisher-vector-like pooling with learned centres ``c_k`` and diagonal std ``sigma_k``
    (``softplus(rho) + 1e-3``): ``sum_t a_tk (x_t - c_k) / sigma_k`` and
    ``sum_t a_tk ((x_t - c_k)^2 / sigma_k^2 - 1)``, concatenated (out_dim 2*K*D), each
    intra-normalised, then L2 of the whole."""

    residual_centers = True
    min_sigma = 1e-3

    def __init__(self, dim: int, clusters: int, hard: bool = False, normalize: bool = True):
        super().__init__(dim, clusters, hard, normalize)
        self.rho = nn.Parameter(torch.full((self.clusters, self.dim), float(_inv_softplus(1.0 - self.min_sigma))))
        self.out_dim = 2 * self.clusters * self.dim

    @property
    def sigma(self) -> torch.Tensor:
        return F.softplus(self.rho) + self.min_sigma

    @torch.no_grad()
    def set_sigma(self, sigma) -> None:
        """Set the (K, D) or broadcastable std (values below ``min_sigma`` are clamped)."""
        s = torch.as_tensor(np.asarray(sigma, dtype=np.float32)).to(self.rho.device).expand_as(self.rho)
        self.rho.copy_(_inv_softplus((s - self.min_sigma).clamp_min(1e-6)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.assignment(x, mask)  # (B, T, K)
        # expanded moments, so no (B, T, K, D) tensor is formed:
        # sum_t a (x - c) = S1 - n c,  sum_t a (x - c)^2 = S2 - 2 c S1 + n c^2
        n = a.sum(1).unsqueeze(-1)  # (B, K, 1)
        s1 = torch.einsum("btk,btd->bkd", a, x)
        s2 = torch.einsum("btk,btd->bkd", a, x * x)
        c, sigma = self.centers, self.sigma
        first = (s1 - n * c) / sigma
        second = (s2 - 2.0 * c * s1 + n * c * c) / (sigma * sigma) - n
        if not self.normalize:
            return torch.cat([first.flatten(1), second.flatten(1)], dim=1)
        v = torch.cat([F.normalize(first, dim=-1).flatten(1), F.normalize(second, dim=-1).flatten(1)], dim=1)
        return F.normalize(v, dim=1)


def _inv_softplus(y):
    """x with softplus(x) = y (y > 0)."""
    y = torch.as_tensor(y, dtype=torch.float32)
    return y + torch.log(-torch.expm1(-y))


class RecurrentHead(nn.Module):
    """LSTM/GRU over the real frames (packed by the mask's lengths, so the mask must mark a
    prefix of each row); output: the final hidden state of the last layer, the directions
    concatenated (forward: state after the last valid frame; backward: after frame 0)."""

    def __init__(self, dim: int, hidden: int, kind: str = "lstm", bidirectional: bool = False, layers: int = 1):
        super().__init__()
        if kind not in RECURRENT_HEADS:
            raise ValueError(f"kind must be one of {RECURRENT_HEADS}, got {kind!r}")
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        self.kind, self.dirs = kind, 2 if bidirectional else 1
        self.rnn = cls(dim, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.out_dim = hidden * self.dirs

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        h = h[0] if self.kind == "lstm" else h  # (layers*dirs, B, H), rows in input order
        return torch.cat(list(h[-self.dirs :]), dim=1)


class MeanHead(nn.Module):
    """Masked mean of the frames (out_dim D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = int(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def make_head(spec: dict, dim: int) -> nn.Module:
    """The pooling head named by ``spec["head"]`` for ``dim``-wide frames."""
    s = {**SPEC_DEFAULTS, **spec}
    name = str(s.get("head", "")).lower()
    if name in CLUSTER_HEADS:
        cls = {"netvlad": NetVLAD, "netrvlad": NetRVLAD, "softdbow": SoftDBoW, "netfv": NetFV}[name]
        return cls(dim, int(s["clusters"]), hard=bool(s["hard"]), normalize=bool(s["normalize"]))
    if name in RECURRENT_HEADS:
        return RecurrentHead(
            dim, int(s["hidden"]), kind=name, bidirectional=bool(s["bidirectional"]), layers=int(s["layers"])
        )
    if name == "mean":
        return MeanHead(dim)
    raise ValueError(f"unknown sequence head {spec.get('head')!r}; valid heads: {', '.join(HEADS)}")


# --------------------------------------------------------------------------- classifier


class ContextGating(nn.Module):
    """``v * sigmoid(W v + b)`` (Miech et al. 2017)."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v * torch.sigmoid(self.fc(v))


class SequenceClassifier(nn.Module):
    """Frame normalisation -> frame dropout -> head -> [Linear+ReLU] -> [context gating]
    -> dropout -> Linear to ``n_classes`` logits.  ``forward(x, mask)``."""

    def __init__(self, dim: int, n_classes: int, spec: dict):
        super().__init__()
        if "head" not in spec:
            raise ValueError(f"spec needs a 'head' ({', '.join(HEADS)})")
        self.spec = {**SPEC_DEFAULTS, **spec}
        self.dim, self.n_classes = int(dim), int(n_classes)
        norm = self.spec["norm"]
        if norm not in ("standardize", "layernorm", "none"):
            raise ValueError(f"norm must be standardize, layernorm or none, got {norm!r}")
        self.layernorm = nn.LayerNorm(dim) if norm == "layernorm" else None
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))
        self.frame_dropout = nn.Dropout(float(self.spec["frame_dropout"]))
        self.head = make_head(self.spec, dim)
        width = self.head.out_dim
        proj = int(self.spec["proj"] or 0)
        self.proj = nn.Sequential(nn.Linear(width, proj), nn.ReLU()) if proj > 0 else None
        width = proj if proj > 0 else width
        self.gate = ContextGating(width) if self.spec["gating"] else None
        self.dropout = nn.Dropout(float(self.spec["dropout"]))
        self.out = nn.Linear(width, n_classes)

    def config(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        return {"dim": self.dim, "n_classes": self.n_classes, "spec": dict(self.spec)}

    @torch.no_grad()
    def set_standardization(self, mean, std) -> None:
        self.feat_mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.feat_std.copy_(torch.as_tensor(np.asarray(std, dtype=np.float32)))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The frames as the head sees them (normalised; no dropout)."""
        if self.spec["norm"] == "standardize":
            return (x - self.feat_mean) / self.feat_std
        if self.layernorm is not None:
            return self.layernorm(x)
        return x

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.frame_dropout(self.prepare(x)) * mask.unsqueeze(-1).to(x.dtype)
        v = self.head(x, mask)
        if self.proj is not None:
            v = self.proj(v)
        if self.gate is not None:
            v = self.gate(v)
        return self.out(self.dropout(v))


# --------------------------------------------------------------------------- data


def _check_seqs(seqs: Sequence[np.ndarray], dim: int | None = None) -> list[np.ndarray]:
    out = []
    for i, s in enumerate(seqs):
        a = np.asarray(s, dtype=np.float32)
        if a.ndim != 2 or a.shape[0] < 1:
            raise ValueError(f"sequence {i}: expected an (n >= 1, d) array, got shape {a.shape}")
        if dim is not None and a.shape[1] != dim:
            raise ValueError(f"sequence {i}: {a.shape[1]} features, expected {dim}")
        dim = a.shape[1]
        out.append(a)
    if not out:
        raise ValueError("no sequences")
    return out


def _frame_index(n: int, max_len: int | None, rng: np.random.Generator | None) -> np.ndarray:
    """Which frames of an n-frame sequence to use: all when n <= max_len; at eval
    (``rng`` None) ``max_len`` uniformly spaced ones; in training either a random
    contiguous window or a uniform subsample with a random offset (even odds)."""
    if not max_len or n <= max_len:
        return np.arange(n)
    if rng is None:
        return np.linspace(0, n - 1, max_len).round().astype(np.int64)
    if rng.random() < 0.5:
        start = int(rng.integers(0, n - max_len + 1))
        return np.arange(start, start + max_len)
    step = n / max_len
    return np.minimum((np.arange(max_len) * step + rng.random() * step).astype(np.int64), n - 1)


def collate(seqs: Sequence[np.ndarray], max_len: int | None = None, rng: np.random.Generator | None = None):
    """Pad (left-aligned) to the longest chosen length: (B, T, D) float32 and (B, T) bool mask."""
    picked = [s[_frame_index(len(s), max_len, rng)] for s in seqs]
    t = max(len(p) for p in picked)
    x = np.zeros((len(picked), t, picked[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(picked), t), dtype=bool)
    for i, p in enumerate(picked):
        x[i, : len(p)] = p
        mask[i, : len(p)] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def kmeans(x: np.ndarray, k: int, iters: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding; returns (k, D) centres and labels.
    Fewer distinct points than k: the missing centres are jittered copies."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    c = np.empty((k, x.shape[1]))
    c[0] = x[rng.integers(n)]
    d2 = ((x - c[0]) ** 2).sum(1)
    for j in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        c[j] = x[rng.choice(n, p=p)]
        d2 = np.minimum(d2, ((x - c[j]) ** 2).sum(1))
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iters):
        dist = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]
        labels = dist.argmin(1)
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(0)
            else:  # empty cluster: restart it on a far point
                c[j] = x[dist.min(1).argmax()] + rng.normal(0, 1e-3, x.shape[1])
    return c.astype(np.float32), labels


@torch.no_grad()
def init_head(model: SequenceClassifier, train_seqs: Sequence[np.ndarray], seed: int = 0, sample: int = 20000) -> None:
    """Cluster heads: centres (and assignment, NetFV std) from k-means on up to ``sample``
    training frames as the head sees them."""
    head = model.head
    if not isinstance(head, _ClusterHead):
        return
    rng = np.random.default_rng(seed)
    frames = np.concatenate(list(train_seqs))
    if len(frames) > sample:
        frames = frames[rng.choice(len(frames), sample, replace=False)]
    dev = next(model.parameters()).device
    frames = model.prepare(torch.from_numpy(frames).to(dev)).cpu().numpy()
    k = head.clusters
    if len(frames) < k:  # too few frames: repeat with jitter
        frames = frames[rng.integers(len(frames), size=k)] + rng.normal(0, 1e-2, (k, frames.shape[1])).astype(
            np.float32
        )
    centers, labels = kmeans(frames, k, seed=seed)
    head.init_from_centers(centers, frames=frames)
    if isinstance(head, NetFV):
        sigma = np.ones_like(centers)
        for j in range(k):
            m = frames[labels == j]
            if len(m) > 1:
                sigma[j] = np.sqrt(((m - centers[j]) ** 2).mean(0)) + 1e-2
        head.set_sigma(sigma)


# --------------------------------------------------------------------------- training


def _evaluate(
    model: nn.Module,
    seqs: list[np.ndarray],
    y: np.ndarray | None,
    batch_size: int,
    max_len: int | None,
    device: torch.device,
) -> tuple[np.ndarray, float]:
    """Softmax probabilities and (if ``y``) the mean cross-entropy."""
    model.eval()
    probs, loss = [], 0.0
    with torch.no_grad():
        for sl in batches(len(seqs), batch_size):
            x, m = collate(seqs[sl], max_len)
            logits = model(x.to(device), m.to(device))
            if y is not None:
                loss += float(F.cross_entropy(logits, torch.as_tensor(y[sl], device=device), reduction="sum"))
            probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    return np.concatenate(probs), loss / len(seqs)


def fit(
    train_seqs: Sequence[np.ndarray],
    train_y,
    val_seqs: Sequence[np.ndarray] | None,
    val_y,
    n_classes: int,
    spec: dict,
    *,
    epochs: int = 40,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    max_len: int | None = 64,
    patience: int | None = 10,
    seed: int = 0,
    device: str = "auto",
    threads: int = 1,
    log: Callable[[str], None] | None = print,
) -> tuple[SequenceClassifier, list[dict]]:
    """Train a :class:`SequenceClassifier` with head ``spec`` and return it (eval mode, on
    the training device, weights of the best epoch by validation accuracy, ties to the
    lower validation loss) and the per-epoch history (epoch, loss, val_loss, val_acc,
    seconds).  Stops after ``patience`` epochs without a better epoch.  Without a
    validation part (``val_seqs`` None or empty) the last epoch is kept."""
    setup_torch(threads, seed)
    dev = pick_device(device)
    rng = np.random.default_rng(seed)
    train_seqs = _check_seqs(train_seqs)
    dim = train_seqs[0].shape[1]
    train_y = np.asarray(train_y, dtype=np.int64)
    if len(train_y) != len(train_seqs):
        raise ValueError(f"{len(train_seqs)} training sequences but {len(train_y)} labels")
    if train_y.min() < 0 or train_y.max() >= n_classes:
        raise ValueError(f"training labels outside [0, {n_classes})")
    has_val = val_seqs is not None and len(val_seqs) > 0
    if has_val:
        val_seqs = _check_seqs(val_seqs, dim)
        val_y = np.asarray(val_y, dtype=np.int64)
        if len(val_y) != len(val_seqs):
            raise ValueError(f"{len(val_seqs)} validation sequences but {len(val_y)} labels")

    model = SequenceClassifier(dim, n_classes, spec)
    if model.spec["norm"] == "standardize":
        frames = np.concatenate(train_seqs)
        if len(frames) > 200_000:
            frames = frames[rng.choice(len(frames), 200_000, replace=False)]
        std = frames.std(0)
        model.set_standardization(frames.mean(0), np.where(std > 1e-6, std, 1.0))
    model.to(dev)
    init_head(model, train_seqs, seed=seed)

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(train_seqs)
    totals = {}

    def steps(epoch: int):
        totals.update(t0=time.time(), loss=0.0)
        order = rng.permutation(n)
        for sl in batches(n, batch_size):
            idx = order[sl]
            x, m = collate([train_seqs[i] for i in idx], max_len, rng)
            logits = model(x.to(dev), m.to(dev))
            loss = F.cross_entropy(logits, torch.from_numpy(train_y[idx]).to(dev))
            totals["loss"] += float(loss.detach()) * len(idx)
            yield loss

    def end_epoch(epoch: int):
        row = {"epoch": epoch, "loss": totals["loss"] / n, "val_loss": None, "val_acc": None}
        key = None
        if has_val:
            probs, vloss = _evaluate(model, val_seqs, val_y, 2 * batch_size, max_len, dev)
            row["val_loss"], row["val_acc"] = vloss, float((probs.argmax(1) == val_y).mean())
            key = (row["val_acc"], -vloss)  # ties to the lower validation loss
        row["seconds"] = round(time.time() - totals["t0"], 3)
        if log:
            extra = f" val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.3f}" if has_val else ""
            log(f"epoch {epoch}: loss {row['loss']:.4f}{extra}")
        return row, key

    progress = loop.run_epochs(model, opt, epochs, steps, end_epoch, patience=patience if has_val else None, log=log)
    history = progress.history
    if has_val and log:
        log(
            f"best epoch {progress.best_epoch}: val_acc {progress.best_key[0]:.3f} val_loss {-progress.best_key[1]:.4f}"
        )
    model.eval()
    return model, history


def predict_proba(
    model: SequenceClassifier,
    seqs: Sequence[np.ndarray],
    batch_size: int = 64,
    max_len: int | None = 64,
    device: str = "auto",
) -> np.ndarray:
    """(n, n_classes) softmax probabilities (eval mode, no gradients, deterministic frame choice)."""
    seqs = _check_seqs(seqs, model.dim)
    dev = pick_device(device)
    model.to(dev)
    return _evaluate(model, seqs, None, batch_size, max_len, dev)[0]


# --------------------------------------------------------------------------- files


def save(model: SequenceClassifier, path: str | Path, meta: dict | None = None) -> Path:
    """One torch file: format tag, constructor arguments, CPU state dict, ``meta``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "args": model.config(), "state_dict": state, "meta": dict(meta or {})}, path)
    return path


def load(path: str | Path, device: str = "cpu") -> tuple[SequenceClassifier, dict]:
    """Rebuild the model written by :func:`save` (eval mode) and return it with its meta."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)  # tensors and plain data only
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a sequence classifier file ({FORMAT})")
    args = blob["args"]
    model = SequenceClassifier(args["dim"], args["n_classes"], args["spec"])
    model.load_state_dict(blob["state_dict"])
    model.to(pick_device(device)).eval()
    return model, blob["meta"]
