"""Read one feature's shard tables (``tables.features``) back as arrays, for the
corpus-level stages (encoding, classifiers).

``read(paths)`` -> :class:`FeatureSet`: the level, and per video either one vector
(level ``video``) or a sequence of frame / segment vectors in time order; videos the
extractor marked ``missing`` are listed apart (their placeholder rows are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyarrow.parquet import read_schema as read_table_schema

from emoflow.errors import EmoflowError


@dataclass
class FeatureSet:
    level: str  # video | frame | clip | segment
    dim: int
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # level video: id -> (dim,)
    sequences: dict[str, np.ndarray] = field(default_factory=dict)  # other levels: id -> (n, dim)
    missing: set[str] = field(default_factory=set)

    @property
    def video_ids(self) -> set[str]:
        return set(self.vectors) | set(self.sequences) | self.missing

    def matrix(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(X (n, dim) float32, missing (n,) bool) for video-level features; a video with no
        row at all counts as missing (zeros)."""
        X = np.zeros((len(ids), self.dim), np.float32)
        miss = np.ones(len(ids), bool)
        for i, v in enumerate(ids):
            if v in self.vectors:
                X[i], miss[i] = self.vectors[v], False
        return X, miss


def read(paths: list[str]) -> FeatureSet:
    """One feature's shard tables -> :class:`FeatureSet` (all shards must agree on level/dim)."""
    from emoflow.features.base import read_features

    if not paths:
        raise EmoflowError("no feature tables to read")
    metas, xs, level, dim = [], [], None, None
    for p in paths:
        meta = read_table_schema(p).metadata or {}
        lv, d = meta.get(b"level", b"").decode(), int(meta.get(b"dim", b"0"))
        if level is None:
            level, dim = lv, d
        elif (lv, d) != (level, dim):
            raise EmoflowError(f"{p}: level/dim {lv}/{d} differs from the other shards' {level}/{dim}")
        m, x = read_features(p)
        metas.append(m)
        xs.append(x)
    meta, X = pd.concat(metas, ignore_index=True), np.concatenate(xs).astype(np.float32, copy=False)
    fs = FeatureSet(level=level, dim=dim)
    miss = meta["missing"].to_numpy(bool)
    fs.missing = set(meta.loc[miss, "video_id"])
    meta, X = meta[~miss].reset_index(drop=True), X[~miss]
    if not len(meta):
        return fs
    if level == "video":
        fs.vectors = dict(zip(meta["video_id"], X))
        return fs
    meta = meta.sort_values(["video_id", "frame"], kind="stable")
    ids, X = meta["video_id"].to_numpy(object), X[meta.index.to_numpy()]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    fs.sequences = {ids[s]: X[s:e] for s, e in zip(starts, ends)}
    return fs
