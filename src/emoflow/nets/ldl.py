"""Label-distribution targets for the frame CNN (``training.targets`` of a frame_cnn entry).

``hard``         cross-entropy on one label per face (:func:`emoflow.nets.train.fit`'s own
                 loss, with its label smoothing): nothing here is used.
``votes``        cross-entropy against the face's FER+ vote distribution over the label
                 space (:func:`vote_distributions`: the 8 FER+ emotions mapped by the
                 config's ``label_maps.ferplus8.<space>``; ``unknown`` / ``not_face`` votes
                 and emotions without a counterpart, e.g. contempt for FER2013, dropped);
                 faces without matched votes (or no vote left) fall back to their hard label.
``uncertainty``  uncertainty-aware label distribution learning (Le et al., "Uncertainty-aware
                 Label Distribution Learning for Facial Expression Recognition", WACV 2023),
                 re-implemented from the paper and after reading its reference
                 implementation (github.com/minhnhatvt/label-distribution-learning-fer-tf;
                 no code taken): :class:`UncertaintyLDL`.

Uncertainty-aware LDL, as built here: for training face i with (possibly wrong) label y_i

    target_i = λ_i · onehot(y_i) + (1 − λ_i) · d̃_i,
    d̃_i      = Σ_j w_ij p_j / Σ_j w_ij  over its K (= 8) nearest neighbours j,
    w_ij     = exp(−‖a_i − a_j‖₁ / 0.5) · s(f_i, f_j),

where a is the face's point in an *auxiliary space* (never its training label), p_j the
network's current softmax of neighbour j, f the network's bottleneck features and s a small
MLP on the pair (f_i, f_j) whose output passes through sigmoid(max(·, −1.3)) so that no
neighbour is silenced entirely (as in the reference).  λ_i = sigmoid(λ̂_i) is a free
parameter per face with its own SGD optimiser (λ̂ starts at 0.5; the step is set per face,
whatever the batch size: the reference's learning rate 10 at batch 32 is 0.3 per face and
visit over 60 epochs; the default here, 3.0, gives λ about the same room to move in the
6-10 label-distribution epochs a CPU budget allows; with 0.3 and 3 such epochs λ moved by 0.02
on FER2013 and the flipped faces' targets still pointed at their wrong labels).
The loss is the cross-entropy of the network's softmax against target_i (target_i is *not*
detached: λ and s learn through it, so a face whose label disagrees with what its
neighbours are predicted to be loses weight on its label), plus ``gamma`` times the
discriminative centre loss: ½ λ_i ‖f_i − c_{y_i}‖² over the batch and its neighbours (λ
detached), the class centres c following Wen et al. 2016 (ECCV, "A discriminative feature
learning approach for deep face recognition": c_k −= α Σ λ_i (c_k − f_i) / (1 + n_k)) plus
the reference's push apart of the centres (gradient of Σ_{k<l} exp(−‖c_k − c_l‖² / D),
weighted 0.1).

Neighbour predictions and features come from a cache refreshed once per epoch (one
forward pass of the training images, no augmentation), not from forwarding K neighbours
every step (as the reference does), which is K times too slow on two CPU cores.

One departure: the reference starts from a backbone pretrained on faces, so its
neighbours' predictions mean something from the first steps; here the network starts
from scratch, so the first ``warmup_epochs`` (default 2) train on the hard labels (λ = 1,
λ, s and the centres not updated, no cache pass) and the label distributions start after.

Auxiliary spaces (``uncertainty.aux``):

``va``        pseudo valence/arousal from the FER+ vote distribution (:func:`pseudo_va`):
              every emotion's circumplex point (:data:`CIRCUMPLEX`) weighted by its votes.
              The paper uses valence/arousal predicted by an AffectNet model; the votes are
              the human judgement this data has instead.  Faces without votes get no
              neighbours: their target is their hard label (λ = 1).
``features``  the bottleneck features of a frozen, already fitted frame CNN (``aux_model``:
              its JSON), reduced to 32 principal components; L1 distances are divided by
              their mean over the K nearest so that the kernel scale 0.5 means the same.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emoflow.errors import EmoflowError
from emoflow.similarity.triplets import VOTE_COLUMNS

TARGETS = ("hard", "votes", "uncertainty")

UNCERTAINTY_DEFAULTS = {
    "k": 8,
    "warmup_epochs": 2,  # hard labels first (λ = 1, nothing learned) while predictions mean little
    "aux": "va",  # va | features
    "aux_model": None,  # a fitted frame_cnn JSON, for aux: features
    "kernel": 0.5,  # a_ij = exp(-|a_i - a_j|_1 / kernel)
    "lambda_init": 0.5,  # λ̂ at the start (λ = sigmoid(λ̂) ≈ 0.62)
    "lambda_lr": 3.0,  # per-face SGD step of λ̂ (the reference: 0.3, i.e. 10 at batch 32, over 60 epochs)
    "lambda_momentum": 0.0,
    "gamma": 0.01,  # weight of the centre loss
    "centre_alpha": 0.5,  # centre update rate (Wen et al. 2016)
    "centre_push": 0.1,  # weight of the centres' push apart
    "sim_hidden": 64,  # hidden width of the pairwise similarity MLP
    "sim_floor": -1.3,  # s = sigmoid(max(logit, floor))
}

# Circumplex positions of the FER+ emotions as angles (degrees) on the valence (x) /
# arousal (y) plane, read from Russell (1980), "A circumplex model of affect", J. Personality
# and Social Psychology 39(6):1161-1178, Table 3 / Fig. 2 (direct circular scaling of 28
# affect words): happy 7.8, astonished 69.8, angry 99.0, afraid 116.8, sad 207.5.  Disgust
# and contempt are not among Russell's 28 words: their angles are read from Scherer (2005),
# "What are emotions? And how can they be measured?", Social Science Information
# 44(4):695-729, Fig. 2 (the valence x activity plot of emotion terms: disgusted /
# contemptuous between angry and distressed, contempt lower in arousal).  Neutral is the
# origin.  Points on the unit circle: (cos, sin).
CIRCUMPLEX_DEGREES = {
    "neutral": None,
    "happiness": 7.8,
    "surprise": 69.8,
    "sadness": 207.5,
    "anger": 99.0,
    "disgust": 136.0,
    "fear": 116.8,
    "contempt": 160.0,
}
CIRCUMPLEX = np.array(
    [
        [0.0, 0.0] if d is None else [math.cos(math.radians(d)), math.sin(math.radians(d))]
        for d in (CIRCUMPLEX_DEGREES[c] for c in VOTE_COLUMNS)
    ],
    np.float32,
)  # (8, 2), rows in VOTE_COLUMNS order


# --------------------------------------------------------------------------- FER+ votes


def read_votes(votes_path: str | Path, fer_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(counts (N, 8) float32 over :data:`VOTE_COLUMNS`, matched (N,) bool), one row per row
    of the FER2013 Parquet ``fer_path`` (the votes file has the same rows in the same
    order; checked on split, label and source_file).  Unmatched rows are all zero."""
    import pyarrow.parquet as pq

    vp, fp = Path(votes_path), Path(fer_path)
    if not vp.is_file():
        raise EmoflowError(f"{votes_path}: FER+ votes not found (the data root's ferplus/ferplus_votes.parquet)")
    v = pq.read_table(vp)
    missing = {"source_file", "split", "fer_label", "matched", *VOTE_COLUMNS} - set(v.column_names)
    if missing:
        raise EmoflowError(f"{votes_path}: not a FER+ vote table (missing columns {sorted(missing)})")
    f = pq.read_table(fp, columns=["split", "label", "source_file"])
    same = (
        v.num_rows == f.num_rows
        and v["split"].to_pylist() == f["split"].to_pylist()
        and v["fer_label"].to_pylist() == f["label"].to_pylist()
        and v["source_file"].to_pylist() == f["source_file"].to_pylist()
    )
    if not same:
        raise EmoflowError(
            f"{votes_path}: its rows are not those of {fer_path} (split, label, source_file in the same order)"
        )
    counts = np.stack([v[c].to_numpy().astype(np.float32) for c in VOTE_COLUMNS], 1)
    matched = v["matched"].to_numpy(zero_copy_only=False).astype(bool)
    counts[~matched] = 0.0
    return counts, matched


def vote_distributions(counts: np.ndarray, classes: list[str], label_map: dict) -> tuple[np.ndarray, np.ndarray]:
    """(dist (N, C), has (N,) bool): FER+ emotion votes (N, 8) over ``classes``; each FER+
    emotion goes to ``label_map[emotion]`` (``None`` or absent: dropped), rows normalised.
    ``has`` is false where no vote is left (unmatched faces, or only dropped emotions)."""
    m = np.zeros((len(VOTE_COLUMNS), len(classes)), np.float32)
    for i, emo in enumerate(VOTE_COLUMNS):
        dst = label_map.get(emo)
        if dst is None:
            continue
        if dst not in classes:
            raise EmoflowError(f"label map: FER+ {emo!r} -> {dst!r}, which is not a class of the label space {classes}")
        m[i, classes.index(dst)] = 1.0
    mass = np.asarray(counts, np.float32) @ m
    total = mass.sum(1)
    has = total > 0
    dist = np.zeros_like(mass)
    dist[has] = mass[has] / total[has, None]
    return dist, has


def vote_targets(
    counts: np.ndarray, labels: np.ndarray, classes: list[str], label_map: dict
) -> tuple[np.ndarray, np.ndarray]:
    """``votes`` training targets (N, C): the vote distribution, or the one-hot hard label
    where a face has none; and whether each face has votes."""
    dist, has = vote_distributions(counts, classes, label_map)
    onehot = np.eye(len(classes), dtype=np.float32)[np.asarray(labels, np.int64)]
    return np.where(has[:, None], dist, onehot).astype(np.float32), has


def majority(counts: np.ndarray, classes: list[str], label_map: dict) -> np.ndarray:
    """FER+ majority label in ``classes`` per face: the most-voted of the 8 emotions (first in
    column order on ties), mapped; -1 where it has no counterpart or the face no votes."""
    counts = np.asarray(counts)
    top = counts.argmax(1)
    idx = np.array([classes.index(label_map[e]) if label_map.get(e) in classes else -1 for e in VOTE_COLUMNS])
    out = idx[top]
    out[counts.sum(1) <= 0] = -1
    return out


def pseudo_va(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(va (N, 2), has (N,)): the vote-weighted mean of the emotions' circumplex points
    (:data:`CIRCUMPLEX`, all 8 FER+ emotions); ``has`` false for faces without emotion votes."""
    counts = np.asarray(counts, np.float32)
    total = counts.sum(1)
    has = total > 0
    va = np.zeros((len(counts), 2), np.float32)
    va[has] = counts[has] @ CIRCUMPLEX / total[has, None]
    return va, has


# --------------------------------------------------------------------------- neighbours


def nearest(
    aux: np.ndarray, has: np.ndarray, k: int, kernel: float = 0.5, normalise: bool = False, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours (N, k) int, -1 for faces without an auxiliary point; weights (N, k)
    exp(−‖a_i − a_j‖₁ / kernel)): each face's k nearest other faces by L1 distance among
    those that have a point.  ``normalise`` divides distances by their mean first."""
    aux_t = torch.from_numpy(np.ascontiguousarray(aux, np.float32))
    cand = np.flatnonzero(has)
    nb = np.full((len(aux), k), -1, np.int64)
    dist = np.zeros((len(aux), k), np.float32)
    if len(cand) <= k:
        raise EmoflowError(
            f"uncertainty targets: {len(cand)} faces have an auxiliary point, fewer than k + 1 = {k + 1}"
        )
    pool = aux_t[torch.from_numpy(cand)]
    for s in range(0, len(cand), chunk):
        rows = cand[s : s + chunk]
        d = torch.cdist(aux_t[torch.from_numpy(rows)], pool, p=1)
        d[torch.arange(len(rows)), torch.arange(s, s + len(rows))] = float("inf")  # not itself
        val, pos = torch.topk(d, k, dim=1, largest=False)
        nb[rows] = cand[pos.numpy()]
        dist[rows] = val.numpy()
    if normalise:
        dist[has] /= max(float(dist[has].mean()), 1e-12)
    w = np.exp(-dist / kernel).astype(np.float32)
    w[~has] = 0.0
    return nb, w


def feature_space(features: np.ndarray, dims: int = 32) -> np.ndarray:
    """Features reduced to their ``dims`` first principal components (an auxiliary space)."""
    x = torch.from_numpy(np.asarray(features, np.float32))
    x = x - x.mean(0)
    q = min(dims, x.shape[1], max(1, x.shape[0] - 1))
    _, _, v = torch.linalg.svd(
        x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:20000]], full_matrices=False
    )
    return (x @ v[:q].T).numpy()


# --------------------------------------------------------------------------- the objectives


class SoftTargets:
    """Cross-entropy against fixed target distributions (``votes``): one row per training image."""

    layer = None

    def __init__(self, targets: np.ndarray):
        self.targets = torch.from_numpy(np.asarray(targets, np.float32))

    def trainable(self):
        return []

    def to(self, device):
        self.targets = self.targets.to(device)
        return self

    def begin_epoch(self, *args) -> None:
        pass

    def loss(self, logits, feats, idx, y):
        t = self.targets[torch.from_numpy(np.asarray(idx)).to(self.targets.device)]
        return -(t * F.log_softmax(logits, 1)).sum(1).mean()

    def zero_grad(self) -> None:
        pass

    def step(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def digest(self) -> str:
        h = hashlib.sha256(b"soft-targets")
        h.update(self.targets.cpu().numpy().tobytes())
        h.update(Path(__file__).read_bytes())
        return h.hexdigest()


class SimilarityNet(nn.Module):
    """s(f_i, f_j) in [sigmoid(floor), 1]: an MLP on the concatenated pair."""

    def __init__(self, dim: int, hidden: int = 64, floor: float = -1.3):
        super().__init__()
        self.floor = floor
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1)
        )

    def forward(self, f: torch.Tensor, f_nb: torch.Tensor) -> torch.Tensor:
        """f (B, D), f_nb (B, K, D) -> (B, K)."""
        pair = torch.cat([f[:, None].expand(-1, f_nb.shape[1], -1), f_nb], -1)
        return torch.sigmoid(self.mlp(pair).squeeze(-1).clamp(min=self.floor))


def target_distribution(
    onehot: torch.Tensor, p_nb: torch.Tensor, knn_w: torch.Tensor, sim: torch.Tensor, lam: torch.Tensor
) -> torch.Tensor:
    """λ·onehot + (1 − λ)·d̃ with d̃ = Σ_j w_j s_j p_j / Σ_j w_j s_j.

    onehot (B, C), p_nb (B, K, C) neighbours' predictions, knn_w (B, K) the auxiliary
    kernel, sim (B, K) the learned similarity, lam (B,) -> (B, C)."""
    w = knn_w * sim
    d = (w[..., None] * p_nb).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-12)
    return lam[:, None] * onehot + (1.0 - lam[:, None]) * d


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


class UncertaintyLDL(nn.Module):
    """The ``uncertainty`` objective (module docstring).  ``labels``: the training labels as
    given (possibly noisy); ``neighbours``/``knn_w`` from :func:`nearest`."""

    def __init__(
        self,
        labels: np.ndarray,
        neighbours: np.ndarray,
        knn_w: np.ndarray,
        n_classes: int,
        feat_dim: int,
        layer: str,
        cfg: dict | None = None,
        batch_size: int = 128,
    ):
        super().__init__()
        self.cfg = {**UNCERTAINTY_DEFAULTS, **(cfg or {})}
        self.layer = layer
        self.n_classes = n_classes
        self.register_buffer("labels", torch.from_numpy(np.asarray(labels, np.int64)))
        self.register_buffer("neighbours", torch.from_numpy(np.asarray(neighbours, np.int64)))
        self.register_buffer("knn_w", torch.from_numpy(np.asarray(knn_w, np.float32)))
        self.register_buffer("has", self.neighbours[:, 0] >= 0)
        self.register_buffer("centres", torch.zeros(n_classes, feat_dim))
        self.lam_hat = nn.Parameter(torch.full((len(labels),), float(self.cfg["lambda_init"])))
        self.sim = SimilarityNet(feat_dim, int(self.cfg["sim_hidden"]), float(self.cfg["sim_floor"]))
        # the loss is a batch mean: a per-face step of lambda_lr needs lambda_lr * batch size
        self.lam_opt = torch.optim.SGD(
            [self.lam_hat], lr=float(self.cfg["lambda_lr"]) * batch_size, momentum=float(self.cfg["lambda_momentum"])
        )
        self.warm = False  # in the warm-up epochs: hard labels
        self.probs = torch.full((len(labels), n_classes), 1.0 / n_classes)  # the per-epoch caches
        self.feats = torch.zeros(len(labels), feat_dim)
        self._centre_batch = None

    def trainable(self):
        return list(self.sim.parameters())

    def to(self, device):
        super().to(device)
        self.probs, self.feats = self.probs.to(device), self.feats.to(device)
        return self

    def lam(self) -> np.ndarray:
        """λ per training face (1 where a face has no neighbours: its target is its label)."""
        lam = torch.sigmoid(self.lam_hat.detach()).cpu().numpy()
        return np.where(self.has.cpu().numpy(), lam, 1.0)

    @torch.no_grad()
    def begin_epoch(self, model, train_x, mean, std, device, precision, epoch: int = 0) -> None:
        """Refresh the cache: every training face's softmax and features, model in eval mode
        (not needed in the warm-up epochs)."""
        from emoflow.nets.common import batches
        from emoflow.nets.train import _autocast, to_tensor

        self.warm = epoch < int(self.cfg["warmup_epochs"])
        if self.warm:
            return
        model.eval()
        for s in batches(len(train_x), 512):
            with _autocast(device, precision):
                out = model.features(to_tensor(train_x[s], mean, std, device), (self.layer, "logits"))
            self.probs[s] = F.softmax(out["logits"].float(), 1)
            self.feats[s] = out[self.layer].float()

    def targets(self, feats: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets (B, C), λ (B,)) of a batch."""
        nb = self.neighbours[idx].clamp(min=0)
        sim = self.sim(feats, self.feats[nb])
        has = torch.zeros_like(self.has[idx]) if self.warm else self.has[idx]
        lam = torch.where(has, torch.sigmoid(self.lam_hat[idx]), torch.ones_like(self.lam_hat[idx]))
        onehot = F.one_hot(y, self.n_classes).float()
        knn_w = torch.where(has[:, None], self.knn_w[idx], torch.ones_like(self.knn_w[idx]))
        return target_distribution(onehot, self.probs[nb], knn_w, sim, lam), lam

    def loss(self, logits, feats, idx, y):
        idx = torch.from_numpy(np.asarray(idx)).to(self.labels.device)
        target, lam = self.targets(feats, idx, y)
        ce = soft_cross_entropy(logits, target)
        if self.warm:
            return ce
        # discriminative centre loss over the batch and its neighbours (cached features), λ fixed
        has = self.has[idx]
        nb = self.neighbours[idx][has].reshape(-1)
        x = torch.cat([feats, self.feats[nb]])
        lab = torch.cat([y, self.labels[nb]])
        w = torch.cat([lam.detach(), torch.sigmoid(self.lam_hat.detach()[nb])])
        centre = 0.5 * (w * (x - self.centres[lab]).pow(2).sum(1)).sum() / len(x)
        self._centre_batch = (x.detach(), lab, w)
        return ce + float(self.cfg["gamma"]) * centre

    def zero_grad(self) -> None:
        self.lam_opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def step(self) -> None:
        self.lam_opt.step()
        if self._centre_batch is None:
            return
        x, lab, w = self._centre_batch
        alpha = float(self.cfg["centre_alpha"])
        onehot = F.one_hot(lab, self.n_classes).float()  # (M, C)
        delta = (onehot * w[:, None]).T @ x  # Σ λ_i f_i per class
        weight = (onehot * w[:, None]).sum(0)  # Σ λ_i per class
        count = onehot.sum(0)
        self.centres -= alpha * (weight[:, None] * self.centres - delta) / (1.0 + count[:, None])
        with torch.enable_grad():  # push the centres apart
            c = self.centres.clone().requires_grad_(True)
            d2 = torch.cdist(c, c).pow(2)
            push = torch.triu(torch.exp(-d2 / c.shape[1]), diagonal=1).sum()
            (grad,) = torch.autograd.grad(push, c)
        self.centres -= alpha * float(self.cfg["centre_push"]) * grad
        self._centre_batch = None

    def state_dict(self, *args, **kwargs):  # noqa: D102 - the λ optimiser travels with the module
        state = super().state_dict(*args, **kwargs)
        if not args and not kwargs:
            state = {**state, "lam_opt": self.lam_opt.state_dict()}
        return state

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        state = dict(state)
        if not state:
            return None
        opt = state.pop("lam_opt", None)
        res = super().load_state_dict(state, strict=strict, assign=assign)
        if opt is not None:
            self.lam_opt.load_state_dict(opt)
        return res

    def digest(self) -> str:
        h = hashlib.sha256(repr(sorted(self.cfg.items())).encode())
        for t in (self.labels, self.neighbours, self.knn_w):
            h.update(t.cpu().numpy().tobytes())
        h.update(Path(__file__).read_bytes())
        return h.hexdigest()


def build_objective(
    targets: str,
    *,
    labels: np.ndarray,
    classes: list[str],
    counts: np.ndarray | None,
    layer: str,
    feat_dim: int,
    batch_size: int,
    cfg: dict | None = None,
    aux_features: np.ndarray | None = None,
    log=None,
):
    """The objective for ``training.targets`` (None for ``hard``).  ``counts``: the training
    faces' FER+ emotion votes (N, 8) (``votes``, and ``uncertainty`` with ``aux: va``),
    with a ``label_map`` in ``cfg`` for ``votes``; ``aux_features`` for ``aux: features``."""
    if targets == "hard":
        return None
    cfg = dict(cfg or {})
    if targets == "votes":
        if counts is None:
            raise EmoflowError("training.targets votes needs the FER+ votes of the training faces")
        t, has = vote_targets(counts, labels, classes, cfg["label_map"])
        if log:
            log(f"votes targets: {int(has.sum())} of {len(has)} faces with votes, the rest on their hard label")
        return SoftTargets(t)
    if targets == "uncertainty":
        u = {**UNCERTAINTY_DEFAULTS, **(cfg.get("uncertainty") or {})}
        if u["aux"] == "va":
            if counts is None:
                raise EmoflowError("uncertainty targets with aux: va need the FER+ votes of the training faces")
            aux, has = pseudo_va(counts)
            nb, w = nearest(aux, has, int(u["k"]), float(u["kernel"]))
        elif u["aux"] == "features":
            if aux_features is None:
                raise EmoflowError(
                    "uncertainty targets with aux: features need uncertainty.aux_model (a fitted frame_cnn JSON)"
                )
            aux, has = feature_space(aux_features), np.ones(len(labels), bool)
            nb, w = nearest(aux, has, int(u["k"]), float(u["kernel"]), normalise=True)
        else:
            raise EmoflowError(f"uncertainty.aux: {u['aux']!r} is not va or features")
        if log:
            log(f"uncertainty targets: aux {u['aux']}, {int(has.sum())} of {len(has)} faces with {u['k']} neighbours")
        return UncertaintyLDL(labels, nb, w, len(classes), feat_dim, layer, u, batch_size)
    raise EmoflowError(f"training.targets: {targets!r} is not one of {', '.join(TARGETS)}")
