"""The encoder interface shared by every temporal encoder, plus optional PCA and bounded
frame subsampling for the fitted ones.

An encoder turns one video's frame-level features, an ``(n, d)`` array with ``n >= 1``, into
one ``(dim,)`` float32 vector.  Encoders with a learnt model (Fisher, VLAD, or any encoder
given ``pca``) must be :meth:`Encoder.fit` on the *training* videos only; the caller passes
only training sequences.  ``fit`` replaces the whole model and ``transform`` never changes it.

Fitting pipeline (all fitted encoders)::

    frames = at most max_frames rows drawn uniformly without replacement from all training
             frames (numpy default_rng(seed)); all frames when there are fewer
    PCA    (optional, pca=D): mean m, top-D eigenvectors W (D, d) of the frame covariance,
           z = (x - m) W^T, or z_j / sqrt(lambda_j) with whiten=True
    model  fitted on z (GMM, k-means, nothing for pooling)

PCA is computed from the covariance matrix (accumulated in float64 chunks, then ``eigh``),
so the projected dimension is always ``D = min(pca, d)`` even with fewer frames than ``D``
(directions beyond the data's rank get zero variance).  Each component's sign is fixed so
that its largest-magnitude coefficient is positive.

Storage: :meth:`Encoder.save` writes one ``.npz`` (``allow_pickle=False``) holding the type,
the parameters as JSON, the input dimension, the PCA arrays (``pca_*``) and the model arrays
(``model_*``); :meth:`Encoder.load` restores an identical encoder.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

FORMAT_VERSION = 1
REGISTRY: dict[str, type[Encoder]] = {}


def register(cls: type[Encoder]) -> type[Encoder]:
    """Class decorator: make ``cls`` available to :func:`emoflow.encode.make` under ``cls.kind``."""
    REGISTRY[cls.kind] = cls
    return cls


# ---------------------------------------------------------------- parameter validators
Validator = Callable[[str, str, Any], Any]


def pos_int(kind: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{kind}: parameter {name!r} must be an integer >= 1, got {value!r}")
    return int(value)


def nonneg_int(kind: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**32:
        raise ValueError(f"{kind}: parameter {name!r} must be an integer in [0, 2**32), got {value!r}")
    return int(value)


def opt_pos_int(kind: str, name: str, value: Any) -> int | None:
    """``None`` or ``0`` switch the option off."""
    if value is None or (not isinstance(value, bool) and isinstance(value, numbers.Integral) and value == 0):
        return None
    return pos_int(kind, name, value)


def pos_float(kind: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{kind}: parameter {name!r} must be a finite number > 0, got {value!r}")
    return float(value)


def boolean(kind: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{kind}: parameter {name!r} must be true or false, got {value!r}")
    return bool(value)


def common_params(pca: int | None) -> dict[str, tuple[Any, Validator]]:
    """The parameters every encoder accepts, with ``pca``'s default per encoder."""
    return {
        "pca": (pca, opt_pos_int),  # project frames to this many PCA dims first (None/0: off)
        "whiten": (False, boolean),  # divide PCA coordinates by sqrt(eigenvalue)
        "max_frames": (100_000, pos_int),  # at most this many training frames are used to fit
        "seed": (0, nonneg_int),  # subsampling and k-means initialisation
    }


# ---------------------------------------------------------------- helpers
def check_sequence(seq: Any, d_in: int | None = None, what: str = "sequence") -> np.ndarray:
    """Validate one video's features: 2-D, at least one frame, finite; returns float32."""
    a = np.asarray(seq)
    if a.ndim != 2:
        raise ValueError(f"{what}: expected an (n_frames, d) array, got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{what}: needs at least one frame and one feature, got shape {a.shape}")
    if d_in is not None and a.shape[1] != d_in:
        raise ValueError(f"{what}: has {a.shape[1]} features, the encoder was fitted on {d_in}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{what}: expected real numbers, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: contains NaN or infinite values")
    return a


def training_frames(seqs: Sequence[np.ndarray], max_frames: int, seed: int) -> np.ndarray:
    """All frames of ``seqs`` stacked, or ``max_frames`` of them drawn uniformly at random
    without replacement (``default_rng(seed)``, kept in their original order)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    total = int(lengths.sum())
    if total <= max_frames:
        return np.concatenate(seqs, axis=0)
    idx = np.sort(np.random.default_rng(seed).choice(total, size=max_frames, replace=False))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    owner = np.searchsorted(starts, idx, side="right") - 1  # which sequence each index falls in (sorted)
    cut = np.searchsorted(owner, np.arange(len(seqs) + 1))  # idx[cut[i]:cut[i+1]] fall in sequence i
    parts = [seqs[i][idx[cut[i] : cut[i + 1]] - starts[i]] for i in range(len(seqs)) if cut[i + 1] > cut[i]]
    return np.concatenate(parts, axis=0)


def fit_pca(x: np.ndarray, n_components: int, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of the rows of ``x``: ``(mean (d,), components (D, d), variances (D,))``, float64,
    variances in decreasing order (population covariance)."""
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64)
    cov = np.zeros((d, d))
    for i in range(0, n, chunk):  # bounded memory for large frame sets
        xc = x[i : i + chunk].astype(np.float64) - mean
        cov += xc.T @ xc
    cov /= n
    evals, evecs = np.linalg.eigh(cov)  # ascending
    order = np.argsort(evals, kind="stable")[::-1][:n_components]
    comps = evecs[:, order].T.copy()
    pivot = comps[np.arange(len(order)), np.argmax(np.abs(comps), axis=1)]
    comps *= np.where(pivot < 0, -1.0, 1.0)[:, None]  # deterministic signs
    return mean, comps, np.clip(evals[order], 0.0, None)


def seeded_kmeans(z: np.ndarray, k: int, seed: int, n_init: int, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd k-means (scikit-learn, k-means++ seeded with ``seed``): ``(centres (k, D), labels (n,))``.
    Duplicate points (fewer distinct points than ``k``) are allowed; sklearn's warning is silenced."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    if len(z) < k:
        raise ValueError(f"{len(z)} training frames are fewer than clusters={k}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed).fit(z.astype(np.float64))
    return km.cluster_centers_, km.labels_


def l2_normalize(v: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``v / ||v||``; an all-zero vector stays zero (no NaN)."""
    n = np.sqrt(np.sum(v * v, axis=axis, keepdims=axis is not None))
    return v / np.maximum(n, 1e-12)


def signed_sqrt(v: np.ndarray) -> np.ndarray:
    """Power normalisation with alpha = 1/2: ``sign(v) sqrt(|v|)``."""
    return np.sign(v) * np.sqrt(np.abs(v))


# ---------------------------------------------------------------- base class
class Encoder:
    """Base class. Subclasses set ``kind``, ``params_spec`` (every accepted parameter: default
    and validator), ``model_based`` (needs a fit even without PCA) and implement
    ``_encode`` and ``_out_dim``, plus ``_fit_model`` / ``_model_state`` / ``_set_model_state``
    when ``model_based``."""

    kind: ClassVar[str] = ""
    params_spec: ClassVar[dict[str, tuple[Any, Validator]]] = {}
    model_based: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.params_spec))
        if unknown:
            raise ValueError(f"{self.kind}: unknown parameter(s) {unknown} (accepted: {sorted(self.params_spec)})")
        self.params: dict[str, Any] = {}
        for name, (default, check) in self.params_spec.items():
            self.params[name] = check(self.kind, name, params.get(name, default))
        self.d_in: int | None = None  # input dimension seen by fit
        self._pca: dict[str, np.ndarray] | None = None  # mean, components, variances
        self._fitted = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params}, fitted={self.fitted})"

    # -- state
    @property
    def needs_fit(self) -> bool:
        return self.model_based or self.params["pca"] is not None

    @property
    def fitted(self) -> bool:
        """True once fitted, or always for encoders without a learnt model (pooling without PCA)."""
        return self._fitted or not self.needs_fit

    def projected_dim(self, d_in: int) -> int:
        """Frame dimension after the optional PCA."""
        return d_in if self.params["pca"] is None else min(self.params["pca"], d_in)

    def dim(self, d_in: int | None = None) -> int:
        """Length of the video vector for ``d_in``-dimensional frames (optional once fitted)."""
        if self.d_in is not None and d_in is not None and d_in != self.d_in:
            raise ValueError(f"{self.kind}: fitted on {self.d_in}-dimensional frames, not {d_in}")
        d = self.d_in if self.d_in is not None else d_in
        if d is None:
            raise ValueError(f"{self.kind}: dim() needs d_in before the encoder is fitted")
        return self._out_dim(self.projected_dim(int(d)))

    # -- fitting
    def fit(self, seqs: Sequence[np.ndarray]) -> Encoder:
        """Fit PCA and the model on the training videos' frames (replaces any previous fit).
        A no-op (after validation) for encoders without a learnt model."""
        seqs = [check_sequence(s, what=f"{self.kind}.fit: sequence {i}") for i, s in enumerate(seqs)]
        if not seqs:
            raise ValueError(f"{self.kind}.fit: no training sequences")
        d = seqs[0].shape[1]
        bad = [i for i, s in enumerate(seqs) if s.shape[1] != d]
        if bad:
            raise ValueError(f"{self.kind}.fit: sequences {bad[:10]} do not have {d} features like sequence 0")
        if not self.needs_fit:
            return self
        self._fitted, self.d_in, self._pca = False, None, None
        x = training_frames(seqs, self.params["max_frames"], self.params["seed"])
        if self.params["pca"] is not None:
            mean, comps, var = fit_pca(x, self.projected_dim(d))
            self._pca = {"mean": mean, "components": comps, "variances": var}
        self.d_in = d
        if self.model_based:
            self._fit_model(self._project(x))
        self._fitted = True
        return self

    def _fit_model(self, z: np.ndarray) -> None:
        raise NotImplementedError

    # -- encoding
    def _project(self, x: np.ndarray) -> np.ndarray:
        if self._pca is None:
            return x.astype(np.float32, copy=False)
        w = self._pca["components"].T  # (d, D)
        if self.params["whiten"]:
            var = self._pca["variances"]
            w = w / np.sqrt(np.maximum(var, max(1e-6 * float(var.max(initial=0.0)), 1e-12)))
        return ((x.astype(np.float64) - self._pca["mean"]) @ w).astype(np.float32)

    def project(self, seq: np.ndarray) -> np.ndarray:
        """The frames as the model sees them (after the optional PCA), float32 ``(n, D)``."""
        self._require_fitted()
        return self._project(check_sequence(seq, self.d_in, what=f"{self.kind}.project"))

    def transform(self, seq: np.ndarray) -> np.ndarray:
        """One video's ``(n, d)`` frame features -> ``(dim,)`` finite float32 vector."""
        z = self.project(seq)
        out = np.asarray(self._encode(z), dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(out)):  # cannot happen for finite inputs of sane magnitude
            raise FloatingPointError(f"{self.kind}: encoding overflowed (input magnitude too large?)")
        return out

    def transform_many(self, seqs: Sequence[np.ndarray]) -> np.ndarray:
        """Stack of :meth:`transform` over videos: ``(n_videos, dim)`` float32."""
        rows = [self.transform(s) for s in seqs]
        if not rows:
            return np.zeros((0, self.dim()), dtype=np.float32)
        return np.stack(rows)

    def _encode(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _out_dim(self, d: int) -> int:
        raise NotImplementedError

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{self.kind}: call fit() on the training videos before transform()")

    # -- persistence
    def _model_state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_model_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def save(self, path: str | os.PathLike) -> Path:
        """Write the encoder to one ``.npz`` file at exactly ``path`` (atomically)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT_VERSION),
            "type": np.array(self.kind),
            "params": np.array(json.dumps(self.params, sort_keys=True)),
            "fitted": np.array(self._fitted),
            "d_in": np.array(-1 if self.d_in is None else self.d_in),
        }
        if self._pca is not None:
            arrays.update({f"pca_{k}": v for k, v in self._pca.items()})
        if self._fitted:
            arrays.update({f"model_{k}": v for k, v in self._model_state().items()})
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Encoder:
        """Read an encoder written by :meth:`save` (any type when called on :class:`Encoder`)."""
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        if int(data["format"]) != FORMAT_VERSION:
            raise ValueError(f"{path}: encoder file format {int(data['format'])}, expected {FORMAT_VERSION}")
        kind = str(data["type"])
        if kind not in REGISTRY:
            raise ValueError(f"{path}: unknown encoder type {kind!r} (valid: {sorted(REGISTRY)})")
        target = REGISTRY[kind]
        if cls is not Encoder and not issubclass(target, cls):
            raise ValueError(f"{path}: holds a {kind!r} encoder, not {cls.kind!r}")
        enc = target(**json.loads(str(data["params"])))
        d_in = int(data["d_in"])
        enc.d_in = None if d_in < 0 else d_in
        pca = {k[4:]: v for k, v in data.items() if k.startswith("pca_")}
        enc._pca = pca or None
        if bool(data["fitted"]):
            enc._set_model_state({k[6:]: v for k, v in data.items() if k.startswith("model_")})
            enc._fitted = True
        return enc
