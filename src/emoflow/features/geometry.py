"""Facial geometry, frame by frame: normalised landmark coordinates, all pairwise landmark
distances, and head pose.

``landmarks``  ``mtcnn5``: the face stage's five MTCNN points (eyes, nose tip, mouth
               corners); ``dlib68``: dlib's 68-point iBUG shape predictor (the model of
               the ``face_recognition_models`` package), run once per frame on the aligned
               colour crop, its points mapped back to frame pixels
``derotate``   turn the normalised coordinates so that the eye line is horizontal (the
               roll is then only in the pose values)

Per frame, with L landmarks in frame pixels and the eye centres (MTCNN's eye points; for
68 points the mean of each eye's six points):

* ``2 L`` coordinates: translated to the eyes' midpoint, divided by the inter-ocular
  distance and, with ``derotate``, rotated by minus the eye line's angle (x, y interleaved);
* ``L (L - 1) / 2`` pairwise distances divided by the inter-ocular distance (pairs in
  ``numpy.triu_indices`` order);
* yaw, pitch, roll (degrees / 90) from PnP of the points on the matching 3-D mean face,
  with a pinhole camera of focal length = frame width, principal point at the frame centre
  (conventions in :mod:`emoflow.features.headpose`).

Coordinates and distances are invariant to translating and uniformly scaling the landmarks
(and, with ``derotate``, to turning them in the image plane).  Pose from five points rests
mostly on the nose tip against the eyes and mouth: coarse, pitch especially.
dim: 23 (``mtcnn5``) or 2417 (``dlib68``).
"""

from __future__ import annotations

import numpy as np

from emoflow.features import headpose
from emoflow.features.base import Extractor, Output

N_POINTS = {"mtcnn5": 5, "dlib68": 68}
POSE_SCALE = 90.0  # degrees per output unit

# dlib's face box relative to the eyes, in inter-ocular distances (the median box of dlib's
# frontal face detector on 178 aligned crops of real faces): centre (dx, dy) from the eyes'
# midpoint, side.  The 68-point predictor was trained on boxes of that detector.
DLIB_BOX = (0.0, 0.57, 2.24)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye, image-right eye) centres of (..., L, 2) landmarks, L = 5 or 68."""
    if points.shape[-2] == 68:
        return points[..., headpose.LEFT_EYE_68, :].mean(-2), points[..., headpose.RIGHT_EYE_68, :].mean(-2)
    return points[..., 0, :], points[..., 1, :]


def shape_features(points: np.ndarray, derotate: bool = True) -> np.ndarray:
    """(n, 2L + L(L-1)/2) normalised coordinates and distances of (n, L, 2) landmarks."""
    pts = np.asarray(points, np.float64)
    left, right = eye_centres(pts)
    eye_vec = right - left
    iod = np.linalg.norm(eye_vec, axis=-1)
    scale = np.where(iod > 1e-6, iod, 1.0)  # degenerate eyes: no scaling rather than NaN
    rel = (pts - ((left + right) / 2)[:, None, :]) / scale[:, None, None]
    if derotate:
        ang = np.arctan2(eye_vec[:, 1], eye_vec[:, 0])
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        rel = np.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1]], axis=-1)
    i, j = np.triu_indices(pts.shape[1], 1)
    dist = np.linalg.norm(pts[:, i] - pts[:, j], axis=-1) / scale[:, None]
    return np.concatenate([rel.reshape(len(pts), -1), dist], axis=1)


def pose_features(points: np.ndarray, frame_size) -> np.ndarray:
    """(n, 3) yaw, pitch, roll / POSE_SCALE of (n, L, 2) frame-pixel landmarks (NaN where
    no pose can be fitted: a missing value, not a frontal pose; the extractor loop leaves
    such frames out and records them in the skip table)."""
    out = np.full((len(points), 3), np.nan)
    for k, p in enumerate(np.asarray(points, np.float64)):
        if not np.isfinite(p).all():
            continue
        try:
            pose = headpose.solve(p, image_size=frame_size)
        except (ValueError, np.linalg.LinAlgError):
            continue
        out[k] = np.array([pose.yaw, pose.pitch, pose.roll]) / POSE_SCALE
    return out


def dlib_box(crop_size: int, margin: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the face box in an aligned crop (from the template)."""
    from emoflow.faces.align import template

    t = template(crop_size, margin)
    eyes = t[:2].mean(0)
    iod = float(np.linalg.norm(t[1] - t[0]))
    dx, dy, side = DLIB_BOX
    cx, cy, half = eyes[0] + dx * iod, eyes[1] + dy * iod, side * iod / 2
    return int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half))


def predictor_path() -> str:
    """The 68-point model of ``face_recognition_models``; found without importing the
    package when its ``pkg_resources`` import fails (setuptools >= 81 dropped it)."""
    try:
        import face_recognition_models

        return face_recognition_models.pose_predictor_model_location()
    except ImportError:
        import importlib.util
        from pathlib import Path

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise
        return str(Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat")


class Geometry(Extractor):
    defaults = {"landmarks": "mtcnn5", "derotate": True}
    level = "frame"

    def setup(self) -> None:
        if self.params["landmarks"] not in N_POINTS:
            raise ValueError(f"geometry: landmarks must be one of {sorted(N_POINTS)}, not {self.params['landmarks']!r}")
        self._predictor = None
        if self.params["landmarks"] == "dlib68":
            import dlib

            self._predictor = dlib.shape_predictor(predictor_path())

    @property
    def dim(self) -> int:
        n = N_POINTS[self.params["landmarks"]]
        return 2 * n + n * (n - 1) // 2 + 3

    def landmarks68(self, clip) -> np.ndarray:
        """(n, 68, 2) dlib points of every frame, in frame pixels."""
        import dlib

        color = clip.color
        size = color.shape[1]
        rect = dlib.rectangle(*dlib_box(size, clip.margin))
        out = np.empty((len(color), 68, 2))
        for k, img in enumerate(color):
            shape = self._predictor(np.ascontiguousarray(img), rect)
            crop_pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
            out[k] = clip.crop_to_frame(k, crop_pts, size)
        return out

    def extract(self, clip) -> Output | None:
        if len(clip) == 0:
            return None
        if self.params["landmarks"] == "dlib68":
            pts = self.landmarks68(clip)
        else:
            pts = np.asarray(clip.landmarks, np.float64).reshape(-1, 5, 2)
        values = np.concatenate(
            [shape_features(pts, self.params["derotate"]), pose_features(pts, clip.frame_size)], axis=1
        )
        return Output(values.astype(np.float32), times=clip.times, frames=clip.frames)
