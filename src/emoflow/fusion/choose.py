"""Choose the late-fusion method on validation and apply it to test.

What: :func:`choose` fits every candidate method on the validation probabilities of the
experiments, estimates each by cross-validation *within validation* and keeps the best;
:func:`apply` fuses other (test) probabilities with that choice.  The choice is a plain,
JSON-serialisable dict, so the workflow can store it and score test exactly once.

Methods:

* ``"weighted"``: EmotiW-style weighted average of class probabilities, weights searched on the
  simplex grid (Kahou et al. 2013; 2016), :func:`emoflow.fusion.search.search_weights`.
* ``"product"``: weighted product rule (log-linear pooling: a weighted geometric mean of the
  probabilities), weights searched like ``"weighted"`` (:func:`emoflow.fusion.search.fuse_product`);
  the Bayes combination for modalities whose errors are independent given the class.
* ``"caruana"``: ensemble selection with replacement (Caruana et al. 2004),
  :func:`emoflow.fusion.search.greedy_select`.
* ``"stacking"``: logistic-regression meta-classifier on log-probabilities (Wolpert 1992),
  :class:`emoflow.fusion.stacking.Stacker`.

Fair comparison: the in-sample score of a weight search is optimistic (the weights were tuned on
those samples), so methods are compared by their cross-validated scores on validation, using the
same folds (stratified, grouped by speaker when groups are given): weights are searched on k-1
folds and the held-out fold scored (:func:`emoflow.fusion.search.cv_score_weights`); stacking
uses nested cross-validation for its ``C``.  Ties go to higher secondary metric, then to the
earlier method in ``methods`` (by default the simpler weighted average).

Choice format::

    {"method": "weighted" | "product" | "caruana" | "stacking", "metric": "accuracy" | "uar",
     "secondary_metric": ..., "models": [names...], "n_classes": C, "n": n_val,
     "folds": k, "seed": s,
     "methods": {"weighted": {"weights": {name: w}, "fit": scores, "cv": cv scores},
                 "product":  {"weights": {name: w}, "fit": scores, "cv": cv scores},
                 "caruana":  {"weights": {name: w}, "fit": scores, "cv": cv scores},
                 "stacking": {"model": Stacker.to_dict(), "fit": scores, "cv": cv scores}},
     "table": [{"method", "cv_accuracy", "cv_uar", "cv_macro_f1", "fit_accuracy", "fit_uar", "fit_macro_f1"}]}

``fit`` is the in-sample validation score (optimistic), ``cv`` the cross-validated one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emoflow.evaluate.metrics import scores
from emoflow.fusion.search import (
    cv_score_weights,
    fuse,
    fuse_present,
    fuse_product,
    greedy_select,
    log_scores,
    search_weights,
    secondary_metric,
    stack_probs,
)
from emoflow.fusion.stacking import Stacker

METHODS = ("weighted", "product", "caruana", "stacking")


def _floats(d: Mapping) -> dict:
    """Scores dict with plain Python numbers (JSON-able)."""
    return {
        k: (int(v) if k in ("n", "folds") else float(v)) for k, v in d.items() if not isinstance(v, (list, dict, bool))
    }


def choose(
    val_probs: Mapping[str, np.ndarray],
    y_val,
    groups_val=None,
    methods: Sequence[str] = ("weighted", "stacking"),
    metric: str = "accuracy",
    *,
    folds: int = 5,
    seed: int = 0,
    search_kw: Mapping | None = None,
    stacking_kw: Mapping | None = None,
    present: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Fit and cross-validate each fusion method on validation; return the JSON-able choice (see module doc).

    ``present`` (model -> (n,) bool, optional): which validation rows each model really
    predicted.  Weights are then searched, cross-validated and scored with exactly the
    combination :func:`apply` uses at predict time (each row renormalised over the models
    present in it), not with the absent models' stand-in priors mixed in."""
    secondary = secondary_metric(metric)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown fusion methods {unknown}; choose from {METHODS}")
    names = list(val_probs)
    stacked = stack_probs([val_probs[k] for k in names])
    probs = list(stacked)
    n_classes = stacked.shape[2]
    y = np.asarray(y_val, dtype=np.int64)
    groups = None if groups_val is None else np.asarray(groups_val)
    search_kw = dict(search_kw or {})
    mask = None if present is None else np.stack([np.asarray(present[k], bool) for k in names])

    results: dict[str, dict] = {}
    for method in methods:
        if method in ("weighted", "product", "caruana"):
            inputs = log_scores(probs) if method == "product" else probs  # same argmax as the log-probabilities
            if method in ("weighted", "product"):
                w, _ = search_weights(inputs, y, metric=metric, seed=seed, present=mask, **search_kw)
                cv = cv_score_weights(inputs, y, groups, folds, metric=metric, seed=seed, present=mask, **search_kw)
            else:
                w, _ = greedy_select(probs, y, metric=metric, present=mask)
                cv = cv_score_weights(
                    probs, y, groups, folds, metric=metric, seed=seed, selector=greedy_select, present=mask
                )
            results[method] = {
                "weights": {name: float(v) for name, v in zip(names, w)},
                "fit": _floats(scores(y, fuse_present(np.stack(inputs), w, mask).argmax(axis=1), n_classes)),
                "cv": {**_floats(cv), "fold_weights": cv["fold_weights"]},
            }
        else:
            st = Stacker(**{"folds": folds, "metric": metric, "seed": seed, **(stacking_kw or {})}).fit(
                probs, y, groups
            )
            results[method] = {
                "model": st.to_dict(),
                "fit": _floats(scores(y, st.predict_proba(probs).argmax(axis=1), n_classes)),
                "cv": _floats(st.cv_scores),
            }

    table = [
        {
            "method": m,
            **{f"cv_{k}": results[m]["cv"][k] for k in ("accuracy", "uar", "macro_f1")},
            **{f"fit_{k}": results[m]["fit"][k] for k in ("accuracy", "uar", "macro_f1")},
        }
        for m in methods
    ]
    order = list(methods)
    best = max(
        order,
        key=lambda m: (round(results[m]["cv"][metric], 10), round(results[m]["cv"][secondary], 10), -order.index(m)),
    )
    return {
        "method": best,
        "metric": metric,
        "secondary_metric": secondary,
        "models": names,
        "n_classes": int(n_classes),
        "n": int(len(y)),
        "folds": int(results[methods[0]]["cv"]["folds"]),
        "seed": int(seed),
        "methods": results,
        "table": table,
    }


def apply(
    choice: Mapping, probs: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray] | None = None
) -> np.ndarray:
    """Fused (n, C) probabilities of ``probs`` (e.g. test) under ``choice`` from :func:`choose`.

    Weighted methods need only the models with non-zero weight; stacking needs all of them.
    ``present`` (model -> (n,) bool, optional) says which rows a model really predicted (its
    feature was not missing): weighted methods then renormalise each row's weights over the
    models present in it (a video with no face is fused from its audio experiments alone); a
    row with none present keeps the full weights (the models' stand-in priors).  Stacking
    reads every model's probabilities as they are (an absent model contributes its prior).
    """
    method = choice["method"]
    params = choice["methods"][method]
    if method == "stacking":
        needed = list(choice["models"])
    else:
        needed = [name for name in choice["models"] if params["weights"][name] > 0]
    missing = [name for name in needed if name not in probs]
    if missing:
        raise KeyError(f"probabilities missing for {missing}")
    arrays = [np.asarray(probs[name], dtype=float) for name in needed]
    if arrays[0].shape[1] != choice["n_classes"]:
        raise ValueError(f"expected {choice['n_classes']} classes, got {arrays[0].shape[1]}")
    if method == "stacking":
        return Stacker.from_dict(params["model"]).predict_proba(arrays)
    weights = [params["weights"][name] for name in needed]
    combine = fuse_product if method == "product" else fuse
    fused = combine(arrays, weights)
    if present is not None:
        mask = np.column_stack([np.asarray(present[name], bool) for name in needed])  # (n, m)
        partial = ~mask.all(axis=1) & mask.any(axis=1)
        for pattern in np.unique(mask[partial], axis=0):  # rows missing the same models
            rows = partial & (mask == pattern).all(axis=1)
            keep = np.flatnonzero(pattern)
            fused[rows] = combine([arrays[k][rows] for k in keep], [weights[k] for k in keep])
    return fused
