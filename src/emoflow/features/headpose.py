"""Head pose from 2-D facial landmarks: a rigid 3-D mean face, a pinhole camera and
perspective-n-point (PnP) by nonlinear least squares -- numpy/scipy only, no OpenCV.

**Mean face.**  ``MEAN_FACE_68`` is the 68-point 3-D mean face (iBUG 300-W layout: jaw
0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) that circulates with open-source
head-pose code (e.g. DeepFaceLab's ``LandmarksProcessor.landmarks_68_3D``, derived from
OpenFace's mean 3-D shape), rounded to 0.001; units are about millimetres (eye centres
66 mm apart).  ``MEAN_FACE_5`` is the MTCNN 5-point layout taken from it so that both
layouts agree: each eye centre is the mean of that eye's six points, the nose is the tip
(30), the mouth corners are 48 and 54.  Points are ordered as they appear in the image
of a frontal face: "left" is image left (the subject's right).

**Camera and axes.**  Camera coordinates: x to the image right, y down, z away from the
camera (into the scene); a pinhole camera with focal length ``focal`` pixels (default:
the image width) and principal point ``centre`` (default: the image centre).  The model
uses the same axes for a face looking straight into the camera (nose tip toward it).

**Angles** (degrees).  Camera point = ``R @ model point + t`` with
``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``:

``yaw``   positive: the subject turns to their left (the nose moves to the image right)
``pitch`` positive: the subject looks up (the nose moves up in the image)
``roll``  positive: the head tilts toward the subject's left shoulder (the face turns
          clockwise in the image; the eye line's angle, atan2(dy, dx) in image pixels)

``solve`` fits the rotation vector and translation minimising the pixel reprojection
error (``scipy.optimize.least_squares``, Levenberg-Marquardt, analytic Jacobian), started
from a scaled-orthographic (weak perspective) fit of the points; should that fail, from
the face looking straight at the camera at the distance its spread implies.  (On a real
shard's 2109 faces and on synthetic grids both starts always reached the same pose.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEAN_FACE_68 = np.array(
    [
        # 0-16 jaw
        [-73.394, -29.801, 47.668],
        [-72.775, -10.950, 45.909],
        [-70.534, 7.930, 44.843],
        [-66.850, 26.074, 43.141],
        [-59.790, 42.564, 38.635],
        [-48.369, 56.481, 30.751],
        [-34.121, 67.247, 18.456],
        [-17.875, 75.057, 3.609],
        [0.099, 77.061, -0.882],
        [17.477, 74.758, 5.181],
        [32.649, 66.929, 19.177],
        [46.372, 56.311, 30.771],
        [57.343, 42.419, 37.629],
        [64.388, 25.456, 40.886],
        [68.212, 6.991, 42.281],
        [70.486, -11.666, 44.143],
        [71.376, -30.365, 47.140],
        # 17-26 brows
        [-61.119, -49.362, 14.254],
        [-51.288, -58.770, 7.268],
        [-37.805, -61.996, 0.442],
        [-24.023, -61.033, -6.607],
        [-11.636, -56.687, -11.967],
        [12.057, -57.391, -12.051],
        [25.106, -61.902, -7.315],
        [38.339, -62.778, -1.023],
        [51.191, -59.302, 5.349],
        [60.054, -50.190, 11.616],
        # 27-35 nose
        [0.654, -42.194, -13.381],
        [0.805, -30.994, -21.151],
        [0.992, -19.945, -29.284],
        [1.227, -8.415, -36.948],
        [-14.772, 2.598, -20.132],
        [-7.180, 4.752, -23.537],
        [0.556, 6.563, -25.944],
        [8.272, 4.661, -23.696],
        [15.214, 2.643, -20.858],
        # 36-47 eyes
        [-46.047, -37.471, 7.038],
        [-37.675, -42.731, 3.021],
        [-27.884, -42.712, 1.354],
        [-19.648, -36.755, -0.111],
        [-28.273, -35.134, -0.147],
        [-38.082, -34.919, 1.477],
        [19.266, -37.032, -0.666],
        [27.894, -43.342, 0.248],
        [37.438, -43.111, 1.696],
        [45.171, -38.087, 4.894],
        [38.196, -35.532, 0.283],
        [28.765, -35.484, -1.173],
        # 48-67 mouth
        [-28.916, 28.613, -2.240],
        [-17.533, 22.172, -15.934],
        [-6.685, 19.029, -22.611],
        [0.381, 20.721, -23.748],
        [8.375, 19.035, -22.722],
        [18.877, 22.394, -15.611],
        [28.794, 28.080, -3.217],
        [19.058, 36.298, -14.988],
        [8.956, 39.635, -22.554],
        [0.382, 40.396, -23.592],
        [-7.429, 39.836, -22.406],
        [-18.161, 36.678, -15.122],
        [-24.377, 28.678, -4.786],
        [-6.898, 25.476, -20.894],
        [0.341, 26.014, -22.220],
        [8.445, 25.326, -21.026],
        [24.474, 28.323, -5.713],
        [8.449, 30.596, -20.671],
        [0.205, 31.409, -21.904],
        [-7.198, 30.845, -20.328],
    ],
    dtype=np.float64,
)

LEFT_EYE_68, RIGHT_EYE_68 = slice(36, 42), slice(42, 48)  # image left / image right eye
MEAN_FACE_5 = np.stack(
    [
        MEAN_FACE_68[LEFT_EYE_68].mean(0),
        MEAN_FACE_68[RIGHT_EYE_68].mean(0),
        MEAN_FACE_68[30],
        MEAN_FACE_68[48],
        MEAN_FACE_68[54],
    ]
)


def model_points(n: int) -> np.ndarray:
    """The mean face for a 5- or 68-point layout."""
    if n == 68:
        return MEAN_FACE_68
    if n == 5:
        return MEAN_FACE_5
    raise ValueError(f"no 3-D face model for {n} landmarks (5 or 68)")


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (degrees; signs as in the module docstring)."""
    w, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(w), 0, -np.sin(w)], [0, 1, 0], [np.sin(w), 0, np.cos(w)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation matrix (the inverse of :func:`rotation`)."""
    yaw = np.arcsin(np.clip(rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(-rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis * angle in radians)."""
    theta = float(np.sqrt(rvec @ rvec))
    if theta < 1e-12:
        return np.eye(3)
    k = rvec / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def _rodrigues_derivatives(rvec: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(3, 3, 3): dR/dv_i of R = rodrigues(v) (Gallego & Yezzi, J. Math. Imaging Vis. 2015)."""
    theta2 = float(rvec @ rvec)
    if theta2 < 1e-16:
        return np.stack([_skew(e) for e in np.eye(3)])
    vx = _skew(rvec)
    cross = vx @ (np.eye(3) - rot)  # column i: v x (I - R) e_i
    return np.stack([(rvec[i] * vx + _skew(cross[:, i])) / theta2 @ rot for i in range(3)])


def rotation_vector(rot: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rot).as_rotvec()


def _project(points3d: np.ndarray, rot: np.ndarray, t: np.ndarray, focal: float, centre) -> np.ndarray:
    cam = points3d @ rot.T + t
    z = np.where(np.abs(cam[:, 2]) < 1e-9, 1e-9, cam[:, 2])
    return focal * cam[:, :2] / z[:, None] + np.asarray(centre, np.float64)


def project(points3d, yaw: float, pitch: float, roll: float, t, focal: float, centre) -> np.ndarray:
    """(m, 2) pixel coordinates of ``points3d`` (m, 3) posed by the angles (degrees) and
    translation ``t`` (model units; ``t[2]`` is the distance along the optical axis)."""
    return _project(
        np.asarray(points3d, np.float64), rotation(yaw, pitch, roll), np.asarray(t, np.float64), focal, centre
    )


@dataclass
class Pose:
    yaw: float  # degrees
    pitch: float
    roll: float
    rvec: np.ndarray  # rotation vector (radians)
    t: np.ndarray  # translation (model units)
    error: float  # RMS reprojection error (pixels)


def _weak_perspective(model: np.ndarray, pts: np.ndarray, focal: float, centre: np.ndarray) -> tuple | None:
    """(R, t) of a scaled-orthographic fit: pts - mean ~ s * R[:2] @ (model - mean)."""
    m0, p0 = model - model.mean(0), pts - pts.mean(0)
    a, *_ = np.linalg.lstsq(m0, p0, rcond=None)  # (3, 2): p0 ~ m0 @ a
    u, sig, vt = np.linalg.svd(a.T, full_matrices=False)  # the nearest scaled orthonormal rows
    s = sig.mean()
    if not np.isfinite(s) or s <= 1e-9:
        return None
    r12 = u @ vt
    rot = np.vstack([r12, np.cross(r12[0], r12[1])])
    depth = focal / s
    centroid = np.append((pts.mean(0) - centre) * depth / focal, depth)
    return rot, centroid - rot @ model.mean(0)


def _frontal(model: np.ndarray, pts: np.ndarray, focal: float, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of the face looking straight at the camera, at the distance its spread implies."""
    spread = np.sqrt(((pts - pts.mean(0)) ** 2).sum(1).mean())
    model_spread = np.sqrt(((model[:, :2] - model[:, :2].mean(0)) ** 2).sum(1).mean())
    depth = focal * model_spread / max(spread, 1e-6)
    centroid = np.append((pts.mean(0) - centre) * depth / focal, depth)
    return np.eye(3), centroid - model.mean(0)


def solve(points2d, model: np.ndarray | None = None, focal: float | None = None, centre=None, image_size=None) -> Pose:
    """Head pose of ``points2d`` (m, 2) image pixels, m = 5 (MTCNN) or 68 (iBUG) unless a
    ``model`` (m, 3) is given.  ``focal`` defaults to the image width and ``centre`` to the
    image centre (``image_size`` = (width, height) is then needed)."""
    from scipy.optimize import least_squares

    pts = np.asarray(points2d, np.float64)
    model = model_points(len(pts)) if model is None else np.asarray(model, np.float64)
    if focal is None or centre is None:
        if image_size is None:
            raise ValueError("solve: give focal and centre, or image_size")
        w, h = image_size
        focal = float(w) if focal is None else focal
        centre = (w / 2.0, h / 2.0) if centre is None else centre
    centre = np.asarray(centre, np.float64)

    def residuals(x):
        return (_project(model, rodrigues(x[:3]), x[3:], focal, centre) - pts).ravel()

    def jacobian(x):
        rot = rodrigues(x[:3])
        cam = model @ rot.T + x[3:]
        z = np.where(np.abs(cam[:, 2]) < 1e-9, 1e-9, cam[:, 2])
        dproj = np.zeros((len(model), 2, 3))  # d(u, v)/d(camera point)
        dproj[:, 0, 0] = dproj[:, 1, 1] = focal / z
        dproj[:, :, 2] = -focal * cam[:, :2] / z[:, None] ** 2
        dcam_dr = (model @ _rodrigues_derivatives(x[:3], rot).transpose(0, 2, 1)).transpose(
            1, 2, 0
        )  # (m, coords, params)
        return np.concatenate([dproj @ dcam_dr, dproj], axis=2).reshape(-1, 6)

    best = None
    for start in (_weak_perspective, _frontal):  # the second only when the first fails
        init = start(model, pts, focal, centre)
        if init is None:
            continue
        x0 = np.concatenate([rotation_vector(init[0]), init[1]])
        fit = least_squares(residuals, x0, jac=jacobian, method="lm", x_scale="jac")
        if fit.x[5] > 0 and np.isfinite(fit.cost):  # the face in front of the camera
            best = fit
            break
    if best is None:
        raise ValueError("solve: no pose puts the face in front of the camera")
    yaw, pitch, roll = angles(rodrigues(best.x[:3]))
    err = float(np.sqrt((best.fun.reshape(-1, 2) ** 2).sum(1).mean()))
    return Pose(yaw, pitch, roll, best.x[:3].copy(), best.x[3:].copy(), err)
