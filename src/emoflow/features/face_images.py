"""Face-expression image sets a frame CNN trains on, all as uint8 grey arrays in memory.

``fer2013``   the FER2013 Parquet of the shared data (columns split, label, pixels): a
              stratified ``val_fraction`` of ``train`` is the validation part; the
              ``public_test`` split is returned separately and used once, for the final figure.
              ``max_train`` / ``max_val`` keep a fixed stratified random subset (seeded) of
              the training / held-out part, for small experiment grids; the images' rows in
              the Parquet travel along (``*_rows``), e.g. to join the FER+ votes.
``folder``    an image-folder tree ``<root>/<class>/*.{png,jpg,jpeg,bmp}`` (optionally
              ``<root>/train/<class>`` and ``<root>/val/<class>``; without ``val`` a
              stratified part of ``train`` is held out).  Class names are the folder names.
``crops``     the workflow's own aligned main-face crops of the training split's videos,
              each frame labelled with its video's label (as the seed did with SFEW):
              a seeded ``holdout`` fraction of the training *speakers* (default 0.2) is
              the validation part (scored per video); the val and test splits are never
              read (they belong to fusion and the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoflow.errors import EmoflowError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class ImageSet:
    classes: list[str]
    train_x: np.ndarray  # (N, H, W) uint8
    train_y: np.ndarray  # (N,) class indices
    val_x: np.ndarray
    val_y: np.ndarray
    val_groups: np.ndarray | None = None  # per-image video ids (crops): scored per video
    test_x: np.ndarray | None = None  # a final test part (FER2013 public_test), used once
    test_y: np.ndarray | None = None
    source: str = ""
    train_rows: np.ndarray | None = None  # the images' rows in the source table (fer2013)
    val_rows: np.ndarray | None = None
    test_rows: np.ndarray | None = None

    def counts(self) -> dict:
        return {
            "train": int(len(self.train_y)),
            "val": int(len(self.val_y)),
            "test": int(0 if self.test_y is None else len(self.test_y)),
        }


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): ``fraction`` of every class held out, at random."""
    rng = np.random.default_rng(seed)
    held = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        n = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n = min(max(n, 1), len(idx) - 1)
        held.append(rng.permutation(idx)[:n])
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, int)
    keep = np.setdiff1d(np.arange(len(y)), held)
    return keep, held


FER2013_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _subset(rows: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A stratified random subset of ``n`` of ``rows`` (all when n is None or larger), in order."""
    if not n or n >= len(rows):
        return rows
    keep, _ = stratified_split(y, 1.0 - n / len(rows), seed)
    return rows[keep]


def fer2013(
    path: str,
    val_fraction: float = 0.1,
    seed: int = 0,
    size: int = 48,
    max_train: int | None = None,
    max_val: int | None = None,
) -> ImageSet:
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise EmoflowError(f"{path}: FER2013 Parquet not found (set the frame CNN's train.path, or the data root)")
    t = pq.read_table(p, columns=["split", "label", "pixels"])
    missing = {"split", "label", "pixels"} - set(t.column_names)
    if missing:
        raise EmoflowError(f"{path}: not a FER2013 table (missing columns {sorted(missing)})")
    split = np.asarray(t["split"].to_pylist())
    labels = t["label"].to_pylist()
    unknown = sorted(set(labels) - set(FER2013_CLASSES))
    if unknown:
        raise EmoflowError(f"{path}: labels outside the FER2013 classes: {unknown}")
    y = np.array([FER2013_CLASSES.index(v) for v in labels], np.int64)
    pix = t["pixels"].to_pylist()
    if any(len(b) != 48 * 48 for b in pix):
        raise EmoflowError(f"{path}: every 'pixels' value must be 2304 bytes (48x48 grey)")
    x = np.frombuffer(b"".join(pix), np.uint8).reshape(-1, 48, 48)
    if size != 48:
        x = resize(x, size)
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "public_test")
    if len(tr) == 0:
        raise EmoflowError(f"{path}: no rows with split 'train'")
    keep, held = stratified_split(y[tr], val_fraction, seed)
    fit_rows, val_rows = _subset(tr[keep], y[tr[keep]], max_train, seed), _subset(tr[held], y[tr[held]], max_val, seed)
    return ImageSet(
        FER2013_CLASSES,
        x[fit_rows],
        y[fit_rows],
        x[val_rows],
        y[val_rows],
        test_x=x[te] if len(te) else None,
        test_y=y[te] if len(te) else None,
        source=f"fer2013:{path}",
        train_rows=fit_rows,
        val_rows=val_rows,
        test_rows=te if len(te) else None,
    )


def _read_folder(root: Path, size: int, classes: list[str] | None = None):
    from PIL import Image

    names = classes or sorted(d.name for d in root.iterdir() if d.is_dir())
    xs, ys = [], []
    for k, name in enumerate(names):
        d = root / name
        if not d.is_dir():
            continue
        for f in sorted(d.rglob("*")):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    xs.append(np.asarray(im.convert("L").resize((size, size), Image.BILINEAR)))
            except OSError as exc:
                raise EmoflowError(f"{f}: not a readable image ({exc})") from None
            ys.append(k)
    return names, xs, ys


def image_folder(root: str, size: int = 48, val_fraction: float = 0.1, seed: int = 0) -> ImageSet:
    r = Path(root)
    if not r.is_dir():
        raise EmoflowError(f"{root}: image folder not found")
    if (r / "train").is_dir():
        classes, xs, ys = _read_folder(r / "train", size)
        if (r / "val").is_dir():
            _, vx, vy = _read_folder(r / "val", size, classes)
            if not xs or not vx:
                raise EmoflowError(f"{root}: no images under train/<class>/ or val/<class>/")
            return ImageSet(classes, np.stack(xs), np.array(ys), np.stack(vx), np.array(vy), source=f"folder:{root}")
    else:
        classes, xs, ys = _read_folder(r, size)
    if not xs:
        raise EmoflowError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under <class>/ folders")
    x, y = np.stack(xs), np.array(ys)
    keep, held = stratified_split(y, val_fraction, seed)
    return ImageSet(classes, x[keep], y[keep], x[held], y[held], source=f"folder:{root}")


def training_crops(
    manifest: str, crop_inputs: list[str], classes: list[str], size: int = 48, holdout: float = 0.2, seed: int = 0
) -> ImageSet:
    """Grey aligned crops of the training split's videos: most speakers train, a held-out
    ``holdout`` fraction of the training speakers validates (picks the epoch); the val and
    test splits are never read."""
    import pandas as pd

    from emoflow.dataset.holdout import fit_roles
    from emoflow.faces.read import iter_crops

    if len(crop_inputs) % 4:
        raise ValueError("crop inputs come in fours per shard: sheet, face videos, crops, faces")
    man = pd.read_csv(manifest, dtype=str, keep_default_na=False).set_index("video_id")
    roles = fit_roles(man, holdout, seed)
    parts = {"fit": ([], [], []), "holdout": ([], [], [])}
    for i in range(0, len(crop_inputs), 4):
        for item in iter_crops(*crop_inputs[i : i + 4]):
            if item.missing_reason or item.video_id not in roles.index:
                continue
            split = roles[item.video_id]
            label = man.loc[item.video_id, "label"]
            if label not in classes:
                continue
            grey = item.data.grey
            if grey.shape[1] != size:
                grey = resize(grey, size)
            xs, ys, gs = parts[split]
            xs.append(grey)
            ys.append(np.full(len(grey), classes.index(label)))
            gs.append(np.full(len(grey), item.video_id, dtype=object))
    if not parts["fit"][0] or not parts["holdout"][0]:
        raise EmoflowError(
            f"{manifest}: the frame CNN needs face crops of training videos of at least 2 speakers "
            "(a held-out part of the training speakers picks the epoch)"
        )
    (tx, ty, _), (vx, vy, vg) = (tuple(np.concatenate(a) for a in parts[s]) for s in ("fit", "holdout"))
    return ImageSet(list(classes), tx, ty.astype(np.int64), vx, vy.astype(np.int64), val_groups=vg, source="crops")


def central_crop(color: np.ndarray, crop: float, center_y: float) -> np.ndarray:
    """(n, s, s, 3) aligned colour crops -> (n, k, k) grey central crops (k = crop * s),
    centred horizontally and at ``center_y`` of the height: how models trained on tightly
    framed faces (FER2013) see the face stage's looser aligned crops."""
    from PIL import Image

    s = color.shape[1]
    k = max(1, int(round(crop * s)))
    x0 = (s - k) // 2
    y0 = int(round(min(max(center_y * s - k / 2, 0), s - k)))
    return np.stack([np.asarray(Image.fromarray(c).convert("L"))[y0 : y0 + k, x0 : x0 + k] for c in color])


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) uint8 -> (N, size, size) uint8 (bilinear)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def load(
    train: dict, *, manifest: str | None, crop_inputs: list[str], classes: list[str], size: int, seed: int
) -> ImageSet:
    """The image set a ``train:`` config block names (see the module docstring); only
    ``crops`` reads the videos' ``manifest``."""
    source = train.get("source", "crops")
    frac = float(train.get("val_fraction", 0.1))
    if source == "fer2013":
        return fer2013(train["path"], frac, seed, size, train.get("max_train"), train.get("max_val"))
    if source == "folder":
        return image_folder(train["path"], size, frac, seed)
    if source == "crops":
        if not manifest:
            raise EmoflowError("frame CNN: train.source crops needs the videos' manifest (--manifest)")
        return training_crops(manifest, crop_inputs, classes, size, float(train.get("holdout", 0.2)), seed)
    raise EmoflowError(f"frame CNN: unknown train.source {source!r} (fer2013, folder or crops)")
