"""Read one feature's shard tables (``tables.features``) back as arrays, for the
corpus-level stages (encoding, classifiers).

``read(paths)`` -> :class:`FeatureSet`: the level, and per video either one vector
(level ``video``) or a sequence of frame / segment vectors in time order; videos the
extractor marked ``missing`` are listed apart (their placeholder rows are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emoflow.errors import EmoflowError
from emoflow.storage import read_table


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
    if not paths:
        raise EmoflowError("no feature tables to read")
    tables, level, dim = [], None, None
    for p in paths:
        t = read_table(p)
        meta = t.schema.metadata or {}
        lv, d = meta.get(b"level", b"").decode(), int(meta.get(b"dim", b"0"))
        if level is None:
            level, dim = lv, d
        elif (lv, d) != (level, dim):
            raise EmoflowError(f"{p}: level/dim {lv}/{d} differs from the other shards' {level}/{dim}")
        tables.append(t)
    t = pa.concat_tables(tables)
    fs = FeatureSet(level=level, dim=dim)
    miss = t["missing"].to_numpy(zero_copy_only=False)
    ids = np.asarray(t["video_id"].to_pylist(), dtype=object)
    fs.missing = set(ids[miss].tolist())
    t = t.filter(pc.invert(t["missing"]))
    if t.num_rows == 0:
        return fs
    X = t["x"].combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    ids = np.asarray(t["video_id"].to_pylist(), dtype=object)
    if level == "video":
        fs.vectors = dict(zip(ids.tolist(), X))
        return fs
    frames = t["frame"].to_numpy()
    order = np.lexsort((frames, ids))
    ids, X = ids[order], X[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    fs.sequences = {ids[s]: X[s:e] for s, e in zip(starts, ends)}
    return fs
