"""Figures for reports: confusion matrices, per-experiment scores and fusion weights.

What: three PNG writers used by the evaluation and fusion rules.

Why: a workflow with dozens of experiments (feature x encoding x classifier) needs a glance
view of which experiments work, what the fusion relies on and which emotions get confused.

How: matplotlib with the non-interactive Agg backend, selected inside each function (never
at import time, so importing :mod:`emoflow` does not change a caller's backend).  Each figure
is written to a temporary file beside the target and moved into place with ``os.replace``
(:func:`emoflow.storage.atomic_path`), so a killed job never leaves a truncated PNG, and is
closed afterwards so long runs do not accumulate figures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from emoflow.storage import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, plt) -> None:
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def confusion_png(cm, classes: Sequence[str], path: str | os.PathLike, title: str = "", normalize: bool = True) -> None:
    """Confusion matrix (rows true, columns predicted); cells show the count and the row percentage.

    With ``normalize`` the colour is the row fraction (per-class recall on the diagonal),
    otherwise the raw count.
    """
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.int64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {k} classes")
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    shown = frac if normalize else cm.astype(float)
    vmax = 1.0 if normalize else max(float(cm.max()), 1.0)
    size = 1.6 + 0.75 * k
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="row fraction" if normalize else "count")
    for i in range(k):
        for j in range(k):
            dark = shown[i, j] > 0.55 * vmax
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n{100 * frac[i, j]:.0f}%",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(cm) / cm.sum() if cm.sum() else float("nan")
    ax.set_title(
        f"{title}\n(n={int(cm.sum())}, accuracy={acc:.3f})" if title else f"n={int(cm.sum())}, accuracy={acc:.3f}"
    )
    _save(fig, path, plt)


def scores_png(rows: list[dict], path: str | os.PathLike, title: str = "Experiments", metric: str = "accuracy") -> None:
    """Horizontal bars of experiments sorted by validation score (best on top), coloured by modality.

    ``rows``: dicts with ``name``, ``modality``, ``val_accuracy`` and optionally ``test_accuracy``
    (drawn as a black diamond); ``metric`` only labels the axis.
    """
    plt = _pyplot()
    if not rows:
        raise ValueError("no experiments to plot")
    ordered = sorted(rows, key=lambda r: (float(r["val_accuracy"]), str(r["name"])))  # ascending: best ends on top
    modalities = sorted({str(r.get("modality", "")) for r in ordered})
    cmap = plt.get_cmap("tab10")
    colour = {m: cmap(i % 10) for i, m in enumerate(modalities)}
    y = np.arange(len(ordered))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(ordered)))
    ax.barh(y, [float(r["val_accuracy"]) for r in ordered], color=[colour[str(r.get("modality", ""))] for r in ordered])
    tested = [(i, float(r["test_accuracy"])) for i, r in enumerate(ordered) if r.get("test_accuracy") is not None]
    marker = None
    if tested:
        marker = ax.scatter([t for _, t in tested], [i for i, _ in tested], marker="D", color="black", s=18, zorder=3)
    for i, r in enumerate(ordered):
        ax.text(float(r["val_accuracy"]), i, f" {float(r['val_accuracy']):.3f}", va="center", fontsize=7)
    ax.set_yticks(y, labels=[str(r["name"]) for r in ordered], fontsize=8)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(f"validation {metric}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[m]) for m in modalities]
    labels = [m or "(none)" for m in modalities]
    if marker is not None:
        handles.append(marker)
        labels.append(f"test {metric}")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title)
    _save(fig, path, plt)


def weights_png(names: Sequence[str], weights, path: str | os.PathLike, title: str = "Fusion weights") -> None:
    """Bar chart of fusion weights, one bar per experiment (in the given order)."""
    plt = _pyplot()
    w = np.asarray(weights, dtype=float).ravel()
    if len(names) != w.size:
        raise ValueError(f"{len(names)} names but {w.size} weights")
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(names)))
    y = np.arange(len(names))
    ax.barh(y, w, color="tab:blue")
    for i, v in enumerate(w):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, labels=list(names), fontsize=8)
    ax.invert_yaxis()  # first experiment on top
    ax.set_xlim(0, max(1.0, float(w.max()) if w.size else 1.0) * 1.1)
    ax.set_xlabel("weight")
    ax.set_title(title)
    _save(fig, path, plt)
