"""Speaker-level feature normalisation: experiment option ``normalize: speaker``.

Acoustic features say who speaks as loudly as how they feel: a speaker's pitch range,
loudness and timbre shift every functional.  Standardising each feature over the speaker's
own videos (mean 0 and standard deviation 1 per speaker) removes much of that; it is the
usual first step of speaker-independent speech emotion recognition (speaker normalisation,
e.g. Busso et al., "Iterative feature normalization scheme for automatic emotion
detection from speech", IEEE TAC 2013).  No label is used.

* A speaker's statistics come from **that speaker's own videos** that have the feature, in
  whatever split they are: a test speaker is normalised with its test videos' features
  (never their labels), as every utterance is normalised with its own frames.  What is
  *fitted* still sees training videos only: the classifier (and its scaler) on the
  normalised training videos, and the population statistics below on the training speakers.
* A speaker with fewer than :data:`MIN_VIDEOS` videos, and a video without a speaker, is
  normalised with the **population** statistics: the mean of the training speakers' means
  and the root mean of their variances, i.e. what an unknown speaker looks like on average
  (less accurate than the speaker's own statistics; ``emoflow predict`` says when it used
  them).  Where no training speaker has enough videos, the population statistics are the
  training videos' plain mean and standard deviation.

The state kept with a fitted experiment (its report's ``normalize`` entry, copied into a
model bundle) is ``{"by": "speaker", "min_videos", "mean", "std"}``: the population
statistics; a speaker's own statistics are recomputed from the videos being predicted.
Rows are summed in video-id order within a speaker, so the workflow and ``emoflow predict``
compute the same numbers from the same videos.
"""

from __future__ import annotations

import numpy as np

MIN_VIDEOS = 5
METHODS = ("none", "speaker")


def _mean_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, np.float64)
    mean = X.mean(0)
    std = X.std(0)
    # a feature constant within the group: (x - mean) is 0 there, keep it 0
    std = np.where(std > 1e-7 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return mean, std


def group_stats(X: np.ndarray, groups, ids, min_videos: int = MIN_VIDEOS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Speaker -> (mean, std) over its rows of ``X``, for speakers with at least
    ``min_videos`` rows (rows taken in ``ids`` order, so the result does not depend on the
    order the videos come in)."""
    groups, ids = np.asarray(groups, object), np.asarray(ids, object)
    out = {}
    for g in sorted(set(groups.tolist())):
        rows = np.flatnonzero(groups == g)
        if len(rows) >= min_videos:
            rows = rows[np.argsort(ids[rows], kind="stable")]
            out[g] = _mean_std(X[rows])
    return out


def population(stats: dict, X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The population statistics from the training speakers' ``stats`` (mean of means, root
    mean of variances); the training rows' plain statistics when there are none."""
    if not stats:
        return _mean_std(X_train)
    means = np.stack([m for m, _ in stats.values()])
    stds = np.stack([s for _, s in stats.values()])
    return means.mean(0), np.sqrt((stds**2).mean(0))


def transform(X: np.ndarray, groups, stats: dict, pop: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(normalised X as float32, bool per row: its speaker's own statistics were used)."""
    groups = np.asarray(groups, object)
    Z = np.empty(X.shape, np.float32)
    own = np.zeros(len(X), bool)
    for g in set(groups.tolist()):
        rows = np.flatnonzero(groups == g)
        mean, std = stats[g] if g in stats else pop
        Z[rows] = ((np.asarray(X[rows], np.float64) - mean) / std).astype(np.float32)
        own[rows] = g in stats
    return Z, own


def fit_transform(
    X: np.ndarray, ids, groups, present: np.ndarray, train: np.ndarray, min_videos: int = MIN_VIDEOS
) -> tuple[np.ndarray, dict]:
    """The workflow's step (classify stage): normalise every present row of ``X`` by its
    speaker; returns (X with present rows normalised, state to keep with the model)."""
    ids, groups = np.asarray(ids, object), np.asarray(groups, object)
    stats = group_stats(X[present], groups[present], ids[present], min_videos)
    train_speakers = set(groups[train & present].tolist())
    pop = population({g: s for g, s in stats.items() if g in train_speakers}, X[train & present])
    Z = np.array(X, np.float32, copy=True)
    Z[present], own = transform(X[present], groups[present], stats, pop)
    state = {
        "by": "speaker",
        "min_videos": int(min_videos),
        "mean": pop[0].tolist(),
        "std": pop[1].tolist(),
        "speakers_own": len(stats),
        "videos_population": int((~own).sum()),
    }
    return Z, state


def apply(
    X: np.ndarray, ids, groups, state: dict, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``emoflow predict``'s step: normalise rows of ``X`` with a fitted experiment's
    ``state``; speakers' own statistics come from the ``reference`` rows (default all: the
    input clips, not their timeline windows).  Returns (Z, own-statistics flag per row)."""
    ids, groups = np.asarray(ids, object), np.asarray(groups, object)
    ref = np.ones(len(X), bool) if reference is None else np.asarray(reference, bool)
    stats = group_stats(X[ref], groups[ref], ids[ref], int(state["min_videos"]))
    pop = (np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64))
    return transform(X, groups, stats, pop)
