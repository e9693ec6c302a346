import numpy as np
import pytest

from conftest import REPO
from emoflow.config import load_config
from emoflow.dataset import labels


@pytest.fixture(scope="module")
def cfg():
    return load_config([REPO / "config.yaml"])


def test_label_spaces_from_config(cfg):
    assert labels.classes(cfg) == ["happy", "sad", "surprise"]
    assert "contempt" in labels.classes(cfg, "ferplus8")
    assert {"anxious", "worried"} <= set(labels.classes(cfg, "mec8"))


def test_map_ferplus_to_fer2013(cfg):
    m = labels.label_map(cfg, "ferplus8", "fer2013")
    assert m["happiness"] == "happy" and m["neutral"] == "neutral" and m["contempt"] is None
    assert labels.map_labels(["anger", "contempt"], m) == ["angry", None]


def test_map_probabilities_sums_and_renormalises(cfg):
    src = labels.classes(cfg, "mec8")  # anxious and worried both -> fear
    dst = labels.classes(cfg, "fer2013")
    p = np.zeros((2, len(src)))
    p[0, src.index("anxious")] = 0.3
    p[0, src.index("worried")] = 0.3
    p[0, src.index("happy")] = 0.4
    p[1, src.index("neutral")] = 1.0
    out = labels.map_probabilities(p, src, dst, labels.label_map(cfg, "mec8", "fer2013"))
    assert out[0, dst.index("fear")] == pytest.approx(0.6)
    assert out[0, dst.index("happy")] == pytest.approx(0.4)
    assert out[1, dst.index("neutral")] == pytest.approx(1.0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_unmapped_mass_is_renormalised_or_uniform(cfg):
    src, dst = labels.classes(cfg, "fer2013"), labels.classes(cfg, "demo3")
    m = labels.label_map(cfg, "fer2013", "demo3")
    p = np.zeros((2, 7))
    p[0, src.index("happy")], p[0, src.index("angry")] = 0.5, 0.5
    p[1, src.index("angry")] = 1.0
    out = labels.map_probabilities(p, src, dst, m)
    np.testing.assert_allclose(out[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(out[1], [1 / 3] * 3)
