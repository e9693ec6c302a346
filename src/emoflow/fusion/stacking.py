"""Stacking: a meta-classifier on the experiments' class probabilities (stacked generalisation).

What: the validation-split probabilities of the M base experiments are concatenated into one
feature vector per video (``M * C`` features, log-probabilities by default) and a multinomial
logistic regression is trained on them to predict the emotion (Wolpert 1992, "Stacked
generalization", Neural Networks 5(2)).  The base experiments were trained on the train split
only, so their validation probabilities are honest inputs for the meta level.

Why: a weighted average can only re-scale whole models; stacking can also learn per-class
reliabilities, class confusions and calibration differences between experiments (e.g. a model
whose "fear" column actually signals "surprise").  It has many more parameters (``C * (M C + 1)``)
than the ``M - 1`` free weights, so it needs regularisation and an honest estimate.

How:

* Features: ``log(clip(p, eps, 1))`` (or the raw probabilities with ``features="prob"``).
  Log-probabilities make the softmax meta-model a weighted product of experts, which contains the
  geometric mean of the inputs as a special case.
* The inverse regularisation strength ``C`` is chosen from ``Cs`` by cross-validation *on the
  validation predictions* (StratifiedGroupKFold by speaker when groups are given, else
  StratifiedKFold; pooled out-of-fold predictions scored with the chosen metric; ties go to the
  smaller ``C``), then the model is refitted on all of validation.
* ``cv_scores``: nested cross-validation (``C`` selected inside each outer training part) with the
  same outer folds that :func:`emoflow.fusion.search.cv_score_weights` uses, so stacking and the
  weighted average are compared on equal footing.
* The fitted model is a plain dict (coef, intercept, classes, C, ...) that is JSON-serialisable;
  prediction is numpy softmax, so no pickle (and no sklearn) is needed to apply it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from emoflow.evaluate.metrics import scores
from emoflow.fusion.search import cv_splits, secondary_metric, stack_probs

DEFAULT_CS = (0.01, 0.1, 1.0, 10.0, 100.0)


def _features(stacked: np.ndarray, kind: str, eps: float) -> np.ndarray:
    """(M, n, C) probabilities -> (n, M*C) meta features, model-major."""
    if kind == "log":
        x = np.log(np.clip(stacked, eps, 1.0))
    elif kind == "prob":
        x = stacked
    else:
        raise ValueError(f"features must be 'log' or 'prob', got {kind!r}")
    return np.concatenate(list(x), axis=1)


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial L2 logistic regression -> (coef, intercept, classes); one class -> constant model."""
    classes = np.unique(y)
    if len(classes) == 1:
        return np.zeros((1, x.shape[1])), np.zeros(1), classes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        lr = LogisticRegression(C=c, max_iter=max_iter).fit(x, y)
    return lr.coef_.copy(), lr.intercept_.copy(), lr.classes_.astype(np.int64)


def _predict(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) probabilities of a fitted (coef, intercept, classes); absent classes get 0."""
    z = x @ coef.T + intercept
    if len(classes) == 2 and coef.shape[0] == 1:  # sklearn's binary form: one logit for classes[1]
        z = np.hstack([np.zeros_like(z), z])
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    out = np.zeros((len(x), n_classes))
    out[:, classes] = p
    return out


class Stacker:
    """Logistic-regression stacking of M experiments' (n, C) class probabilities.

    ``fit(probs_list, y, groups=None)`` selects ``C`` by cross-validation on the given
    (validation) predictions, fills ``cv_scores`` by nested cross-validation and refits on all
    samples; ``predict_proba(probs_list)`` returns (n, C) fused probabilities; ``to_dict`` /
    ``from_dict`` round-trip the fitted model through plain JSON-able values.
    """

    def __init__(
        self,
        Cs: Sequence[float] = DEFAULT_CS,
        *,
        folds: int = 5,
        metric: str = "accuracy",
        features: str = "log",
        eps: float = 1e-6,
        seed: int = 0,
        max_iter: int = 2000,
        nested: bool = True,
    ):
        secondary_metric(metric)  # validates the metric name
        if not Cs:
            raise ValueError("Cs must not be empty")
        self.Cs = tuple(float(c) for c in Cs)
        self.folds, self.metric, self.features, self.eps = folds, metric, features, eps
        self.seed, self.max_iter, self.nested = seed, max_iter, nested
        self.C: float | None = None
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None
        self.classes: np.ndarray | None = None
        self.n_classes: int | None = None
        self.n_models: int | None = None
        self.cv_scores: dict | None = None
        self.cv_by_C: dict | None = None

    # -- fitting ---------------------------------------------------------------------------

    def _oof(self, x: np.ndarray, y: np.ndarray, splits, c: float, n_classes: int) -> np.ndarray:
        pred = np.empty(len(y), dtype=np.int64)
        for train, test in splits:
            coef, icpt, cls = _fit_lr(x[train], y[train], c, self.max_iter)
            pred[test] = _predict(x[test], coef, icpt, cls, n_classes).argmax(axis=1)
        return pred

    def _select_c(self, x: np.ndarray, y: np.ndarray, splits, n_classes: int) -> tuple[float, dict]:
        """Best C by pooled out-of-fold metric; ties -> higher secondary metric, then smaller C."""
        secondary = secondary_metric(self.metric)
        table = {c: scores(y, self._oof(x, y, splits, c, n_classes), n_classes) for c in self.Cs}
        best = max(self.Cs, key=lambda c: (round(table[c][self.metric], 10), round(table[c][secondary], 10), -c))
        return best, table

    def fit(self, probs_list: Sequence[np.ndarray], y, groups=None) -> Stacker:
        stacked = stack_probs(probs_list)
        m, n, n_classes = stacked.shape
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (n,):
            raise ValueError(f"{len(y)} labels for {n} samples")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes})")
        groups = None if groups is None else np.asarray(groups)
        x = _features(stacked, self.features, self.eps)
        splits = cv_splits(y, groups, self.folds, self.seed)
        self.C, table = self._select_c(x, y, splits, n_classes)
        self.cv_by_C = {str(c): {k: float(v) for k, v in s.items()} for c, s in table.items()}

        if self.nested:  # honest estimate: C chosen inside each outer training part
            pred = np.empty(n, dtype=np.int64)
            chosen = []
            for train, test in splits:
                inner_groups = None if groups is None else groups[train]
                try:
                    inner = cv_splits(y[train], inner_groups, self.folds, self.seed)
                    c, _ = self._select_c(x[train], y[train], inner, n_classes)
                except ValueError:  # too few groups inside this part to cross-validate
                    c = self.C
                coef, icpt, cls = _fit_lr(x[train], y[train], c, self.max_iter)
                pred[test] = _predict(x[test], coef, icpt, cls, n_classes).argmax(axis=1)
                chosen.append(c)
            cv = scores(y, pred, n_classes)
        else:  # the selection score itself (slightly optimistic)
            cv, chosen = dict(table[self.C]), [self.C] * len(splits)
        self.cv_scores = {
            **{k: float(v) if k != "n" else int(v) for k, v in cv.items()},
            "folds": len(splits),
            "nested": self.nested,
            "fold_C": chosen,
        }

        self.coef, self.intercept, self.classes = _fit_lr(x, y, self.C, self.max_iter)
        self.n_classes, self.n_models = n_classes, m
        return self

    # -- prediction ------------------------------------------------------------------------

    def predict_proba(self, probs_list: Sequence[np.ndarray]) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("Stacker is not fitted")
        stacked = stack_probs(probs_list)
        if stacked.shape[0] != self.n_models or stacked.shape[2] != self.n_classes:
            raise ValueError(
                f"expected {self.n_models} models x {self.n_classes} classes, "
                f"got {stacked.shape[0]} x {stacked.shape[2]}"
            )
        x = _features(stacked, self.features, self.eps)
        return _predict(x, self.coef, self.intercept, self.classes, self.n_classes)

    # -- plain-dict (JSON) form ------------------------------------------------------------

    def to_dict(self) -> dict:
        if self.coef is None:
            raise RuntimeError("Stacker is not fitted")
        return {
            "type": "logistic_stacking",
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "classes": [int(c) for c in self.classes],
            "n_classes": int(self.n_classes),
            "n_models": int(self.n_models),
            "C": float(self.C),
            "Cs": list(self.Cs),
            "features": self.features,
            "eps": float(self.eps),
            "metric": self.metric,
            "folds": int(self.folds),
            "seed": int(self.seed),
            "cv_scores": self.cv_scores,
            "cv_by_C": self.cv_by_C,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Stacker:
        st = cls(
            d.get("Cs", DEFAULT_CS),
            folds=d.get("folds", 5),
            metric=d.get("metric", "accuracy"),
            features=d["features"],
            eps=d["eps"],
            seed=d.get("seed", 0),
        )
        st.coef = np.asarray(d["coef"], dtype=float)
        st.intercept = np.asarray(d["intercept"], dtype=float)
        st.classes = np.asarray(d["classes"], dtype=np.int64)
        st.n_classes, st.n_models, st.C = int(d["n_classes"]), int(d["n_models"]), float(d["C"])
        st.cv_scores, st.cv_by_C = d.get("cv_scores"), d.get("cv_by_C")
        return st
