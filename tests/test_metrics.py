"""Scores and confusion matrices (hand-computed and against sklearn) and the PNG writers."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emoflow.evaluate.metrics import confusion, scores
from emoflow.evaluate.plots import confusion_png, scores_png, weights_png


def test_confusion_and_scores_hand_computed():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = confusion(y_true, y_pred, 4)
    assert cm.dtype.kind == "i"
    np.testing.assert_array_equal(cm, [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    s = scores(y_true, y_pred, 4)
    assert s["n"] == 6
    assert s["accuracy"] == pytest.approx(4 / 6)
    # recalls 2/3, 1/2, 1 over the three present classes (class 3 is absent and not averaged)
    assert s["uar"] == pytest.approx(13 / 18)
    # F1 = 2TP/(2TP+FP+FN): 4/5, 2/4, 2/3
    assert s["macro_f1"] == pytest.approx(59 / 90)
    # a class list works like a count
    assert scores(y_true, y_pred, ["ang", "hap", "sad", "neu"]) == s


def test_prediction_of_absent_class_counts_as_error_only():
    s = scores([0, 0, 1, 1], [0, 3, 1, 1], 4)
    assert s["accuracy"] == pytest.approx(0.75)
    assert s["uar"] == pytest.approx(0.75)  # (1/2 + 1) / 2
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)


def test_against_sklearn():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(0)
    for trial in range(20):
        n_classes = 7
        n = int(rng.integers(5, 60))
        y_true = rng.integers(0, n_classes - trial % 3, n)  # sometimes classes missing from y_true
        y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, n_classes, n))
        s = scores(y_true, y_pred, n_classes)
        present = np.unique(y_true)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
            bal = balanced_accuracy_score(y_true, y_pred)
        assert s["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        assert s["uar"] == pytest.approx(bal)
        assert s["macro_f1"] == pytest.approx(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        )
        np.testing.assert_array_equal(
            confusion(y_true, y_pred, n_classes), confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))
        )


def test_invalid_input():
    with pytest.raises(ValueError):
        confusion([0, 1], [0], 2)
    with pytest.raises(ValueError):
        confusion([0, 2], [0, 1], 2)  # label out of range
    with pytest.raises(ValueError):
        scores([], [], 3)


def _png_ok(path: Path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        assert im.size[0] > 50 and im.size[1] > 50
        lo, hi = im.convert("L").getextrema()
        assert hi > lo  # not a blank canvas
        return im.size


def test_plots_write_pngs_atomically(tmp_path):
    classes = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 200)
    cm = confusion(y, np.where(rng.random(200) < 0.6, y, rng.integers(0, 7, 200)), 7)
    out = tmp_path / "figs"
    confusion_png(cm, classes, out / "cm.png", "fusion / val")
    confusion_png(cm, classes, out / "cm_counts.png", "counts", normalize=False)
    rows = [
        {"name": "audio_cnn__mean__svm", "modality": "audio", "val_accuracy": 0.31, "test_accuracy": 0.29},
        {"name": "c3d__mean__lr", "modality": "video", "val_accuracy": 0.38},
        {"name": "lbp_top__bow__svm", "modality": "video", "val_accuracy": 0.35, "test_accuracy": 0.33},
        {"name": "tfidf__lr", "modality": "text", "val_accuracy": 0.24},
    ]
    scores_png(rows, out / "scores.png")
    scores_png(rows[1:2], out / "scores_one.png", title="one")
    weights_png(["a", "b", "c"], [0.5, 0.5, 0.0], out / "weights.png", "weights")
    for name in ("cm.png", "cm_counts.png", "scores.png", "scores_one.png", "weights.png"):
        _png_ok(out / name)
    assert sorted(p.name for p in out.iterdir()) == [
        "cm.png",
        "cm_counts.png",
        "scores.png",
        "scores_one.png",
        "weights.png",
    ]
    # taller for more experiments
    assert _png_ok(out / "scores.png")[1] > _png_ok(out / "scores_one.png")[1]


def test_failed_plot_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        confusion_png(np.eye(3, dtype=int), ["a", "b"], tmp_path / "bad.png")
    with pytest.raises(ValueError):
        weights_png(["a"], [0.5, 0.5], tmp_path / "bad.png")
    assert list(tmp_path.iterdir()) == []


def test_import_does_not_load_pyplot():
    code = "import sys, emoflow.evaluate.plots, emoflow.evaluate.metrics; print('matplotlib.pyplot' in sys.modules)"
    src = Path(__file__).resolve().parents[1] / "src"
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src), "PATH": ""},
    )
    assert res.stdout.strip() == "False"
