"""Synthetic occluders on face images, placed from facial landmarks.

FER2013 faces carry no landmarks, and the project's only landmark detector (MTCNN's five
points, :mod:`emoflow.faces.detect`) needs faces well inside a larger image, not 48x48
greys that the face fills.  The landmarks used here are therefore a *mean-shape template
of the FER2013 layout* (:data:`FER2013_LANDMARKS_48`): the five MTCNN-style points (eye
centres, nose tip, mouth corners) read off the mean of 8000 FER2013 training faces (dark
blobs of the eyes at row 17, columns 16 and 31; the nostrils' shadow around row 29-30; the
mouth line at row 39, columns 17-31), scaled to other sizes.  FER2013 faces are registered
(roughly centred and cropped by the dataset's makers), so the template is right on average
and a few pixels off on a given face.  Any (5, 2) landmarks of one face may be passed
instead.

Occluders (``OCCLUDERS``), all filled with one grey value (default 0, black):

``lower_face``  a mask: the face box's full width from a quarter of the eye distance above
                the nose tip down to the box's bottom (nose tip, mouth, chin);
``eye_bar``     a bar over both eyes: 0.6 eye distances beyond each eye horizontally,
                ±0.35 eye distances around the eye line vertically;
``patch25`` / ``patch50``  one square of 25% / 50% of the face box's area at a random
                position inside the box (seeded per image: the same image gets the same patch).

The face box: 0.6 eye distances beyond the eyes horizontally, from 0.8 eye distances above
the eye line to 0.5 below the mouth (clipped to the image).
"""

from __future__ import annotations

import numpy as np

# (x, y) in pixels of a 48x48 FER2013 face: left eye, right eye, nose tip, mouth left, mouth right
FER2013_LANDMARKS_48 = np.array([[16.0, 17.0], [31.0, 17.0], [23.5, 29.0], [17.0, 39.0], [31.0, 39.0]], np.float32)

OCCLUDERS = ("lower_face", "eye_bar", "patch25", "patch50")


def template(size: int) -> np.ndarray:
    """The FER2013 mean-shape landmarks (5, 2) for a ``size`` x ``size`` face."""
    return FER2013_LANDMARKS_48 * (size / 48.0)


def face_box(landmarks: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end-exclusive, of the face from its five landmarks."""
    lm = np.asarray(landmarks, np.float32)
    d = float(np.linalg.norm(lm[1] - lm[0]))
    eye_y, mouth_y = float(lm[:2, 1].mean()), float(lm[3:, 1].mean())
    x0, x1 = lm[0, 0] - 0.6 * d, lm[1, 0] + 0.6 * d
    y0, y1 = eye_y - 0.8 * d, mouth_y + 0.5 * d
    clip = lambda v: int(min(max(round(v), 0), size))  # noqa: E731
    return clip(x0), clip(y0), clip(x1), clip(y1)


def region(
    kind: str, landmarks: np.ndarray, size: int, rng: np.random.Generator | None = None
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of occluder ``kind`` on a ``size`` face with these landmarks."""
    lm = np.asarray(landmarks, np.float32)
    d = float(np.linalg.norm(lm[1] - lm[0]))
    bx0, by0, bx1, by1 = face_box(lm, size)
    clip = lambda v: int(min(max(round(v), 0), size))  # noqa: E731
    if kind == "lower_face":
        return bx0, clip(lm[2, 1] - 0.25 * d), bx1, by1
    if kind == "eye_bar":
        eye_y = float(lm[:2, 1].mean())
        return clip(lm[0, 0] - 0.6 * d), clip(eye_y - 0.35 * d), clip(lm[1, 0] + 0.6 * d), clip(eye_y + 0.35 * d)
    if kind.startswith("patch"):
        frac = int(kind[len("patch") :]) / 100.0
        side = int(round(np.sqrt(frac * (bx1 - bx0) * (by1 - by0))))
        side = max(1, min(side, bx1 - bx0, by1 - by0))
        rng = rng or np.random.default_rng(0)
        x0 = bx0 + int(rng.integers(0, bx1 - bx0 - side + 1))
        y0 = by0 + int(rng.integers(0, by1 - by0 - side + 1))
        return x0, y0, x0 + side, y0 + side
    raise ValueError(f"unknown occluder {kind!r} (known: {', '.join(OCCLUDERS)})")


def occlude(
    images: np.ndarray, kind: str, landmarks: np.ndarray | None = None, fill: int = 0, seed: int = 0
) -> np.ndarray:
    """A copy of uint8 faces (N, S, S) with occluder ``kind``; ``landmarks`` (5, 2) for all
    faces or (N, 5, 2) per face (default: the FER2013 template at this size)."""
    x = np.array(images, copy=True)
    size = x.shape[1]
    lms = np.broadcast_to(template(size) if landmarks is None else np.asarray(landmarks, np.float32), (len(x), 5, 2))
    for i in range(len(x)):
        x0, y0, x1, y1 = region(kind, lms[i], size, np.random.default_rng([seed, i]))
        x[i, y0:y1, x0:x1] = fill
    return x
