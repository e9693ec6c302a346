"""Scores of a face-expression model against FER2013 labels and FER+ vote distributions.

Accuracy and UAR come from :mod:`emoflow.evaluate.metrics` (their one owner).  Against the
FER+ *majority* label (the most-voted emotion mapped to the label space) only faces whose
majority has a counterpart are scored.  Against the vote *distributions* q (over the label
space, emotions without a counterpart dropped) and the predicted p, per face, averaged
over faces with votes:

``kl_ferplus``            KL(q ‖ p) = Σ q log(q / p) (natural log; p floored at 1e-7),
``chebyshev_ferplus``     max |q − p|,
``cosine_ferplus``        q·p / (‖q‖ ‖p‖)  (similarity: higher is better),
``intersection_ferplus``  Σ min(q, p)     (similarity: higher is better),

the label-distribution-learning measures of Geng (2016), "Label distribution learning",
IEEE TKDE 28(7).  :func:`auroc` is the area under the ROC curve by ranks (Mann-Whitney U,
ties counted half).
"""

from __future__ import annotations

import numpy as np

from emoflow.evaluate import metrics as M


def distribution_scores(q: np.ndarray, p: np.ndarray) -> dict:
    """Mean KL(q‖p), Chebyshev, cosine and intersection of rows (target q, prediction p)."""
    q, p = np.asarray(q, np.float64), np.asarray(p, np.float64)
    if len(q) == 0:
        return {"kl_ferplus": None, "chebyshev_ferplus": None, "cosine_ferplus": None, "intersection_ferplus": None}
    pc = np.clip(p, 1e-7, None)
    kl = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1.0)) - np.log(pc)), 0.0).sum(1)
    cos = (q * p).sum(1) / np.maximum(np.linalg.norm(q, axis=1) * np.linalg.norm(p, axis=1), 1e-12)
    return {
        "kl_ferplus": float(kl.mean()),
        "chebyshev_ferplus": float(np.abs(q - p).max(1).mean()),
        "cosine_ferplus": float(cos.mean()),
        "intersection_ferplus": float(np.minimum(q, p).sum(1).mean()),
    }


def score(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    votes: np.ndarray | None = None,
    has_votes: np.ndarray | None = None,
    majority: np.ndarray | None = None,
) -> dict:
    """Accuracy, UAR (FER2013 labels), accuracy and UAR against the FER+ majority and the
    distribution scores against the FER+ votes (when given) of predicted ``probs``."""
    pred = np.asarray(probs).argmax(1)
    s = M.scores(labels, pred, classes)
    out = {"accuracy": s["accuracy"], "uar": s["uar"], "n": s["n"]}
    if majority is not None:
        m = np.asarray(majority) >= 0
        sm = M.scores(np.asarray(majority)[m], pred[m], classes)
        out.update({"accuracy_ferplus": sm["accuracy"], "uar_ferplus": sm["uar"], "n_ferplus": sm["n"]})
    if votes is not None:
        h = np.asarray(has_votes, bool)
        out.update(distribution_scores(np.asarray(votes)[h], np.asarray(probs)[h]))
        out["n_votes"] = int(h.sum())
    return out


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """P(score of a random positive > score of a random negative); None without both kinds."""
    s, y = np.asarray(scores, np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
