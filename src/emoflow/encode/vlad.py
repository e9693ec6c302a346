"""VLAD encoding of a video's frames (Jégou, Douze, Schmid & Pérez, CVPR 2010, "Aggregating local
descriptors into a compact image representation") with intra-normalisation (Arandjelović &
Zisserman, CVPR 2013, "All about VLAD").

Model.  K centres c_k fitted by k-means (scikit-learn, k-means++ initialisation seeded with
``seed``, ``n_init`` restarts) on the training frames after the optional PCA to D dims.

Encoding of frames x_1..x_N with hard assignment NN(x) = argmin_k ||x - c_k||
(ties: lowest k)::

    v_k = sum_{i: NN(x_i) = k} (x_i - c_k)          residual sum per centre (0 if none)
    v_k <- v_k / ||v_k||                            intra-normalisation (0 stays 0)
    v   <- sign(v) sqrt(|v|)                        signed square root (power 1/2)
    v   <- v / ||v||                                final L2 (0 stays 0); dim K D, centre-major

Order.  The default applies intra-normalisation *before* the signed square root, so each
centre contributes a block of equal L2 mass before burstiness damping.  VLFeat's ``vl_vlad``
with ``square_root`` and ``normalize_components`` applies the square root first; set
``vlfeat_order=True`` to get exactly that (``cyvlfeat.vlad.vlad(x, c, one_hot,
square_root=True, normalize_components=True)``).  All norms are guarded (``max(n, 1e-12)``),
so single-frame videos and frames that coincide with a centre give finite output.
"""

from __future__ import annotations

import numpy as np

from emoflow.encode.base import (
    Encoder,
    boolean,
    common_params,
    l2_normalize,
    pos_int,
    register,
    seeded_kmeans,
    signed_sqrt,
)


def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean, float64) for each row of ``x``."""
    x64, c64 = np.asarray(x, dtype=np.float64), np.asarray(centres, dtype=np.float64)
    d2 = (x64**2).sum(axis=1)[:, None] - 2.0 * x64 @ c64.T + (c64**2).sum(axis=1)[None]
    return np.argmin(d2, axis=1)


def vlad_encode(x: np.ndarray, centres: np.ndarray, vlfeat_order: bool = False) -> np.ndarray:
    """VLAD of frames ``x`` (N, D) with ``centres`` (K, D), by the module docstring; float64 (K D,)."""
    x64, c64 = np.asarray(x, dtype=np.float64), np.asarray(centres, dtype=np.float64)
    nn = assign(x64, c64)
    v = np.zeros_like(c64)
    np.add.at(v, nn, x64 - c64[nn])
    if vlfeat_order:
        v = l2_normalize(signed_sqrt(v), axis=1)
    else:
        v = signed_sqrt(l2_normalize(v, axis=1))
    return l2_normalize(v.ravel())


@register
class VladEncoder(Encoder):
    """Hard-assignment, intra-normalised VLAD over k-means centres; dim ``clusters * D``."""

    kind = "vlad"
    model_based = True
    params_spec = {
        **common_params(pca=64),
        "clusters": (32, pos_int),  # K centres
        "max_iter": (100, pos_int),  # k-means iterations
        "n_init": (1, pos_int),  # k-means restarts (best inertia kept)
        "vlfeat_order": (False, boolean),  # signed sqrt before intra-normalisation (vl_vlad's order)
    }

    centres: np.ndarray  # (K, D) float32

    def _out_dim(self, d: int) -> int:
        return self.params["clusters"] * d

    def _fit_model(self, z: np.ndarray) -> None:
        p = self.params
        if len(z) < p["clusters"]:
            raise ValueError(f"vlad: {len(z)} training frames are fewer than clusters={p['clusters']}")
        centres, _ = seeded_kmeans(z, p["clusters"], p["seed"], p["n_init"], p["max_iter"])
        self.centres = np.ascontiguousarray(centres, dtype=np.float32)

    def _encode(self, z: np.ndarray) -> np.ndarray:
        return vlad_encode(z, self.centres, self.params["vlfeat_order"])

    def _model_state(self) -> dict[str, np.ndarray]:
        return {"centres": self.centres}

    def _set_model_state(self, state: dict[str, np.ndarray]) -> None:
        self.centres = np.ascontiguousarray(state["centres"], dtype=np.float32)
