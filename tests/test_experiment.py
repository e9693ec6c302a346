"""emoflow.classify.experiment: the one object the classify stage fits and the predictor
applies -- fitted on training videos only, the prior for a video without its feature, and
a saved model that loads (without running code) to the same probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from emoflow.classify.experiment import Experiment, prior

CLASSES = ["happy", "sad", "surprise"]


def blobs(n_per: int = 12, dim: int = 5, seed: int = 0):
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    X = (g.normal(size=(len(y), dim)) + 3.0 * np.eye(3, dim)[y]).astype(np.float32)
    speakers = np.array([f"spk{i % 6}" for i in range(len(y))])
    return X, y, speakers


def test_sklearn_experiment_fits_predicts_and_round_trips(tmp_path):
    X, y, spk = blobs()
    spec = {"type": "logistic", "grid": {"C": [0.1, 1.0]}}
    exp, report = Experiment.fit(CLASSES, spec, y, spk, X=X, evaluation={"cv_folds": 3})
    assert exp.kind == "sklearn" and exp.model_format == "skops" and report["best_params"]["C"] in (0.1, 1.0)
    np.testing.assert_allclose(exp.prior, [1 / 3] * 3)
    have = np.array([True, False, True, True])
    probs = exp.predict_proba(4, have, X=X[[0, 12, 30]])
    np.testing.assert_allclose(probs[1], exp.prior)  # no feature: the training prior
    assert probs[[0, 2, 3]].argmax(1).tolist() == [0, 1, 2] and np.allclose(probs.sum(1), 1)
    exp.save(tmp_path / "m.model", {})
    kind, model = Experiment.load_model(tmp_path / "m.model", "skops")
    again = Experiment(CLASSES, spec, kind, model, exp.prior).predict_proba(4, have, X=X[[0, 12, 30]])
    np.testing.assert_array_equal(again, probs)
    with pytest.raises(ValueError, match="unknown model format"):
        Experiment.load_model(tmp_path / "m.model", "pickle")


def test_sequence_experiment_chooses_its_epoch_on_held_out_training_speakers(tmp_path):
    g = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 10)
    seqs = [(g.normal(size=(8, 4)) + 2.0 * np.eye(3, 4)[k]).astype(np.float32) for k in y]
    spk = np.array([f"spk{i % 5}" for i in range(len(y))])
    spec = {"type": "sequence", "head": "gru", "hidden": 8, "epochs": 4, "holdout": 0.4}
    exp, report = Experiment.fit(CLASSES, spec, y, spk, sequences=seqs, evaluation={"seed": 0})
    assert exp.sequence and exp.model_format == "torch"
    assert report["holdout_speakers"] == 2 and 1 <= report["best_epoch"] <= 4 and len(report["history"]) <= 4
    probs = exp.predict_proba(3, [True, False, True], sequences=[seqs[0], seqs[29]])
    np.testing.assert_allclose(probs[1], prior(y, 3))
    exp.save(tmp_path / "s.model", {"classes": CLASSES})
    kind, model = Experiment.load_model(tmp_path / "s.model", "torch")
    again = Experiment(CLASSES, spec, kind, model, exp.prior).predict_proba(
        3, [True, False, True], sequences=[seqs[0], seqs[29]]
    )
    np.testing.assert_allclose(again, probs, atol=1e-6)
