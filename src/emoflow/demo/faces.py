"""Real face photos shipped by installed packages, and synthetic expressions on them.

Identities: the astronaut (scikit-image ``data.astronaut``), Grace Hopper
(matplotlib's sample data) and 20 frontal LFW faces of scikit-image's ``lfw_subset``.
Each comes with five hand-placed landmarks (eyes, nose tip, mouth corners; for LFW the
canonical positions of its aligned 25x25 crops).  An expression is a piecewise-affine
warp that moves mouth corners, lips and brows by class-specific amounts (in units of
the inter-ocular distance), plus an open mouth for ``surprise`` -- a cue that
appearance features and CNNs can learn, on real faces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FACE_SIZE = 160  # side of the prepared face patch, pixels


@dataclass(frozen=True)
class BaseFace:
    name: str
    image: np.ndarray  # FACE_SIZE x FACE_SIZE x 3 uint8
    landmarks: np.ndarray  # 5 x 2 (x, y): left eye, right eye, nose, left mouth, right mouth


def _patch(img: Image.Image, lm: np.ndarray, scale: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Square patch centred between eyes and mouth, side = scale x inter-ocular distance."""
    d = float(np.linalg.norm(lm[1] - lm[0]))
    cx, cy = lm[:, 0].mean(), (lm[:2, 1].mean() + lm[3:, 1].mean()) / 2
    side = scale * d
    pad = int(side)  # replicate edges so the square may reach past the photo's border
    arr = np.pad(np.asarray(img.convert("RGB")), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    box = (cx - side / 2 + pad, cy - side / 2 + pad, cx + side / 2 + pad, cy + side / 2 + pad)
    patch = Image.fromarray(arr).resize((FACE_SIZE, FACE_SIZE), Image.BICUBIC, box=box)
    k = FACE_SIZE / side
    return np.asarray(patch), (lm + pad - [box[0], box[1]]) * k


# LFW faces (indices into lfw_subset) seen frontal, with a closed mouth where the
# canonical landmarks put it: the expression warp lands on the right features.
LFW_FRONTAL = (3, 7, 14, 15, 20, 24, 27, 41, 44, 58, 60, 62, 63, 66, 72, 73, 86, 92, 95, 98)


@functools.lru_cache(maxsize=1)
def base_faces() -> tuple[BaseFace, ...]:
    from skimage import data

    faces = []
    astro = Image.fromarray(data.astronaut())
    lm = np.array([[204, 101.3], [247.3, 103], [224.7, 125.3], [204, 141.3], [244.7, 142]])
    faces.append(BaseFace("astronaut", *_patch(astro, lm)))
    try:
        import matplotlib.cbook as cbook

        hopper = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        lm = np.array([[222.5, 190], [315, 189], [267.5, 237.5], [240, 275], [295, 275]])
        faces.append(BaseFace("grace_hopper", *_patch(hopper, lm)))
    except (ImportError, FileNotFoundError):  # matplotlib is optional for the demo
        pass
    lfw = data.lfw_subset()  # the first 100 are faces, the rest are not
    lm = np.array([[8.3, 10.0], [16.7, 10.0], [12.5, 14.2], [9.3, 18.6], [15.7, 18.6]])
    for i in LFW_FRONTAL:
        face = lfw[i]
        grey = Image.fromarray((np.clip(face, 0, 1) * 255).astype(np.uint8))
        big = grey.resize((100, 100), Image.BICUBIC).filter(ImageFilter.GaussianBlur(0.8))
        faces.append(BaseFace(f"lfw{i:03d}", *_patch(big, lm * 4.0, scale=2.7)))
    return tuple(faces)


# Displacements (dx, dy) in inter-ocular distances, x to the right, y down.
EXPRESSIONS = {
    "neutral": {},
    "happy": {
        "ml": (-0.13, -0.15),
        "mr": (0.13, -0.15),
        "ul": (0, -0.03),
        "ll": (0, 0.06),
        "cl": (0, -0.07),
        "cr": (0, -0.07),
    },
    "sad": {
        "ml": (0.04, 0.17),
        "mr": (-0.04, 0.17),
        "ll": (0, -0.03),
        "bli": (0, -0.14),
        "bri": (0, -0.14),
        "blo": (0, 0.06),
        "bro": (0, 0.06),
    },
    "surprise": {
        "bli": (0, -0.22),
        "bri": (0, -0.22),
        "blo": (0, -0.2),
        "bro": (0, -0.2),
        "ll": (0, 0.28),
        "ch": (0, 0.15),
        "ml": (0.06, 0.04),
        "mr": (-0.06, 0.04),
    },
    "angry": {
        "bli": (0.06, 0.14),
        "bri": (-0.06, 0.14),
        "ml": (0.05, 0.0),
        "mr": (-0.05, 0.0),
        "ul": (0, 0.03),
        "ll": (0, -0.04),
    },
}


def control_points(lm: np.ndarray) -> dict[str, np.ndarray]:
    le, re, nose, ml, mr = lm
    d = float(np.linalg.norm(re - le))
    mc = (ml + mr) / 2
    v = lambda x, y: np.array([x, y]) * d  # noqa: E731
    return {
        "le": le,
        "re": re,
        "no": nose,
        "ml": ml,
        "mr": mr,
        "ul": mc + v(0, -0.12),
        "ll": mc + v(0, 0.12),
        "ch": mc + v(0, 0.55),
        "bli": le + v(0.22, -0.36),
        "blo": le + v(-0.25, -0.33),
        "bri": re + v(-0.22, -0.36),
        "bro": re + v(0.25, -0.33),
        "cl": ml + v(-0.25, -0.25),
        "cr": mr + v(0.25, -0.25),
    }


def express(face: BaseFace, expression: str, intensity: float) -> np.ndarray:
    """The face patch with ``expression`` at ``intensity`` (0 = the photo as it is)."""
    from skimage.transform import PiecewiseAffineTransform, warp

    pts = control_points(face.landmarks)
    d = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    moves = EXPRESSIONS[expression]
    names = sorted(pts)
    src = np.array([pts[n] for n in names])
    dst = np.array([pts[n] + np.array(moves.get(n, (0, 0))) * d * intensity for n in names])
    s = FACE_SIZE - 1
    ring = np.array(
        [(x, y) for x in np.linspace(0, s, 6) for y in (0, s)]
        + [(x, y) for y in np.linspace(0, s, 6)[1:-1] for x in (0, s)]
    )
    src, dst = np.vstack([src, ring]), np.vstack([dst, ring])
    # output -> input coordinates, as warp() wants
    if hasattr(PiecewiseAffineTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = PiecewiseAffineTransform.from_estimate(dst, src)
    else:
        tform = PiecewiseAffineTransform()
        tform.estimate(dst, src)
    out = warp(face.image, tform, output_shape=face.image.shape[:2], mode="edge", preserve_range=True)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if expression == "surprise" and intensity > 0:
        out = _open_mouth(out, dst[names.index("ul")], dst[names.index("ll")], d, intensity)
    return out


def _open_mouth(img: np.ndarray, upper, lower, d: float, intensity: float) -> np.ndarray:
    im = Image.fromarray(img)
    mask = Image.new("L", im.size, 0)
    cx, cy = (upper + lower) / 2
    w, h = 0.34 * d, max(1.0, 0.5 * (lower[1] - upper[1]) * min(1.0, intensity))
    ImageDraw.Draw(mask).ellipse((cx - w, cy - h, cx + w, cy + h), fill=230)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, 0.04 * d)))
    dark = Image.new("RGB", im.size, (55, 25, 25))
    return np.asarray(Image.composite(dark, im, mask))


def soft_mask(size: int = FACE_SIZE) -> Image.Image:
    """Elliptical alpha mask with a soft edge, to paste a patch onto a background."""
    mask = Image.new("L", (size, size), 0)
    m = size * 0.06
    ImageDraw.Draw(mask).ellipse((m, m * 0.3, size - m, size - m * 0.3), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(size * 0.05))
