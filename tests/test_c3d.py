"""C3D clip embeddings: windows, the fit CLI on a tiny synthetic shard (expanding versus
contracting discs: every single frame could belong to either class, only the motion tells
them apart), extraction shapes and determinism, and loading from an ``init`` checkpoint."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("torch")

from emoflow import tables  # noqa: E402
from emoflow.faces.read import iter_crops  # noqa: E402
from emoflow.features import base  # noqa: E402
from emoflow.features.c3d import C3D, windows  # noqa: E402
from emoflow.features.fit import main  # noqa: E402
from emoflow.storage import write_rows  # noqa: E402

CLASSES = ["expanding", "contracting"]
SMALL = {
    "frames": 8,
    "stride": 4,
    "size": 24,
    "crop": 0.8,
    "channels": [8, 16],
    "emb_dim": 16,
    "epochs": 12,
    "patience": 12,
    "batch_size": 8,
    "lr": 0.01,
    "jitter": 1,
}


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _disc_video(expanding: bool, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n 112x112 RGB frames of a bright disc whose radius grows (or shrinks) 2.5 px a frame."""
    r0 = rng.uniform(8, 14) if expanding else rng.uniform(8, 14) + 2.5 * (n - 1)
    cx, cy = 56 + rng.uniform(-4, 4), 56 + rng.uniform(-4, 4)
    frames = []
    for t in range(n):
        r = r0 + (2.5 if expanding else -2.5) * t
        im = Image.fromarray(rng.integers(70, 110, (112, 112), dtype=np.uint8))
        ImageDraw.Draw(im).ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.integers(180, 230)))
        frames.append(np.repeat(np.asarray(im)[..., None], 3, axis=2))
    return frames


def _write_shard(tmp_path, n_train=28, n_val=12, seed=0):
    """A face-stage shard (sheet, face videos, crops, faces) and a manifest of disc videos."""
    rng = np.random.default_rng(seed)
    sheet, videos, crops, faces, man = [], [], [], [], ["video_id,path,label,split"]
    for i in range(n_train + n_val):
        vid, label = f"v{i:02d}", CLASSES[i % 2]
        split = "train" if i < n_train else "val"
        n = int(rng.integers(10, 19))
        sheet.append({"video_id": vid, "path": f"/none/{vid}.mp4"})
        videos.append(
            {
                "video_id": vid,
                "n_frames": n,
                "n_main": n,
                "coverage": 1.0,
                "n_tracks": 1,
                "main_track": 0,
                "hint_used": False,
                "frame_width": 112,
                "frame_height": 112,
            }
        )
        for k, img in enumerate(_disc_video(label == "expanding", n, rng)):
            grey = np.asarray(Image.fromarray(img).convert("L").resize((48, 48), Image.BOX))
            crops.append({"video_id": vid, "frame": k, "time": k * 0.2, "color": _jpeg(img), "grey": grey.tobytes()})
            faces.append(
                {
                    "video_id": vid,
                    "frame": k,
                    "time": k * 0.2,
                    "x1": 20.0,
                    "y1": 20.0,
                    "x2": 92.0,
                    "y2": 100.0,
                    "prob": 1.0,
                    "landmarks": [40.0, 50, 72, 50, 56, 70, 42, 90, 70, 90],
                    "track": 0,
                    "is_main": True,
                    "detected": True,
                }
            )
        man.append(f"{vid},{vid}.mp4,{label},{split}")
    # one video of the val split without a face
    sheet.append({"video_id": "noface", "path": "/none/noface.mp4"})
    videos.append(
        {
            "video_id": "noface",
            "n_frames": 5,
            "n_main": 0,
            "coverage": 0.0,
            "n_tracks": 0,
            "main_track": None,
            "hint_used": False,
            "frame_width": 112,
            "frame_height": 112,
        }
    )
    man.append("noface,noface.mp4,expanding,val")
    paths = [str(tmp_path / f) for f in ("sheet.parquet", "videos.parquet", "crops.parquet", "faces.parquet")]
    for rows, path, schema in zip(
        (sheet, videos, crops, faces), paths, (tables.SHARD_SHEET, tables.FACE_VIDEOS, tables.CROPS, tables.FACES)
    ):
        write_rows(rows, path, schema)
    (tmp_path / "manifest.csv").write_text("\n".join(man) + "\n")
    return str(tmp_path / "manifest.csv"), paths


def _fit(manifest, paths, out, data_root="/nowhere", **over) -> dict:
    cfg = {"extractor": "c3d", **SMALL, **over, "data_root": str(data_root)}
    argv = [
        "c3d",
        str(out),
        "--manifest",
        manifest,
        "--crops",
        *paths,
        "--config",
        json.dumps(cfg),
        "--classes",
        json.dumps(CLASSES),
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("c3d")
    manifest, paths = _write_shard(tmp)
    meta = _fit(manifest, paths, tmp / "models" / "c3d.json")
    return tmp, manifest, paths, meta


def _clips(paths):
    return [it.data for it in iter_crops(*paths) if it.data is not None]


def test_windows():
    np.testing.assert_array_equal(windows(5, 8, 4)[0], [0, 0, 1, 1, 2, 3, 3, 4])  # stretched, in order
    assert [w[0] for w in windows(8, 8, 4)] == [0]
    assert [w[0] for w in windows(17, 8, 4)] == [0, 4, 8, 9]  # the last window ends at the last crop
    assert all(len(w) == 8 for w in windows(30, 8, 3))


def test_fit_learns_motion_direction(shard):
    tmp, _, _, meta = shard
    assert (tmp / "models" / "c3d.pt").is_file()
    assert meta["classes"] == CLASSES and meta["chance"] == 0.5
    # the 28 training videos (each its own speaker here): 20% of them held out to pick the
    # epoch; the 12 val videos (and the faceless one among them) are never read
    assert meta["train_videos"] == 22 and meta["holdout_videos"] == 6 and meta["no_face_videos"] == 0
    assert meta["holdout_video_accuracy"] >= 0.8, meta["history"]
    assert 1 <= meta["best_epoch"] <= SMALL["epochs"]
    assert meta["arch"]["emb_dim"] == 16 and meta["input"]["normalisation"]


def test_extraction_shapes_and_determinism(shard):
    tmp, _, paths, _ = shard
    params = {**SMALL, "model": str(tmp / "models" / "c3d.json")}
    ext = C3D(params)
    assert ext.level == "clip" and ext.dim == 16
    clip = _clips(paths)[0]
    out = ext.extract(clip)
    idx = windows(len(clip), 8, 4)
    assert out.values.shape == (len(idx), 16) and np.isfinite(out.values).all()
    np.testing.assert_array_equal(out.frames, clip.frames[[w[0] for w in idx]])
    np.testing.assert_array_equal(out.times, clip.times[[w[0] for w in idx]])
    np.testing.assert_array_equal(C3D(params).extract(clip).values, out.values)  # a second load: same numbers
    with pytest.raises(ValueError, match="unknown parameter"):
        C3D({**params, "bogus": 1})
    # the whole shard through the generic feature loop: clip rows, one missing row
    cfg = {"features": {"c3d": {"extractor": "c3d", **params}}, "feature_inputs": {"min_audio_dbfs": -60}}
    n, missing = base.run("c3d", cfg, paths, str(tmp / "f.parquet"), str(tmp / "s.parquet"))
    meta, x = base.read_features(str(tmp / "f.parquet"))
    assert (n, missing) == (41, 1) and x.shape[1] == 16 and meta["missing"].sum() == 1
    np.testing.assert_array_equal(x[: len(out.values)], out.values)


@pytest.mark.parametrize("init_name", ["c3d.pt", "c3d.json"])
def test_init_with_zero_epochs_loads_the_same_network(shard, init_name):
    tmp, manifest, paths, meta = shard
    out = tmp / "models" / f"again_{init_name.replace('.', '_')}.json"
    again = _fit(manifest, paths, out, data_root=tmp, epochs=0, init="{data_root}/models/" + init_name)
    assert again["best_epoch"] == 0 and again["holdout_video_accuracy"] == meta["holdout_video_accuracy"]
    clip = _clips(paths)[3]
    a = C3D({"model": str(tmp / "models" / "c3d.json")}).extract(clip).values
    b = C3D({"model": str(out)}).extract(clip).values
    np.testing.assert_array_equal(a, b)
