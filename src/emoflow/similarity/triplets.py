"""Face triplets: loading by ``source_file``, the FECNet triplet loss, mining, and triplet
prediction accuracy.

A triplet names three faces ``a, b, c`` of one FER2013 split and the ``odd`` one out: the
other two are the annotated most similar pair.  :func:`pair_roles` turns it into
(anchor, positive, negative) = (the pair's first face, its second face, the odd face).

Loss (FECNet, Vemulapalli & Agarwala 2019), for squared Euclidean distances ``d``::

    l(a, p, n) = max(0, d(a,p) - d(a,n) + delta) + max(0, d(a,p) - d(p,n) + delta)

both faces of the pair must be closer to each other than either is to the odd one, by the
margin ``delta`` (one number, or one per triplet type: :func:`margins`).

Accuracy (the shared data's metric): a triplet is right when the annotated pair has the
smallest of the three distances; ties count as a random choice among the tied pairs
(expected value), so a constant embedding scores 1/3.

Mining (:func:`mined_mean`): the triplets are fixed judgements, so mining picks which of a
batch's triplets the step learns from: ``none`` (all), ``active`` (those with a positive
loss: easy ones do not dilute the gradient), ``semihard`` (correctly ordered but inside the
margin, FaceNet's semi-hard set; the active ones when there are none), ``hard`` (the
``hard_fraction`` of the batch with the largest losses).

The epoch is chosen on :func:`holdout_split`: triplets with two or three faces of a held-out
set of *training* faces, which the fit never sees (a held-out triplet that shared two faces
with the fit would flatter it); ``triplets_val`` is never used for a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoflow.errors import EmoflowError

TYPES = ("one_class", "two_class", "three_class")
ODD = {"a": 0, "b": 1, "c": 2}


@dataclass
class Faces:
    """Grey 48x48 FER2013 faces of one split, addressed by ``source_file``."""

    names: np.ndarray  # (n,) source_file
    images: np.ndarray  # (n, 48, 48) uint8
    labels: np.ndarray  # (n,) FER2013 label names
    index: dict

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, names) -> np.ndarray:
        try:
            return np.array([self.index[n] for n in names], np.int64)
        except KeyError as exc:
            raise EmoflowError(f"face {exc.args[0]!r} is not in the FER2013 table's split") from None


@dataclass
class Triplets:
    """Triplets as rows of a :class:`Faces` table."""

    faces: np.ndarray  # (n, 3) face rows of a, b, c
    odd: np.ndarray  # (n,) 0, 1, 2: the odd one out
    type: np.ndarray  # (n,) one_class | two_class | three_class

    def __len__(self) -> int:
        return len(self.odd)

    def take(self, idx) -> Triplets:
        return Triplets(self.faces[idx], self.odd[idx], self.type[idx])


def load_faces(fer_path: str | Path, split: str, names=None) -> Faces:
    """The faces of FER2013 ``split`` (``train`` / ``public_test``), only ``names`` when given.
    A file name that names two faces of the split (two Training names do) is refused when
    asked for."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    p = Path(fer_path)
    if not p.is_file():
        raise EmoflowError(f"{fer_path}: FER2013 Parquet not found (the data root's fer2013/fer2013.parquet)")
    t = pq.read_table(p, columns=["split", "label", "source_file", "pixels"])
    t = t.filter(pc.equal(t["split"], split))
    all_names = np.asarray(t["source_file"].to_pylist(), dtype=object)
    uniq, counts = np.unique(all_names, return_counts=True)
    ambiguous = set(uniq[counts > 1])
    if names is not None:
        wanted = set(names)
        bad = sorted(wanted & ambiguous)
        if bad:
            raise EmoflowError(f"{fer_path}: {bad} name more than one face of split {split!r}")
        keep = np.flatnonzero([n in wanted for n in all_names])
        missing = sorted(wanted - set(all_names[keep]))
        if missing:
            raise EmoflowError(f"{fer_path}: {len(missing)} faces not in split {split!r}, e.g. {missing[:3]}")
    else:
        keep = np.flatnonzero([n not in ambiguous for n in all_names])
    pix = t["pixels"].take(keep).to_pylist()
    if any(len(b) != 48 * 48 for b in pix):
        raise EmoflowError(f"{fer_path}: every 'pixels' value must be 2304 bytes (48x48 grey)")
    images = (
        np.frombuffer(b"".join(pix), np.uint8).reshape(-1, 48, 48).copy() if pix else np.zeros((0, 48, 48), np.uint8)
    )
    sel = all_names[keep]
    labels = np.asarray(t["label"].take(keep).to_pylist(), dtype=object)
    return Faces(sel, images, labels, {n: i for i, n in enumerate(sel)})


VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def load_votes(path: str | Path, faces: Faces, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(n, 8) FER+ emotion-vote distributions of ``faces`` (FER2013 ``split``) and whether each
    face has votes (matched, some on the 8 emotions).  Only ever the training split's: the
    votes of evaluation faces define their triplets."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise EmoflowError(f"{path}: FER+ votes not found (the data root's ferplus/ferplus_votes.parquet)")
    v = pd.read_parquet(p, columns=["source_file", "split", "matched", *VOTE_COLUMNS])
    v = v[(v["split"] == split) & v["source_file"].isin(faces.index)].drop_duplicates("source_file", keep=False)
    counts = np.zeros((len(faces), len(VOTE_COLUMNS)), np.float32)
    rows = faces.rows(v["source_file"])
    counts[rows] = v[list(VOTE_COLUMNS)].to_numpy(np.float32) * v["matched"].to_numpy(bool)[:, None]
    total = counts.sum(1)
    valid = total > 0
    counts[valid] /= total[valid, None]
    return counts, valid


def read_triplets(path: str | Path):
    """The triplet table (pandas): a, b, c, odd, type[, margin, agreement]."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise EmoflowError(f"{path}: triplet table not found (the data root's fer_similarity/triplets_*.parquet)")
    df = pd.read_parquet(p)
    missing = {"a", "b", "c", "odd", "type"} - set(df.columns)
    if missing:
        raise EmoflowError(f"{path}: not a triplet table (missing columns {sorted(missing)})")
    bad = sorted(set(df["odd"]) - set(ODD)) + sorted(set(df["type"]) - set(TYPES))
    if bad:
        raise EmoflowError(f"{path}: unknown odd/type values {bad}")
    return df


def face_names(df) -> list[str]:
    """Every face a triplet table names, in first-seen order."""
    return list(dict.fromkeys(np.concatenate([df[k].to_numpy() for k in ("a", "b", "c")]).tolist()))


def to_triplets(df, faces: Faces) -> Triplets:
    rows = np.stack([faces.rows(df[k]) for k in ("a", "b", "c")], axis=1)
    return Triplets(rows, df["odd"].map(ODD).to_numpy(np.int64), df["type"].to_numpy(dtype=object))


def load(fer_path: str | Path, triplets_path: str | Path, split: str) -> tuple[Faces, Triplets]:
    """The faces a triplet table names (from FER2013 ``split``) and its triplets."""
    df = read_triplets(triplets_path)
    faces = load_faces(fer_path, split, face_names(df))
    return faces, to_triplets(df, faces)


def pair_roles(t: Triplets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchor, positive, negative) face rows: the annotated pair, then the odd face."""
    n = np.arange(len(t))
    first = np.where(t.odd == 0, 1, 0)
    second = np.where(t.odd == 2, 1, 2)
    return t.faces[n, first], t.faces[n, second], t.faces[n, t.odd]


def margins(margin, types: np.ndarray) -> np.ndarray:
    """Per-triplet margins: one number for all, or ``{type: delta}`` (every type given)."""
    if isinstance(margin, dict):
        missing = [k for k in TYPES if k not in margin]
        if missing:
            raise ValueError(f"margin: no value for triplet type(s) {missing}")
        return np.array([float(margin[k]) for k in types], np.float32)
    return np.full(len(types), float(margin), np.float32)


# --------------------------------------------------------------------------- loss and mining


def triplet_losses(ea, ep, en, margin):
    """Per-triplet FECNet loss and the three squared distances (torch tensors)."""
    import torch.nn.functional as F

    d_ap = (ea - ep).pow(2).sum(1)
    d_an = (ea - en).pow(2).sum(1)
    d_pn = (ep - en).pow(2).sum(1)
    loss = F.relu(d_ap - d_an + margin) + F.relu(d_ap - d_pn + margin)
    return loss, (d_ap, d_an, d_pn)


MINING = ("none", "active", "semihard", "hard")


def mined_mean(loss, dists, how: str = "none", hard_fraction: float = 0.5):
    """The batch loss over the triplets ``how`` selects (see the module doc)."""
    import torch

    if how == "none":
        return loss.mean()
    active = loss > 0
    if how == "active":
        return loss[active].mean() if active.any() else loss.sum() * 0.0
    if how == "semihard":
        d_ap, d_an, d_pn = dists
        semi = active & (d_ap < torch.minimum(d_an, d_pn))
        pick = semi if semi.any() else active
        return loss[pick].mean() if pick.any() else loss.sum() * 0.0
    if how == "hard":
        k = max(1, int(np.ceil(hard_fraction * len(loss))))
        return torch.topk(loss, k).values.mean()
    raise ValueError(f"unknown mining {how!r} (known: {', '.join(MINING)})")


# --------------------------------------------------------------------------- accuracy


def pair_distances(emb: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(n, 3) squared distances; column k is the pair *without* face k (b-c, a-c, a-b)."""
    e = np.asarray(emb, np.float64)
    a, b, c = (e[faces[:, k]] for k in range(3))
    return np.stack([((b - c) ** 2).sum(1), ((a - c) ** 2).sum(1), ((a - b) ** 2).sum(1)], axis=1)


def triplet_scores(emb: np.ndarray, t: Triplets, tol: float = 1e-9) -> np.ndarray:
    """Per-triplet expected correctness: 1 when the annotated pair (the one without the odd
    face) is strictly closest, 1/k when it ties with k-1 others for closest, else 0."""
    d = pair_distances(emb, t.faces)
    low = d.min(1, keepdims=True)
    tied = d <= low + tol * np.maximum(1.0, low)
    return tied[np.arange(len(t)), t.odd] / tied.sum(1)


def accuracy(emb: np.ndarray, t: Triplets) -> dict:
    """Triplet prediction accuracy, overall and per type (fractions), and counts."""
    s = triplet_scores(emb, t)
    out = {"all": float(s.mean()) if len(s) else float("nan")}
    for k in TYPES:
        m = t.type == k
        out[k] = float(s[m].mean()) if m.any() else float("nan")
    out["n"] = int(len(s))
    return out


# --------------------------------------------------------------------------- held-out part


def holdout_split(
    t: Triplets, n_faces: int, fraction: float, seed: int = 0, min_held: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) of ``t``: a seeded ``fraction`` of the faces is held out; the
    fit part is the triplets without a held-out face (the fit never sees one), the held-out
    part those with at least ``min_held`` held-out faces (faces the fit never saw; the
    validation triplets have three).  Triplets in between are in neither."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction {fraction} must lie in (0, 1)")
    if not 1 <= min_held <= 3:
        raise ValueError(f"min_held {min_held} must be 1, 2 or 3")
    rng = np.random.default_rng(seed)
    held_faces = np.zeros(n_faces, bool)
    held_faces[rng.permutation(n_faces)[: max(1, int(round(fraction * n_faces)))]] = True
    count = held_faces[t.faces].sum(1)
    return np.flatnonzero(count == 0), np.flatnonzero(count >= min_held)
