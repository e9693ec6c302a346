"""Classification scores for emotion recognition: accuracy, UAR, macro-F1 and confusion matrices.

What: plain-numpy scores of integer class predictions against integer labels.

Why: EmotiW reports accuracy; affective-computing challenges (e.g. AVEC, INTERSPEECH ComParE)
report UAR (unweighted average recall, the mean of per-class recalls) because emotion classes
are imbalanced and a majority-class predictor scores well on accuracy.  Both are needed to pick
fusion weights and to compare experiments, and they must be cheap to call many thousands of
times (weight search), hence numpy rather than sklearn.

Conventions: labels and predictions are int class indices in ``[0, n_classes)``.  UAR and
macro-F1 average over the classes *present in* ``y_true`` (a class absent from the split has
no defined recall), matching ``sklearn.metrics.balanced_accuracy_score`` and
``f1_score(average="macro", labels=present, zero_division=0)``.  F1 of a class is
``2 TP / (2 TP + FP + FN)`` (0 when that is 0/0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _n_classes(n_classes: int | Sequence | None, *arrays: np.ndarray) -> int:
    if n_classes is None:
        return max((int(a.max()) + 1 for a in arrays if a.size), default=0)
    if isinstance(n_classes, (int, np.integer)):
        return int(n_classes)
    return len(n_classes)  # a class list


def _as_labels(y, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices")
    return a.astype(np.int64)


def confusion(y_true, y_pred, n_classes: int | Sequence | None = None) -> np.ndarray:
    """(C, C) int confusion matrix: rows are true classes, columns predicted classes."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    c = _n_classes(n_classes, t, p)
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= c):
        raise ValueError(f"class indices must lie in [0, {c})")
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)


def scores_from_confusion(cm: np.ndarray) -> dict:
    """Accuracy, UAR and macro-F1 (over classes present in the true labels) from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    if n == 0:
        raise ValueError("no samples to score")
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)  # true count per class
    predicted = cm.sum(axis=0)
    present = support > 0
    recall = tp[present] / support[present]
    denom = (2 * tp + (predicted - tp) + (support - tp))[present]  # 2TP + FP + FN
    f1 = np.divide(2 * tp[present], denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / n),
        "uar": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "n": n,
    }


def scores(y_true, y_pred, n_classes: int | Sequence | None = None) -> dict:
    """``{"accuracy", "uar", "macro_f1", "n"}`` of int predictions; ``n_classes`` is a count or a class list."""
    return scores_from_confusion(confusion(y_true, y_pred, n_classes))
