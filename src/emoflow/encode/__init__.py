"""Temporal encoding: one video's frame/segment features ``(n, d)`` (n >= 1) -> one fixed-length
float32 vector.

Encoders (``spec["type"]``; every other key is a parameter):

``mean`` / ``max`` / ``meanstd``  pooling over time (dim D / D / 2D), see :mod:`.pooling`
``fisher``  improved Fisher vector over a diagonal GMM (dim 2 K D), see :mod:`.fisher`
``vlad``    intra-normalised VLAD over k-means centres (dim K D), see :mod:`.vlad`

Parameters shared by all (D = ``min(pca, d)`` or ``d`` without PCA):

``pca``         PCA dims applied to frames before encoding; None/0 = off
                (default None for pooling, 64 for fisher and vlad)
``whiten``      divide PCA coordinates by sqrt(eigenvalue) (default False)
``max_frames``  at most this many training frames, drawn uniformly at random, are used to
                fit PCA and the model (default 100000)
``seed``        frame subsampling and k-means initialisation (default 0)

``fisher``: ``clusters`` (32), ``max_iter`` EM iterations (100), ``kmeans_iter`` (100),
``n_init`` k-means restarts for the initialisation (1), ``var_floor`` (1e-4).
``vlad``: ``clusters`` (32), ``max_iter`` k-means iterations (100), ``n_init`` (1),
``vlfeat_order`` (False).

Usage::

    enc = make({"type": "fisher", "clusters": 32, "pca": 64})
    enc.fit(train_seqs)                 # training videos only
    X = enc.transform_many(all_seqs)    # (n_videos, enc.dim())
    enc.save("encoder.npz"); enc = load("encoder.npz")

Encoders with a learnt model (fisher, vlad, or any with ``pca``) need :meth:`Encoder.fit`
first; pooling without PCA is stateless (``fitted`` is always True).
"""

from __future__ import annotations

import os
from typing import Any

from emoflow.encode.base import REGISTRY, Encoder
from emoflow.encode.fisher import FisherEncoder, fisher_vector_reference
from emoflow.encode.pooling import MaxEncoder, MeanEncoder, MeanStdEncoder
from emoflow.encode.vlad import VladEncoder, vlad_encode

__all__ = [
    "Encoder",
    "FisherEncoder",
    "MaxEncoder",
    "MeanEncoder",
    "MeanStdEncoder",
    "VladEncoder",
    "TYPES",
    "fisher_vector_reference",
    "load",
    "make",
    "vlad_encode",
]

TYPES: tuple[str, ...] = tuple(sorted(REGISTRY))


def make(spec: dict[str, Any]) -> Encoder:
    """Build an (unfitted) encoder from ``{"type": ..., **params}``.  Unknown type or parameter,
    or a bad parameter value -> ``ValueError`` naming it."""
    if not isinstance(spec, dict):
        raise ValueError(f"encoder spec must be a mapping with a 'type' key, got {spec!r}")
    params = dict(spec)
    kind = params.pop("type", None)
    if not isinstance(kind, str) or kind not in REGISTRY:
        raise ValueError(f"unknown encoder type {kind!r}; valid types: {', '.join(TYPES)}")
    return REGISTRY[kind](**params)


def load(path: str | os.PathLike) -> Encoder:
    """Read an encoder saved with :meth:`Encoder.save`."""
    return Encoder.load(path)
