"""Geometry features: head pose recovered from projections of the mean face at known
angles (5 and 68 points), the angle conventions, normalised shape features (known answers,
invariance), the extractor on synthetic clips and dlib's 68 points on a real photo."""

import io

import numpy as np
import pytest

from emoflow.features import headpose as hp
from emoflow.faces.read import Clip
from emoflow.features.geometry import Geometry, dlib_box, shape_features

FRAME = (640, 480)
CENTRE = (320.0, 240.0)
GRID = [(y, p, r) for y in (-40, -20, 0, 20, 40) for p in (-25, 0, 25) for r in (-30, 0, 30)]


def posed(n, yaw, pitch, roll, rng, depth=(450, 900)):
    t = [rng.uniform(-60, 60), rng.uniform(-40, 40), rng.uniform(*depth)]
    return hp.project(hp.model_points(n), yaw, pitch, roll, t, FRAME[0], CENTRE)


def test_angle_conventions_and_round_trip():
    for yaw, pitch, roll in [(20, -10, 15), (-35, 22, -28), (0, 0, 0)]:
        assert np.allclose(hp.angles(hp.rotation(yaw, pitch, roll)), (yaw, pitch, roll))
        v = hp.rotation_vector(hp.rotation(yaw, pitch, roll))
        assert np.allclose(hp.rodrigues(v), hp.rotation(yaw, pitch, roll))
    face = hp.MEAN_FACE_5
    t = [0, 0, 600]
    nose0 = hp.project(face, 0, 0, 0, t, 640, CENTRE)[2]
    assert hp.project(face, 20, 0, 0, t, 640, CENTRE)[2, 0] > nose0[0] + 5  # yaw > 0: nose to the image right
    assert hp.project(face, 0, 20, 0, t, 640, CENTRE)[2, 1] < nose0[1] - 5  # pitch > 0: nose up
    eyes = hp.project(face, 0, 0, 20, t, 640, CENTRE)[:2]  # roll > 0: clockwise, eye line at +roll
    assert np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1])) == pytest.approx(20, abs=0.5)
    # the 5-point model is the 68-point one's eye centres, nose tip and mouth corners
    assert np.allclose(hp.MEAN_FACE_5[0], hp.MEAN_FACE_68[36:42].mean(0))
    assert np.allclose(hp.MEAN_FACE_5[2:], hp.MEAN_FACE_68[[30, 48, 54]])


@pytest.mark.parametrize("n", [5, 68])
def test_pose_recovered_on_an_angle_grid(n):
    rng = np.random.default_rng(n)
    for yaw, pitch, roll in GRID:
        pose = hp.solve(posed(n, yaw, pitch, roll, rng), image_size=FRAME)
        assert abs(pose.yaw - yaw) < 3 and abs(pose.pitch - pitch) < 3 and abs(pose.roll - roll) < 3, (
            yaw,
            pitch,
            roll,
            pose,
        )
        assert pose.error < 1e-3


def test_pose_68_points_with_pixel_noise():
    rng = np.random.default_rng(7)
    worst = 0.0
    for yaw, pitch, roll in GRID:
        pts = posed(68, yaw, pitch, roll, rng) + rng.normal(0, 0.5, (68, 2))
        pose = hp.solve(pts, image_size=FRAME)
        worst = max(worst, abs(pose.yaw - yaw), abs(pose.pitch - pitch), abs(pose.roll - roll))
        assert 0.2 < pose.error < 1.0  # about the noise (0.5 px per coordinate)
    assert worst < 3


def test_shape_features_known_answer_and_invariance():
    pts = np.array([[[0, 0], [2, 0], [1, 1], [0, 2], [2, 2]]], float)  # eyes, nose, mouth corners
    f = shape_features(pts)
    assert f.shape == (1, 10 + 10)
    assert np.allclose(f[0, :10], [-0.5, 0, 0.5, 0, 0, 0.5, -0.5, 1, 0.5, 1])
    r2 = np.sqrt(2)
    # distances in triu order: (0,1) (0,2) (0,3) (0,4) (1,2) (1,3) (1,4) (2,3) (2,4) (3,4), over iod = 2
    assert np.allclose(f[0, 10:], np.array([2, r2, 2, 2 * r2, r2, 2 * r2, 2, r2, r2, 2]) / 2)
    # translating, scaling and (with derotate) rotating the landmarks changes nothing
    rng = np.random.default_rng(3)
    many = rng.normal(0, 10, (4, 68, 2))
    a = 0.6
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = 3.7 * many @ rot.T + np.array([120.0, -45.0])
    assert np.allclose(shape_features(moved), shape_features(many))
    scaled = 0.25 * many + 9.0
    assert np.allclose(shape_features(scaled, derotate=False), shape_features(many, derotate=False))
    assert not np.allclose(shape_features(moved, derotate=False), shape_features(many, derotate=False))
    # degenerate eyes: finite values
    assert np.isfinite(shape_features(np.zeros((1, 5, 2)))).all()


def synthetic_clip(angles, frame=(256, 256), depth=700.0):
    pts = np.stack(
        [hp.project(hp.MEAN_FACE_5, *a, [0, 0, depth], frame[0], (frame[0] / 2, frame[1] / 2)) for a in angles]
    )
    n = len(angles)
    boxes = np.tile([0.0, 0.0, 10.0, 10.0], (n, 1))
    return Clip("v", np.arange(n) * 3, np.arange(n) * 0.5, np.zeros((n, 48, 48), np.uint8), [], pts, boxes, frame, 0.12)


def test_extractor_mtcnn5_shapes_pose_and_determinism():
    ext = Geometry({"extractor": "geometry"})
    assert ext.level == "frame" and ext.dim == 23
    clip = synthetic_clip([(0, 0, 0), (25, -10, 12), (-30, 15, -20)])
    out = ext.extract(clip)
    assert out.values.shape == (3, 23) and out.values.dtype == np.float32
    assert np.array_equal(out.frames, clip.frames) and np.array_equal(out.times, clip.times)
    assert np.abs(out.values[0, -3:] * 90).max() < 0.5  # frontal face: pose near 0
    assert np.allclose(out.values[1:, -3:] * 90, [[25, -10, 12], [-30, 15, -20]], atol=1)
    assert np.array_equal(ext.extract(clip).values, out.values)
    assert np.allclose(out.values[:, :4], [-0.5, 0, 0.5, 0], atol=1e-6)  # eyes after derotation
    # degenerate landmarks never give NaN
    bad = synthetic_clip([(0, 0, 0)])
    bad.landmarks = np.zeros((1, 5, 2))
    assert np.isfinite(ext.extract(bad).values).all()
    with pytest.raises(ValueError):
        Geometry({"landmarks": "dlib5"})
    with pytest.raises(ValueError):
        Geometry({"size": 3})


def test_dlib68_on_a_real_face():
    from skimage import data

    from emoflow.faces.align import aligned_pair, template
    from emoflow.faces.detect import MTCNNDetector

    img = data.astronaut()
    faces = MTCNNDetector(device="cpu", det_max_side=None).detect([img])[0]
    lm = faces.points[0].astype(np.float64)
    color, grey = aligned_pair(img, lm, 112, 48, 0.12)
    buf = io.BytesIO()
    color.save(buf, "JPEG", quality=95)
    clip = Clip(
        "astro",
        [4],
        [1.0],
        grey[None],
        [buf.getvalue()],
        lm[None],
        faces.boxes[:1].astype(np.float64),
        (512, 512),
        0.12,
    )
    # the face box in the crop holds the whole template
    left, top, right, bottom = dlib_box(112, 0.12)
    tpl = template(112, 0.12)
    assert left < tpl[:, 0].min() and right > tpl[:, 0].max() and top < tpl[:, 1].min() and bottom > tpl[:, 1].max()

    ext = Geometry({"landmarks": "dlib68"})
    assert ext.dim == 2 * 68 + 68 * 67 // 2 + 3
    pts = ext.landmarks68(clip)[0]
    iod = np.linalg.norm(lm[1] - lm[0])
    got = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
    assert np.linalg.norm(got - lm, axis=1).max() < 0.15 * iod  # the 68 points land on MTCNN's five
    out = ext.extract(clip)
    assert out.values.shape == (1, ext.dim) and np.isfinite(out.values).all()
    yaw, pitch, roll = out.values[0, -3:] * 90
    assert abs(yaw) < 30 and abs(pitch) < 30 and abs(roll) < 15
    assert np.array_equal(ext.extract(clip).values, out.values)
