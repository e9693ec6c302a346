"""Hand-crafted visual extractors on aligned grey crops (HOG, LBP, HOG+LBP, dense SIFT,
LBP-TOP): known answers on synthetic images and volumes, shapes = dim, determinism, no NaN
on flat crops, refused crop sizes, and a whole shard through ``base.run`` with a faceless video."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from emoflow import tables
from emoflow.config import load_config
from emoflow.features import base
from emoflow.faces.read import Clip
from emoflow.features.dsift import DenseSIFT
from emoflow.features.hog import HOG
from emoflow.features.hog_lbp import HOGLBP
from emoflow.features.lbp import LBP
from emoflow.features.lbp_top import LBPTOP
from emoflow.storage import read_table, write_rows

G = 48
FLAT = 57  # nri_uniform code (skimage) of the all-ones pattern: every neighbour >= the centre
NON_UNIFORM = 58  # nri_uniform's shared code of the non-uniform patterns (P=8: 59 codes)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((112, 112, 3), 128, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def clip(grey, vid="v") -> Clip:
    grey = np.asarray(grey, np.uint8)
    n = len(grey)
    pts = np.tile(np.array([[20, 24], [44, 24], [32, 36], [22, 48], [42, 48]], np.float64), (n, 1, 1))
    boxes = np.tile(np.array([10, 10, 54, 60], np.float64), (n, 1))
    return Clip(vid, np.arange(n) * 2, np.arange(n) * 0.4, grey, [_jpeg()] * n, pts, boxes, (64, 64), 0.12)


def face(seed=0, size=G) -> np.ndarray:
    """A smooth face-like grey image: dark eyes and mouth on a shaded oval, plus texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    im = 150 - 60 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    for cx, cy, r in ((0.32, 0.4, 0.06), (0.68, 0.4, 0.06), (0.5, 0.75, 0.08)):
        im -= 90 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r**2)
    return np.clip(im + rng.normal(0, 8, im.shape), 0, 255).astype(np.uint8)


# --- LBP --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 90, 255])
def test_lbp_of_a_constant_crop_is_one_hot_at_the_flat_code_in_every_cell(value):
    ext = LBP()
    assert ext.level == "frame" and ext.dim == 6 * 6 * 59
    out = ext.extract(clip(np.full((2, G, G), value)))
    h = out.values.reshape(2, 36, 59)
    assert out.values.shape == (2, ext.dim) and np.isfinite(out.values).all()
    assert (h[:, :, FLAT] == 1).all() and h.sum() == 2 * 36  # one-hot: the whole mass on one code
    assert list(out.frames) == [0, 2] and list(out.times) == pytest.approx([0.0, 0.4])


def test_lbp_texture_cells_are_normalised_histograms_and_deterministic():
    ext = LBP({"grid": 4, "method": "uniform"})
    assert ext.dim == 4 * 4 * (8 + 2)
    c = clip(np.stack([face(0), face(1)]))
    a, b = ext.extract(c).values, LBP({"grid": 4, "method": "uniform"}).extract(c).values
    assert a.shape == (2, ext.dim) and np.array_equal(a, b)
    h = a.reshape(2, 16, 10)
    assert np.allclose(h.sum(axis=2), 1.0) and (h > 0).sum(axis=2).min() > 1  # textured: not one-hot
    assert not np.array_equal(a[0], a[1])


# --- HOG --------------------------------------------------------------------------------


def test_hog_of_a_vertical_step_edge_lies_in_the_horizontal_gradient_bin():
    ext = HOG()
    assert ext.level == "frame" and ext.dim == 5 * 5 * 2 * 2 * 9
    vertical = np.zeros((G, G), np.uint8)
    vertical[:, 21:] = 200  # intensity changes along x: horizontal gradient, orientation 0
    out = ext.extract(clip(np.stack([vertical, vertical.T])))
    assert out.values.shape == (2, ext.dim)
    energy = out.values.reshape(2, -1, 9).sum(axis=1)
    assert energy[0].argmax() == 0 and energy[0, 0] > 0.99 * energy[0].sum()
    assert (
        energy[1].argmax() == 4 and energy[1, 4] > 0.99 * energy[1].sum()
    )  # transposed: vertical gradient, 80-100 degrees


def test_hog_dim_follows_the_parameters_and_flat_crops_give_zeros():
    ext = HOG({"orientations": 12, "pixels_per_cell": 6, "cells_per_block": 3})
    assert ext.dim == 6 * 6 * 3 * 3 * 12  # 8x8 cells of 6 px, 6x6 blocks of 3x3 cells
    out = ext.extract(clip(np.stack([face(0), np.zeros((G, G)), np.full((G, G), 200)])))
    assert out.values.shape == (3, ext.dim) and np.isfinite(out.values).all()
    assert out.values[0].any() and not out.values[1:].any()
    assert np.array_equal(
        out.values, ext.extract(clip(np.stack([face(0), np.zeros((G, G)), np.full((G, G), 200)]))).values
    )


# --- HOG + LBP --------------------------------------------------------------------------


def test_hog_lbp_is_the_concatenation_with_nested_parameters():
    ext = HOGLBP({"hog": {"orientations": 6}, "lbp": {"grid": 3}})
    hog, lbp = HOG({"orientations": 6}), LBP({"grid": 3})
    assert ext.dim == hog.dim + lbp.dim == 5 * 5 * 4 * 6 + 9 * 59
    c = clip(np.stack([face(2), face(3)]))
    out = ext.extract(c)
    assert np.array_equal(out.values, np.concatenate([hog.extract(c).values, lbp.extract(c).values], axis=1))
    assert HOGLBP().dim == HOG().dim + LBP().dim == 900 + 2124
    with pytest.raises(ValueError, match="unknown parameter"):
        HOGLBP({"lbp": {"grids": 3}})


# --- dense SIFT -------------------------------------------------------------------------


def test_dsift_shape_determinism_and_sensitivity_to_orientation():
    ext = DenseSIFT()
    assert ext.level == "frame" and ext.per_axis == 5 and ext.dim == 25 * 128
    im = face(4)
    im[8:20, 6:14] = 255  # an asymmetric patch, so flips and rotations change the image
    c = clip(np.stack([im, im[:, ::-1], np.rot90(im), np.zeros((G, G))]))
    out = ext.extract(c)
    assert out.values.shape == (4, ext.dim) and np.isfinite(out.values).all()
    assert np.array_equal(out.values, DenseSIFT().extract(c).values)
    d = out.values.reshape(4, 25, 128)
    assert np.allclose(np.linalg.norm(d[0], axis=1), 1.0, atol=1e-3)  # unit descriptors on texture
    assert not d[3].any()  # a black crop: zero descriptors, no NaN
    for k in (1, 2):
        assert np.abs(d[k] - d[0]).sum() > 0.2 * np.abs(d[0]).sum()


def test_dsift_dim_follows_step_and_bin_size():
    for step, size, per_axis in ((4, 3, 10), (12, 6, 3), (6, 4, 6)):
        ext = DenseSIFT({"step": step, "bin_size": size, "magnif": 0})
        assert ext.per_axis == per_axis and ext.dim == per_axis**2 * 128
        assert ext.extract(clip(face(5)[None])).values.shape == (1, ext.dim)


@pytest.mark.parametrize("cls", [HOG, LBP, HOGLBP, DenseSIFT, LBPTOP])
def test_crops_of_another_size_are_refused(cls):
    with pytest.raises(ValueError, match=r"expected \(48, 48\)"):
        cls().extract(clip(np.zeros((2, 64, 64))))


# --- LBP-TOP ----------------------------------------------------------------------------


def planes(ext: LBPTOP, volume) -> np.ndarray:
    """(3 planes, blocks, codes) of one volume."""
    out = ext.extract(clip(volume))
    assert out.values.shape == (ext.dim,) and np.isfinite(out.values).all()
    return out.values.reshape(3, ext.params["grid"] ** 2, -1)


def codes_used(h: np.ndarray) -> set[int]:
    return set(np.flatnonzero(h.sum(axis=0)).tolist())


def test_lbp_top_static_volumes_have_no_temporal_codes():
    ext = LBPTOP()
    assert ext.level == "video" and ext.dim == 3 * 16 * 59
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, (G, G)).astype(np.uint8)
    xy, xt, yt = planes(ext, np.stack([tex] * 6))
    assert np.allclose(xy.sum(axis=1), 1) and np.allclose(xt.sum(axis=1), 1) and np.allclose(yt.sum(axis=1), 1)
    assert len(codes_used(xy)) > 40  # a textured frame uses nearly every code
    # nothing changes in time: a voxel's XT/YT code depends on its two in-plane spatial
    # neighbours only (temporal ones equal the centre): all ones, the two half circles, non-uniform
    assert codes_used(xt) == codes_used(yt) == {35, 39, FLAT, NON_UNIFORM}
    # stripes constant along y: every YT slice (t, y) is flat, so YT is one-hot while XY is not
    stripes = np.broadcast_to(tex[0][None, None, :], (6, G, G))
    xy, xt, yt = planes(ext, stripes)
    assert (yt[:, FLAT] == 1).all() and (xy > 0).sum(axis=1).max() > 1
    xy, xt, yt = planes(ext, stripes.transpose(0, 2, 1))  # constant along x: XT one-hot
    assert (xt[:, FLAT] == 1).all() and (yt > 0).sum(axis=1).max() > 1


def test_lbp_top_motion_and_brightness_change_show_in_the_temporal_planes():
    ext = LBPTOP()
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (G + 8, G + 8)).astype(np.uint8)
    static = planes(ext, np.stack([big[:G, :G]] * 6))
    moving = planes(ext, np.stack([big[t : t + G, t : t + G] for t in range(6)]))  # the texture drifts diagonally
    assert len(codes_used(moving[1])) > 40 and len(codes_used(moving[2])) > 40
    assert np.abs(moving[1:] - static[1:]).sum() > 10
    ramp = planes(ext, np.stack([np.full((G, G), 20 * t) for t in range(6)]))  # flat frames brightening
    assert (ramp[0][:, FLAT] == 1).all()  # each frame is flat
    for h in ramp[1:]:  # brighter later neighbours, darker earlier: one-hot, but not at the flat code
        assert (h.max(axis=1) == 1).all() and h[:, FLAT].sum() == 0
        assert codes_used(h) == {int(h[0].argmax())}


def test_lbp_top_short_volumes_are_edge_padded_and_subsampling_keeps_even_frames():
    ext = LBPTOP()
    one, two = face(6), face(7)
    single = ext.extract(clip(one[None])).values
    assert np.array_equal(single, ext.extract(clip(np.stack([one] * 3))).values)  # one frame reads as a static face
    assert np.array_equal(single, ext.extract(clip(np.stack([one] * 9))).values)  # static: independent of length
    pair = ext.extract(clip(np.stack([one, two]))).values
    assert pair.shape == (ext.dim,) and np.array_equal(
        pair, ext.extract(clip(np.stack([one, two, two]))).values
    )  # last frame repeated
    vol = np.stack([face(10 + k) for k in range(9)])
    sub = LBPTOP({"max_frames": 4}).extract(clip(vol)).values
    assert np.array_equal(sub, ext.extract(clip(vol[[0, 3, 5, 8]])).values)
    assert np.array_equal(ext.extract(clip(vol)).values, LBPTOP().extract(clip(vol)).values)  # deterministic
    black = ext.extract(clip(np.zeros((4, G, G)))).values
    assert np.isfinite(black).all() and (black.reshape(3, 16, 59)[:, :, FLAT] == 1).all()


def test_lbp_top_grid_and_method_set_the_dim():
    ext = LBPTOP({"grid": 2, "method": "uniform", "points": 8, "radius": 2})
    assert ext.dim == 3 * 4 * 10
    assert ext.extract(clip(np.stack([face(k) for k in range(5)]))).values.shape == (ext.dim,)
    with pytest.raises(ValueError, match="grid"):
        LBPTOP({"grid": 30, "radius": 1})


# --- a shard through base.run -------------------------------------------------------------


def write_shard(tmp_path) -> tuple[list[str], dict[str, np.ndarray]]:
    """sheet, face videos, crops, faces of three videos: 'a' (3 face frames and a second,
    non-main face), 'b' (one face frame), 'c' (no face at all)."""
    grey = {"a": np.stack([face(20), face(21), face(22)]), "b": face(23)[None]}
    sheet = [{"video_id": v, "path": f"/data/{v}.mp4"} for v in ("a", "b", "c")]
    videos, crops, faces = [], [], []
    for vid, n_frames in (("a", 4), ("b", 2), ("c", 3)):
        g = grey.get(vid, np.zeros((0, G, G), np.uint8))
        videos.append(
            {
                "video_id": vid,
                "n_frames": n_frames,
                "n_main": len(g),
                "coverage": len(g) / n_frames,
                "n_tracks": int(len(g) > 0) + (vid == "a"),
                "main_track": 0 if len(g) else None,
                "hint_used": False,
                "frame_width": 64,
                "frame_height": 64,
            }
        )
        for k in range(len(g)):
            frame = k + 1
            crops.append(
                {"video_id": vid, "frame": frame, "time": frame * 0.2, "color": _jpeg(), "grey": g[k].tobytes()}
            )
            lm = [20, 24, 44, 24, 32, 36, 22, 48, 42, 48]
            faces.append(
                {
                    "video_id": vid,
                    "frame": frame,
                    "time": frame * 0.2,
                    "x1": 10,
                    "y1": 10,
                    "x2": 54,
                    "y2": 60,
                    "prob": 0.99,
                    "landmarks": lm,
                    "track": 0,
                    "is_main": True,
                    "detected": True,
                }
            )
            if vid == "a":
                faces.append({**faces[-1], "x1": 0, "x2": 8, "track": 1, "is_main": False, "prob": 0.9})
    paths = [str(tmp_path / f) for f in ("sheet.parquet", "faces.videos.parquet", "crops.parquet", "faces.parquet")]
    for rows, path, schema in zip(
        (sheet, videos, crops, faces), paths, (tables.SHARD_SHEET, tables.FACE_VIDEOS, tables.CROPS, tables.FACES)
    ):
        write_rows(rows, path, schema)
    return paths, grey


@pytest.mark.parametrize("name", ["hog", "lbp", "hog_lbp", "dsift", "lbp_top"])
def test_base_run_over_a_shard_marks_the_faceless_video_missing(tmp_path, name):
    cfg = json.loads(json.dumps(load_config([REPO / "config.yaml"])))
    inputs, grey = write_shard(tmp_path)
    out, skips = str(tmp_path / "f.parquet"), str(tmp_path / "s.parquet")
    n, missing = base.run(name, cfg, inputs, out, skips)
    assert (n, missing) == (3, 1)
    meta, x = base.read_features(out)
    ext = base.registry.load(cfg["features"][name]["extractor"])(cfg["features"][name])
    assert x.shape[1] == ext.dim and np.isfinite(x).all()
    per_video = meta.groupby("video_id", sort=False).size().to_dict()
    if ext.level == "video":
        assert per_video == {"a": 1, "b": 1, "c": 1}
    else:
        assert per_video == {"a": 3, "b": 1, "c": 1}
        a = meta[meta.video_id == "a"]
        assert a.frame.tolist() == [1, 2, 3] and a.time.tolist() == pytest.approx([0.2, 0.4, 0.6])
    assert meta.missing.tolist() == [False] * (len(meta) - 1) + [True] and not x[-1].any()
    for vid in ("a", "b"):  # the table holds what the extractor gives on the crops
        expect = np.atleast_2d(ext.extract(clip(grey[vid], vid)).values)
        assert np.allclose(x[(meta.video_id == vid).to_numpy()], expect, atol=1e-6)
    s = read_table(skips).to_pylist()
    assert [(r["video_id"], r["stage"], r["kind"]) for r in s] == [("c", f"features/{name}", "missing")]
    assert "no face" in s[0]["reason"]
