"""Face alignment: a similarity transform (rotation, uniform scale, translation) from
the five MTCNN landmarks to a canonical template, and aligned crops at any size.

The template is the widely used 5-point layout of 112x112 face crops (eyes, nose tip,
mouth corners); ``margin`` shrinks it toward the centre to keep more context (FER-style
crops want the whole face and some forehead).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def template(size: int, margin: float = 0.0) -> np.ndarray:
    """Template landmarks for a ``size`` x ``size`` crop; ``margin`` in [0, 0.5)
    pulls them toward the centre (more context around the face)."""
    t = TEMPLATE_112 / 112.0
    t = 0.5 + (t - 0.5) * (1.0 - 2.0 * margin)
    return t * size


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping src -> dst, as a 2x3 matrix."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rot = u @ d @ vt
    var = (s0**2).sum() / len(src)
    scale = np.trace(np.diag(sig) @ d) / var if var > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` crop that ``matrix`` (image -> crop) maps the image onto."""
    a = np.vstack([matrix, [0, 0, 1]])
    inv = np.linalg.inv(a)[:2].ravel()
    im = Image.fromarray(image)
    out = im.transform((size, size), Image.AFFINE, data=tuple(inv), resample=Image.BILINEAR)
    return np.asarray(out)


def align(image: np.ndarray, landmarks: np.ndarray, size: int, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(aligned crop, 2x3 transform) for one face."""
    m = similarity(landmarks, template(size, margin))
    return warp(image, m, size), m


def aligned_pair(image: np.ndarray, landmarks: np.ndarray, color_size: int, grey_size: int, margin: float = 0.0):
    """(colour PIL crop, grey uint8 array) of one face from a single warp: the template
    scales with the crop size, so the grey crop is the colour crop, resized and greyed."""
    m = similarity(landmarks, template(color_size, margin))
    a = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2].ravel()
    color = Image.fromarray(image).transform(
        (color_size, color_size), Image.AFFINE, data=tuple(a), resample=Image.BILINEAR
    )
    grey = color.convert("L")
    if grey_size != color_size:
        grey = grey.resize((grey_size, grey_size), Image.BOX if grey_size < color_size else Image.BILINEAR)
    return color, np.asarray(grey)
