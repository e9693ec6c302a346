"""The e2e network's inputs, read from a run's cached tables: per clip, the audio feature's
frame sequence and the face feature's frame sequence under each cached transform.

Audio and plain face features are ``features/<name>/<shard>.parquet`` (``tables.features``,
frame level).  The face transform cache (rule ``e2e_tta``, :mod:`emoflow.e2e.tta`) uses the
same schema: one row per face frame, ``x`` the frame CNN's output under every transform
concatenated in the order of the table's ``transforms`` metadata (JSON list).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from pyarrow.parquet import read_schema

from emoflow.e2e.augment import IDENTITY
from emoflow.errors import EmoflowError
from emoflow.features.read import read


@dataclass
class Inputs:
    """Per clip: ``audio[id]`` (T, F) and ``face[id]`` (K, T, D), K = len(transforms)."""

    audio: dict[str, np.ndarray] = field(default_factory=dict)
    face: dict[str, np.ndarray] = field(default_factory=dict)
    transforms: list[str] = field(default_factory=lambda: [IDENTITY])
    audio_dim: int = 0
    face_dim: int = 0

    def dims(self) -> dict:
        return {k: d for k, d in (("audio", self.audio_dim), ("face", self.face_dim)) if d}

    def present(self, ids: list[str]) -> dict[str, np.ndarray]:
        out = {}
        if self.audio_dim:
            out["audio"] = np.array([v in self.audio for v in ids], bool)
        if self.face_dim:
            out["face"] = np.array([v in self.face for v in ids], bool)
        return out


def cache_transforms(path: str) -> list[str]:
    meta = read_schema(path).metadata or {}
    if b"transforms" not in meta:
        raise EmoflowError(f"{path}: not a face transform cache (no 'transforms' metadata)")
    return json.loads(meta[b"transforms"])


def load(audio_paths: list[str] | None, face_paths: list[str] | None, face_cached: bool = False) -> Inputs:
    """Read the audio tables and the face tables (``face_cached``: the transform cache)."""
    out = Inputs()
    if audio_paths:
        fs = read(list(audio_paths))
        if fs.level == "video":
            raise EmoflowError(f"e2e: the audio feature must be frame level ({audio_paths[0]} is video level)")
        out.audio, out.audio_dim = fs.sequences, fs.dim
    if face_paths:
        fs = read(list(face_paths))
        if fs.level == "video":
            raise EmoflowError(f"e2e: the face feature must be frame level ({face_paths[0]} is video level)")
        if face_cached:
            tr = cache_transforms(face_paths[0])
            for p in face_paths[1:]:
                if cache_transforms(p) != tr:
                    raise EmoflowError(f"{p}: its transforms differ from {face_paths[0]}'s")
            k = len(tr)
            if fs.dim % k:
                raise EmoflowError(f"{face_paths[0]}: dim {fs.dim} is not a multiple of its {k} transforms")
            d = fs.dim // k
            out.face = {
                v: np.ascontiguousarray(s.reshape(len(s), k, d).transpose(1, 0, 2)) for v, s in fs.sequences.items()
            }
            out.transforms, out.face_dim = list(tr), d
        else:
            out.face = {v: s[None] for v, s in fs.sequences.items()}
            out.face_dim = fs.dim
    return out
