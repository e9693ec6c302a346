"""scikit-learn classifiers on video vectors, with the seed's model zoo: linear SVM, RBF
SVM, random forest, logistic regression and an MLP.

Every model is a pipeline ``[StandardScaler ->] [PCA ->] classifier``; its
hyper-parameters are searched by cross-validation **on the training split only**,
grouped by speaker (``GroupKFold``; no speaker in both parts of a fold), scored by the
evaluation metric (accuracy or unweighted average recall).  The best setting is refitted
on the whole training split with probability outputs: SVMs through Platt scaling
(``CalibratedClassifierCV`` around LinearSVC; libsvm's own for the RBF SVC), the others
natively.

Classifier spec (config ``classifiers.<name>``)::

    {type: linear_svm | rbf_svm | random_forest | logistic | mlp,
     grid: {param: [values...]},   # searched (names of the sklearn estimator)
     pca: null | int,              # optional PCA to this many dims (fitted on train)
     scale: true}                  # StandardScaler first

Adding a model type means one entry in ``_ESTIMATORS``.
"""

from __future__ import annotations

import numpy as np

TYPES = ("linear_svm", "rbf_svm", "random_forest", "logistic", "mlp")


def _estimator(kind: str, seed: int, final: bool):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC, LinearSVC

    if kind == "linear_svm":
        return LinearSVC(C=0.01, max_iter=20000, random_state=seed)
    if kind == "rbf_svm":
        return SVC(kernel="rbf", C=10.0, gamma="scale", probability=final, random_state=seed)
    if kind == "random_forest":
        return RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)
    if kind == "logistic":
        return LogisticRegression(C=0.1, max_iter=5000)
    if kind == "mlp":
        return MLPClassifier(
            hidden_layer_sizes=(256,), alpha=1e-2, max_iter=400, early_stopping=True, random_state=seed
        )
    raise ValueError(f"unknown classifier type {kind!r}; valid: {', '.join(TYPES)}")


def _grid_value(v):
    return tuple(v) if isinstance(v, list) else v  # hidden_layer_sizes: [256] -> (256,)


def pipeline(spec: dict, n_features: int, n_train: int, seed: int = 0, final: bool = False, **overrides):
    """The (unfitted) pipeline of a classifier spec, with ``overrides`` (``clf__C``...) set."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = []
    if spec.get("scale", True):
        steps.append(("scale", StandardScaler()))
    if spec.get("pca"):
        steps.append(("pca", PCA(n_components=min(int(spec["pca"]), n_features, n_train - 1), random_state=seed)))
    steps.append(("clf", _estimator(spec["type"], seed, final)))
    pipe = Pipeline(steps)
    if overrides:
        pipe.set_params(**overrides)
    return pipe


def _calibrated(pipe, groups, seed: int = 0):
    """LinearSVC has no probabilities: Platt scaling over 3 speaker-grouped folds (as every
    other fit: a speaker's videos never calibrate a model that saw that speaker).  The
    folds are given as index lists, so the fitted model holds them (plain integer arrays)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold

    if pipe.steps[-1][1].__class__.__name__ != "LinearSVC":
        return pipe
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"calibrating an SVM needs at least 2 speaker groups in the training split, got {n_groups}")
    folds = [
        (tr.astype(np.int64), te.astype(np.int64))
        for tr, te in GroupKFold(n_splits=min(3, n_groups)).split(np.zeros(len(groups)), groups=groups)
    ]
    return CalibratedClassifierCV(pipe, method="sigmoid", cv=folds, ensemble=False)


def search(X, y, groups, spec: dict, *, metric: str = "accuracy", folds: int = 5, seed: int = 0, threads: int = 1):
    """Cross-validated grid search on the training data; returns (fitted final model with
    ``predict_proba``, report dict: best params, cv score, per-setting scores)."""
    from sklearn.model_selection import GridSearchCV, GroupKFold

    grid = {f"clf__{k}": [_grid_value(v) for v in vals] for k, vals in (spec.get("grid") or {}).items()}
    n_groups = len(np.unique(groups))
    k = min(folds, n_groups)
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 speaker groups in the training split, got {n_groups}")
    scoring = {"accuracy": "accuracy", "uar": "balanced_accuracy"}[metric]
    gs = GridSearchCV(
        pipeline(spec, X.shape[1], int(len(X) * (k - 1) / k), seed),
        grid,  # {}: the spec's defaults, still cross-validated for the report
        cv=GroupKFold(n_splits=k),
        scoring=scoring,
        n_jobs=max(1, threads),
        refit=False,
        error_score="raise",
    )
    gs.fit(X, y, groups=groups)
    best = gs.best_params_
    final = _calibrated(pipeline(spec, X.shape[1], len(X), seed, final=True, **best), groups, seed)
    final.fit(X, y)
    table = [
        {"params": {k.removeprefix("clf__"): v for k, v in p.items()}, "cv_score": float(m), "cv_std": float(s)}
        for p, m, s in zip(
            gs.cv_results_["params"], gs.cv_results_["mean_test_score"], gs.cv_results_["std_test_score"]
        )
    ]
    report = {
        "best_params": {k.removeprefix("clf__"): (list(v) if isinstance(v, tuple) else v) for k, v in best.items()},
        "cv_score": float(gs.best_score_),
        "cv_folds": k,
        "cv_metric": metric,
        "grid": table,
    }
    return final, report


def proba_full(model, X, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class of the label space (classes the model
    never saw in training get 0)."""
    p = model.predict_proba(X)
    out = np.zeros((len(X), n_classes))
    out[:, np.asarray(model.classes_, int)] = p
    return out
