"""Smaller silent errors closed by the trust review: SVM calibration on speaker-grouped
folds, fusion weights searched with the predict-time combination rule, non-finite feature
values and failed head poses recorded as missing (never written as 0)."""

from __future__ import annotations

import numpy as np
import pytest

from emoflow.classify import models
from emoflow.features import base
from emoflow.features.geometry import pose_features
from emoflow.fusion.choose import apply, choose
from emoflow.fusion.search import fuse_present, search_weights


def test_svm_calibration_folds_never_split_a_speaker():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 4)), np.repeat([0, 1, 2], 30)
    groups = np.repeat(np.arange(9), 10)
    model, _ = models.search(X, y, groups, {"type": "linear_svm"}, folds=3)
    folds = model.cv
    assert len(folds) == 3
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
    with pytest.raises(ValueError, match="at least 2 speaker groups"):
        models._calibrated(models.pipeline({"type": "linear_svm"}, 4, 90, final=True), np.zeros(90))


def _two_models(n=60, seed=0):
    """Model A (audio) is right where present but absent for half the rows (its stand-in
    prior then says class 0); model B (face) is right 60% of the time everywhere."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    a = np.full((n, 3), 0.1)
    a[np.arange(n), y] = 0.8
    present_a = np.arange(n) % 2 == 0
    a[~present_a] = [0.6, 0.2, 0.2]  # the training prior stands in where A is absent
    b = np.full((n, 3), 0.2)
    right = rng.random(n) < 0.6
    b[np.arange(n), np.where(right, y, (y + 1) % 3)] = 0.6
    return y, {"a": a, "b": b}, {"a": present_a, "b": np.ones(n, bool)}


def test_weight_search_scores_what_predict_time_fusion_computes():
    y, probs, present = _two_models()
    stacked = np.stack([probs["a"], probs["b"]])
    mask = np.stack([present["a"], present["b"]])
    w, score = search_weights(list(stacked), y, present=mask, step=0.1)
    choice = choose(probs, y, None, methods=("weighted",), folds=3, search_kw={"step": 0.1}, present=present)
    fused = apply(choice, probs, present)
    # the in-sample score reported is the score of exactly what apply() fuses
    assert np.isclose(choice["methods"]["weighted"]["fit"]["accuracy"], np.mean(fused.argmax(1) == y))
    np.testing.assert_allclose(
        fused, fuse_present(stacked, list(choice["methods"]["weighted"]["weights"].values()), mask)
    )
    assert np.isclose(score, np.mean(fuse_present(stacked, w, mask).argmax(1) == y))
    # ignoring presence mixes A's stand-in prior into half the rows: a different (worse) objective
    w_blind, _ = search_weights(list(stacked), y, step=0.1)
    acc_blind = np.mean(fuse_present(stacked, w_blind, mask).argmax(1) == y)
    assert score >= acc_blind


def test_fuse_present_renormalises_like_apply_and_keeps_priors_when_nothing_is_present():
    stacked = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.3, 0.7]]])  # (models, rows, classes)
    mask = np.array([[False, False], [True, False]])
    out = fuse_present(stacked, [0.5, 0.5], mask)
    np.testing.assert_allclose(out[0], [0.2, 0.8])  # only model 2 present: its probabilities
    np.testing.assert_allclose(out[1], [0.4, 0.6])  # none present: the full weights


class _Ext:
    def __init__(self, level, dim):
        self.level, self.dim = level, dim


def test_non_finite_feature_values_are_missing_not_zero():
    item = base.Item("v1", None)
    vals = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, np.inf]], np.float32)
    rows, bad = base._rows(item, base.Output(vals, np.arange(3) * 0.2, np.arange(3)), _Ext("frame", 2))
    assert bad == 2 and len(rows) == 1 and rows[0]["frame"] == 0 and not rows[0]["missing"]
    rows, bad = base._rows(item, base.Output(vals[1:], np.arange(2) * 0.2, None), _Ext("frame", 2))
    assert bad == 2 and len(rows) == 1 and rows[0]["missing"]  # nothing usable: one missing row
    rows, bad = base._rows(item, base.Output(np.array([1.0, np.nan], np.float32), None, None), _Ext("video", 2))
    assert bad == 1 and rows[0]["missing"] and np.all(rows[0]["x"] == 0)


def test_a_failed_head_pose_is_missing_not_frontal(monkeypatch):
    from emoflow.features import headpose

    good = np.array([[40.0, 50], [72, 50], [56, 70], [42, 90], [70, 90]])
    lost = np.full((5, 2), np.nan)  # landmarks the tracker lost
    out = pose_features(np.stack([good, lost]), (112, 112))
    assert np.isfinite(out[0]).all() and np.abs(out[0]).max() > 0
    assert np.isnan(out[1]).all()
    real = headpose.solve
    calls = []

    def failing(points, **kw):  # the solver finds no pose in front of the camera
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("solve: no pose puts the face in front of the camera")
        return real(points, **kw)

    monkeypatch.setattr(headpose, "solve", failing)
    out = pose_features(np.stack([good, good]), (112, 112))
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()  # not (0, 0, 0)
