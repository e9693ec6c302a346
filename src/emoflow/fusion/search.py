"""Weighted-average (and weighted product) late fusion with weights searched on the validation
split (EmotiW style).

What: the fused class probabilities are a convex combination of the experiments'
probabilities, ``P = sum_m w_m P_m`` with ``w_m >= 0`` and ``sum w_m = 1``; the prediction is
``argmax P``.  The weights are chosen to maximise a metric (accuracy or UAR) on validation.

Why: this is how the EmotiW winners combined modalities (Kahou et al. 2013, "Combining modality
specific deep neural networks for emotion recognition in video", ICMI; Kahou et al. 2016,
"EmoNets", J. Multimodal User Interfaces): few parameters, robust with a few hundred validation
videos, and easy to read (how much each modality contributes).

Search:

* Exhaustive (up to ``max_models_exhaustive`` models): every point of the simplex lattice with
  spacing ``step`` (weights in ``{0, step, 2 step, ..., 1}`` that sum to 1), i.e.
  ``binom(1/step + M - 1, M - 1)`` candidates (1771 for 4 models at step 0.05).
* Coordinate ascent (more models): a move transfers ``k`` lattice units of weight from one model
  to another (the pairwise "coordinate" move that stays on the simplex); every move is scored
  and the best strictly improving one taken, until none improves.  Restarts: the uniform point,
  the best single model, then ``rounds - 2`` random lattice points drawn from a flat Dirichlet
  with ``numpy.random.default_rng(seed)``; the best end point wins.  Deterministic for a seed; it
  finds a local optimum of the lattice, not necessarily the global one.
* An explicit ``grid`` (K, M) of candidate weight vectors may be given instead; it is scored
  exhaustively.

Tie-break (so that a constructed case has a unique answer): higher primary metric, then higher
secondary metric (UAR when optimising accuracy, accuracy when optimising UAR), then the most
uniform weights (lowest L2 norm, i.e. spread over more models), then the lexicographically
largest weight vector (earlier models first).  Scores are compared after rounding to 10
decimals, so float noise does not break ties.  Ties of ``argmax`` inside one sample go to the
lower class index (numpy).

Caveat: the score returned by :func:`search_weights` is optimistic, since the weights were tuned
on the same samples.  :func:`cv_score_weights` gives an honest estimate (search on k-1 folds of
validation, score the held-out fold, pool the out-of-fold predictions), comparable with the
cross-validated score of stacking (:mod:`emoflow.fusion.stacking`).

:func:`fuse_product` is the weighted product rule (geometric mean of the probabilities); its
weights are searched by the same code on :func:`log_scores`.

:func:`greedy_select` is the alternative of Caruana et al. 2004 ("Ensemble selection from
libraries of models", ICML): forward selection with replacement; the weights are the selection
counts.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from emoflow.evaluate.metrics import scores

METRICS = ("accuracy", "uar")
_DECIMALS = 10
_MAX_CANDIDATES = 2_000_000  # exhaustive lattice larger than this is refused (use coordinate ascent)
_CHUNK_ELEMENTS = 4_000_000  # fused probabilities held at once while scoring candidates


def stack_probs(probs: Sequence[np.ndarray]) -> np.ndarray:
    """Check and stack M probability matrices of equal shape (n, C) into an (M, n, C) float array."""
    if len(probs) == 0:
        raise ValueError("no probability matrices given")
    arrays = [np.asarray(p, dtype=float) for p in probs]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape != shape:
            raise ValueError(f"probability matrix {i} has shape {a.shape}, expected 2-D {shape}")
        if not np.all(np.isfinite(a)) or (a < 0).any():
            raise ValueError(f"probability matrix {i} has negative or non-finite values")
    return np.stack(arrays)


def _normalise(weights, m: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float).ravel()
    if w.size != m:
        raise ValueError(f"{w.size} weights for {m} models")
    if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative, finite and not all zero")
    return w / w.sum()


def fuse(probs: Sequence[np.ndarray], weights) -> np.ndarray:
    """Weighted average (n, C) of the models' probabilities; weights are normalised to sum to 1."""
    stacked = stack_probs(probs)
    return np.tensordot(_normalise(weights, stacked.shape[0]), stacked, axes=1)


#: Probability floor of the product rule (log 1e-6 = -13.8: one model's near-zero cannot veto a class alone).
LOG_FLOOR = 1e-6


def log_scores(probs: Sequence[np.ndarray], floor: float = LOG_FLOOR) -> list[np.ndarray]:
    """``log max(p, floor) - log floor`` per model: non-negative log-probabilities.  The shift is
    the same for every class of a model, so the argmax of any weighted sum equals that of the
    weighted sum of log-probabilities: :func:`search_weights` run on these searches the weights
    of the product rule."""
    return [np.log(np.clip(np.asarray(p, float), floor, 1.0)) - np.log(floor) for p in stack_probs(probs)]


def fuse_product(probs: Sequence[np.ndarray], weights, floor: float = LOG_FLOOR) -> np.ndarray:
    """Weighted product rule (log-linear pooling): ``P ∝ prod_m P_m ** w_m`` (weights normalised
    to sum 1, i.e. a weighted geometric mean), renormalised over classes.  For models whose
    errors are independent given the class (different modalities), the product of their
    posteriors is the Bayes combination (Kittler et al. 1998, "On combining classifiers");
    averaging probabilities under-uses agreement between them."""
    logits = fuse(log_scores(probs, floor), weights)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def secondary_metric(metric: str) -> str:
    """The tie-break metric: UAR when optimising accuracy, accuracy when optimising UAR."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return "uar" if metric == "accuracy" else "accuracy"


def _present_mask(present, m: int, n: int) -> np.ndarray | None:
    if present is None:
        return None
    mask = np.asarray(present, bool)
    if mask.shape != (m, n):
        raise ValueError(f"present must be (models, samples) = ({m}, {n}), got {mask.shape}")
    return mask


def fuse_present(stacked: np.ndarray, weights, present=None) -> np.ndarray:
    """Weighted average (n, C) as fusion applies it at predict time: each row's weights
    renormalised over the models *present* in it (``present`` (M, n) bool: the model's feature
    was not missing); a row in which no model of non-zero weight is present keeps the full
    weights (the models' stand-in priors).  Without ``present``: :func:`fuse`."""
    stacked = np.asarray(stacked, float)
    w = _normalise(weights, stacked.shape[0])
    mask = _present_mask(present, *stacked.shape[:2])
    if mask is None:
        return np.tensordot(w, stacked, axes=1)
    wm = w[:, None] * mask  # (M, n)
    denom = wm.sum(axis=0)
    none = denom <= 0
    wm[:, none] = w[:, None]
    denom[none] = 1.0
    return np.einsum("mn,mnc->nc", wm, stacked) / denom[:, None]


class _Scorer:
    """Scores many weight vectors at once: accuracy and UAR of argmax of the fused probabilities
    (renormalised over the models present in each row when ``present`` is given, exactly as
    :func:`emoflow.fusion.choose.apply` fuses at predict time)."""

    def __init__(self, stacked: np.ndarray, y, metric: str, present=None):
        self.m, self.n, self.c = stacked.shape
        self.flat = stacked.reshape(self.m, self.n * self.c)
        self.mask = _present_mask(present, self.m, self.n)
        if self.mask is not None:
            self.maskf = self.mask.astype(float)
            self.flat_present = (stacked * self.maskf[:, :, None]).reshape(self.m, self.n * self.c)
        self.y = np.asarray(y, dtype=np.int64)
        if self.y.shape != (self.n,):
            raise ValueError(f"{self.y.shape[0] if self.y.ndim else 0} labels for {self.n} samples")
        if self.n == 0:
            raise ValueError("no samples")
        if self.y.min() < 0 or self.y.max() >= self.c:
            raise ValueError(f"labels must lie in [0, {self.c})")
        present = np.unique(self.y)
        self.onehot = (self.y[:, None] == present[None, :]).astype(float)  # (n, classes present)
        self.support = self.onehot.sum(axis=0)
        self.metric, self.secondary = metric, secondary_metric(metric)

    def evaluate(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, M) non-negative weights (rows need not be normalised) -> accuracy (K,), uar (K,)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        acc, uar = np.empty(len(weights)), np.empty(len(weights))
        step = max(1, _CHUNK_ELEMENTS // (self.n * self.c))
        for s in range(0, len(weights), step):
            w = weights[s : s + step]
            if self.mask is None:
                fused = (w @ self.flat).reshape(-1, self.n, self.c)
            else:  # row-wise renormalisation does not move the argmax: dropping the absent models does
                fused = (w @ self.flat_present).reshape(-1, self.n, self.c)
                none = (w @ self.maskf) <= 0  # (k, n): no weighted model present -> full weights
                if none.any():
                    fused = np.where(none[:, :, None], (w @ self.flat).reshape(-1, self.n, self.c), fused)
            correct = (fused.argmax(axis=2) == self.y).astype(float)  # (k, n)
            acc[s : s + step] = correct.mean(axis=1)
            uar[s : s + step] = (correct @ self.onehot / self.support).mean(axis=1)
        return acc, uar

    def primary_secondary(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        acc, uar = self.evaluate(weights)
        return (acc, uar) if self.metric == "accuracy" else (uar, acc)


def _key(prim: float, sec: float, w: np.ndarray) -> tuple:
    """Sort key (larger is better) implementing the documented tie-break."""
    w = np.round(w / w.sum(), _DECIMALS)
    return (
        round(float(prim), _DECIMALS),
        round(float(sec), _DECIMALS),
        -round(float(w @ w), _DECIMALS),
        tuple(w.tolist()),
    )


def _best_index(weights: np.ndarray, prim: np.ndarray, sec: np.ndarray) -> int:
    """Index of the best candidate under the tie-break (vectorised form of :func:`_key`)."""
    w = np.round(weights / weights.sum(axis=1, keepdims=True), _DECIMALS)
    sumsq = np.round((w * w).sum(axis=1), _DECIMALS)
    # np.lexsort: last key is the primary one; ascending, so negate what should be large.
    keys = [-w[:, j] for j in reversed(range(w.shape[1]))] + [
        sumsq,
        -np.round(sec, _DECIMALS),
        -np.round(prim, _DECIMALS),
    ]
    return int(np.lexsort(keys)[0])


def _lattice(m: int, units: int) -> np.ndarray:
    """All (K, m) non-negative int vectors summing to ``units`` (stars and bars)."""
    count = math.comb(units + m - 1, m - 1)
    if count > _MAX_CANDIDATES:
        raise ValueError(f"{count} lattice points for {m} models at this step; use a coarser step or coordinate ascent")
    if m == 1:
        return np.array([[units]])
    bars = np.array(list(itertools.combinations(range(units + m - 1), m - 1)), dtype=np.int64)
    edges = np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), units + m - 1)])
    return np.diff(edges, axis=1) - 1


def _units(step: float) -> int:
    units = round(1.0 / step)
    if step <= 0 or units < 1 or abs(units * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 (e.g. 0.05, 0.1, 0.25), got {step}")
    return units


def _round_to_lattice(w: np.ndarray, units: int) -> np.ndarray:
    """Largest-remainder rounding of a weight vector to int units summing to ``units``."""
    raw = w / w.sum() * units
    out = np.floor(raw).astype(np.int64)
    rest = units - int(out.sum())
    out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def _ascend(start: np.ndarray, scorer: _Scorer) -> tuple[np.ndarray, tuple]:
    """Pairwise-transfer coordinate ascent on the lattice from ``start`` (int units)."""
    cur = start.copy()
    prim, sec = scorer.primary_secondary(cur[None, :])
    cur_key = _key(prim[0], sec[0], cur.astype(float))
    m = len(cur)
    while True:
        moves = []
        for i in range(m):
            for j in range(m):
                if i == j or cur[i] == 0:
                    continue
                for k in range(1, cur[i] + 1):
                    cand = cur.copy()
                    cand[i] -= k
                    cand[j] += k
                    moves.append(cand)
        if not moves:  # a single model
            return cur, cur_key
        cands = np.array(moves)
        prim, sec = scorer.primary_secondary(cands)
        b = _best_index(cands.astype(float), prim, sec)
        key = _key(prim[b], sec[b], cands[b].astype(float))
        if key <= cur_key:  # no strictly better move: a local optimum (the key set is finite, so this ends)
            return cur, cur_key
        cur, cur_key = cands[b], key


def search_weights(
    probs: Sequence[np.ndarray],
    y,
    *,
    step: float = 0.05,
    grid=None,
    metric: str = "accuracy",
    max_models_exhaustive: int = 4,
    seed: int = 0,
    rounds: int = 8,
    present=None,
) -> tuple[np.ndarray, float]:
    """Fusion weights maximising ``metric`` of the fused prediction on (validation) labels ``y``.

    Exhaustive over the simplex lattice of spacing ``step`` for up to ``max_models_exhaustive``
    models, otherwise coordinate ascent with ``rounds`` deterministic restarts (see the module
    docstring); an explicit ``grid`` (K, M) of candidate weight vectors is scored exhaustively
    instead.  ``present`` ((M, n) bool, optional): which rows each model really predicted;
    candidates are then scored with the predict-time rule (:func:`fuse_present`).
    Returns the normalised weights (M,) and the (optimistic, in-sample) metric value.
    """
    stacked = stack_probs(probs)
    scorer = _Scorer(stacked, y, metric, present)
    m = stacked.shape[0]
    if grid is not None:
        cands = np.atleast_2d(np.asarray(grid, dtype=float))
        if cands.shape[1] != m or (cands < 0).any() or (cands.sum(axis=1) <= 0).any():
            raise ValueError(f"grid must be (K, {m}) non-negative rows with a positive sum")
        cands = cands / cands.sum(axis=1, keepdims=True)
    elif m <= max_models_exhaustive:
        cands = _lattice(m, _units(step)).astype(float)
    else:
        units = _units(step)
        vertices = np.eye(m, dtype=np.int64) * units
        prim, sec = scorer.primary_secondary(vertices)
        starts = [_round_to_lattice(np.ones(m), units), vertices[_best_index(vertices.astype(float), prim, sec)]]
        rng = np.random.default_rng(seed)
        starts += [_round_to_lattice(rng.dirichlet(np.ones(m)), units) for _ in range(max(0, rounds - 2))]
        ends = {}
        for s in starts:
            end, key = _ascend(s, scorer)
            ends[tuple(end.tolist())] = key
        best = np.array(max(ends, key=ends.get), dtype=float)
        return best / units, float(scorer.primary_secondary(best[None, :])[0][0])
    prim, sec = scorer.primary_secondary(cands)
    b = _best_index(cands, prim, sec)
    return cands[b] / cands[b].sum(), float(prim[b])


def greedy_select(
    probs: Sequence[np.ndarray], y, *, metric: str = "accuracy", n_iter: int = 50, present=None
) -> tuple[np.ndarray, float]:
    """Caruana et al. (2004) ensemble selection: forward selection of models with replacement.

    Starts from the best single model; each iteration adds (again, possibly) the model whose
    addition gives the best fused score (same tie-break as :func:`search_weights`).  The weights
    are the selection counts of the best ensemble seen over the iterations (the earliest, i.e.
    smallest, on ties).  ``present`` as for :func:`search_weights`.  Returns (weights (M,), metric value).
    """
    stacked = stack_probs(probs)
    scorer = _Scorer(stacked, y, metric, present)
    m = stacked.shape[0]
    eye = np.eye(m)
    counts = np.zeros(m)
    best_counts, best_key = None, None
    for _ in range(max(1, n_iter)):
        cands = counts + eye
        prim, sec = scorer.primary_secondary(cands)
        b = _best_index(cands, prim, sec)
        counts = cands[b]
        key = (round(float(prim[b]), _DECIMALS), round(float(sec[b]), _DECIMALS))
        if best_key is None or key > best_key:
            best_counts, best_key = counts.copy(), key
    return best_counts / best_counts.sum(), float(scorer.primary_secondary(best_counts[None, :])[0][0])


def cv_splits(y, groups=None, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold splits of the validation samples; grouped (by speaker) when ``groups`` is given.

    ``folds`` is lowered to the number of groups (or samples) when there are fewer.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    dummy = np.zeros(len(y))
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError("groups must have one entry per sample")
        k = min(folds, len(np.unique(groups)))
        splitter, args = StratifiedGroupKFold(n_splits=max(k, 2), shuffle=True, random_state=seed), (dummy, y, groups)
    else:
        k = min(folds, len(y))
        splitter, args = StratifiedKFold(n_splits=max(k, 2), shuffle=True, random_state=seed), (dummy, y)
    if k < 2:
        raise ValueError(f"need at least 2 {'groups' if groups is not None else 'samples'} for cross-validation")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class", category=UserWarning)
        return [(tr, te) for tr, te in splitter.split(*args)]


def cv_score_weights(
    probs: Sequence[np.ndarray],
    y,
    groups=None,
    folds: int = 5,
    *,
    metric: str = "accuracy",
    seed: int = 0,
    selector: Callable[..., tuple[np.ndarray, float]] | None = None,
    present=None,
    **search_kw,
) -> dict:
    """Honest validation estimate of weighted-average fusion by cross-validation on the validation split.

    For each fold, weights are searched on the other folds (``selector``, default
    :func:`search_weights` with ``seed`` and ``search_kw``; e.g. :func:`greedy_select`, called as
    ``selector(probs, y, metric=metric)``) and the held-out fold is fused with them; the
    out-of-fold predictions are pooled and scored (with ``present``, by the predict-time rule
    :func:`fuse_present` in both the search and the scoring).  Returns ``{"accuracy", "uar", "macro_f1",
    "n", "folds", "fold_weights"}``.
    """
    stacked = stack_probs(probs)
    y = np.asarray(y, dtype=np.int64)
    select = selector if selector is not None else partial(search_weights, seed=seed, **search_kw)
    pred = np.empty(len(y), dtype=np.int64)
    fold_weights = []
    splits = cv_splits(y, groups, folds, seed)
    mask = _present_mask(present, *stacked.shape[:2])
    for train, test in splits:
        if mask is None:
            w, _ = select(list(stacked[:, train]), y[train], metric=metric)
        else:
            w, _ = select(list(stacked[:, train]), y[train], metric=metric, present=mask[:, train])
        pred[test] = fuse_present(stacked[:, test], w, None if mask is None else mask[:, test]).argmax(axis=1)
        fold_weights.append([float(v) for v in w])
    out = scores(y, pred, stacked.shape[2])
    out.update(folds=len(splits), fold_weights=fold_weights)
    return out
