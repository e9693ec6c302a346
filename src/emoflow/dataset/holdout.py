"""Held-out training speakers: the only data a fit may use to choose its epoch, its early
stop or its hyper-parameters.

The validation split belongs to fusion and the report, the test split to the report
alone.  Every fitted step of the workflow (frame CNN on the run's crops, C3D, audio CNN,
sequence classifiers) therefore divides the *training* split once more, by speaker: a
seeded ``fraction`` of the training speakers (at least one, never all) is held out to
score epochs; the rest is fitted.  Videos without a speaker are their own speaker.

:func:`speaker_holdout` works on an array of speaker ids; :func:`fit_roles` on a
manifest (or a partition's ``splits/{part}.csv``): ``fit`` / ``holdout`` for its training
rows, nothing for val, test or unlabelled rows, which a fit never reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emoflow.errors import EmoflowError

DEFAULT_FRACTION = 0.2


def speaker_holdout(groups: np.ndarray, fraction: float = DEFAULT_FRACTION, seed: int = 0) -> np.ndarray:
    """Boolean mask of the rows whose speaker is held out (a seeded ``fraction`` of the
    speakers, at least one, never all)."""
    groups = np.asarray(groups)
    speakers = np.unique(groups)
    n = min(len(speakers) - 1, max(1, int(round(fraction * len(speakers)))))
    if n < 1:
        raise EmoflowError(
            f"choosing epochs on held-out training speakers needs at least 2 training speakers, got {len(speakers)}"
        )
    held = np.random.default_rng(seed).choice(speakers, size=n, replace=False)
    return np.isin(groups, held)


def fit_roles(manifest: pd.DataFrame, fraction: float = DEFAULT_FRACTION, seed: int = 0) -> pd.Series:
    """video_id -> ``"fit"`` or ``"holdout"`` for the labelled training rows of a manifest
    (columns ``video_id, split, label`` and optionally ``speaker``)."""
    df = manifest.reset_index() if "video_id" not in manifest.columns else manifest
    train = df[(df["split"] == "train") & (df["label"].astype(str) != "")]
    if train.empty:
        return pd.Series(dtype=object)
    spk = train["speaker"].astype(str) if "speaker" in train else pd.Series("", index=train.index)
    spk = np.where(spk == "", "video:" + train["video_id"].astype(str), spk)
    hold = speaker_holdout(spk, fraction, seed)
    return pd.Series(np.where(hold, "holdout", "fit"), index=train["video_id"].astype(str).to_numpy())
