"""Augmentations of the e2e network, on numpy arrays (one clip's frame sequences) and
soft targets, so each is testable on its own.

* face transforms (test-time augmentation, the seed's 12): horizontal flip x vertical flip x
  brightness 0.9 / 1.0 / 1.1, applied to aligned face crops (uint8, grey ``(n, h, w)`` or
  colour ``(n, h, w, 3)``) before the frame CNN; named ``h<0|1>v<0|1>b<factor>``
  (``h0v0b1.0`` is the identity)
* :func:`mixup`: one ``lambda ~ Beta(alpha, alpha)`` mixes every modality's (padded) input
  and the targets
* :func:`cutmix_face`: a random contiguous span of one clip's face frames replaced by the
  other clip's frames at the same relative positions; the target mixed by the span's share
* :func:`spec_augment`: time and frequency masks on a log-mel (or any frame-level audio)
  sequence, filled with the feature mean (zero after standardisation)
* :func:`frame_dropout`: a share of a sequence's frames left out (at least one kept)
* :func:`smooth`: label smoothing of soft targets
"""

from __future__ import annotations

import itertools

import numpy as np

BRIGHTNESS = (0.9, 1.0, 1.1)


def transform_name(hflip: bool, vflip: bool, brightness: float) -> str:
    return f"h{int(hflip)}v{int(vflip)}b{brightness:.1f}"


#: The seed's 12 face transforms, in a fixed order (the cache's column blocks follow it).
SEED_TRANSFORMS = tuple(transform_name(h, v, b) for h, v, b in itertools.product((0, 1), (0, 1), BRIGHTNESS))
TRANSFORMS = SEED_TRANSFORMS
IDENTITY = transform_name(False, False, 1.0)


def parse_transform(name: str) -> tuple[bool, bool, float]:
    """(hflip, vflip, brightness) of a transform name."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown face transform {name!r} (known: {', '.join(TRANSFORMS)})")
    return name[1] == "1", name[3] == "1", float(name[5:])


def apply_transform(images: np.ndarray, name: str) -> np.ndarray:
    """Images ``(n, h, w)`` or ``(n, h, w, c)`` uint8 under one face transform (a new array)."""
    hflip, vflip, b = parse_transform(name)
    out = np.asarray(images)
    if hflip:
        out = out[:, :, ::-1]
    if vflip:
        out = out[:, ::-1]
    if b != 1.0:
        out = np.clip(np.rint(out.astype(np.float32) * b), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def one_hot(y, n_classes: int) -> np.ndarray:
    y = np.asarray(y, np.int64)
    out = np.zeros((len(y), n_classes), np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def smooth(targets: np.ndarray, eps: float) -> np.ndarray:
    """Label smoothing: ``(1 - eps) t + eps / C`` (each row still sums to one)."""
    t = np.asarray(targets, np.float32)
    return (1.0 - eps) * t + eps / t.shape[1]


def mixup_lambda(alpha: float, rng: np.random.Generator) -> float:
    """``lambda ~ Beta(alpha, alpha)`` (alpha = 1: uniform)."""
    return float(rng.beta(alpha, alpha))


def mixup(xa: np.ndarray, xb: np.ndarray, ta: np.ndarray, tb: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``lam * a + (1 - lam) * b`` of inputs and of targets."""
    return lam * xa + (1.0 - lam) * xb, lam * ta + (1.0 - lam) * tb


def cutmix_face(
    seq_a: np.ndarray, seq_b: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """``seq_a`` (n, d) with a random contiguous span of ``round(share * n)`` frames replaced
    by ``seq_b``'s frames at the same relative positions; returns (sequence, the share of
    frames actually replaced), which weighs ``b``'s label in the target."""
    n = len(seq_a)
    k = int(round(float(share) * n))
    if n == 0 or k <= 0 or len(seq_b) == 0:
        return np.array(seq_a, copy=True), 0.0
    k = min(k, n)
    start = int(rng.integers(0, n - k + 1))
    out = np.array(seq_a, copy=True)
    pos = np.arange(start, start + k)
    src = np.minimum((pos * len(seq_b)) // n, len(seq_b) - 1)  # b's frames at the same relative times
    out[pos] = seq_b[src]
    return out, k / n


def cutmix_target(ta: np.ndarray, tb: np.ndarray, share: float) -> np.ndarray:
    return (1.0 - share) * ta + share * tb


def spec_augment(
    x: np.ndarray,
    rng: np.random.Generator,
    fill: np.ndarray | None = None,
    time_masks: int = 2,
    time_width: float = 0.1,
    freq_masks: int = 2,
    freq_width: int = 8,
) -> np.ndarray:
    """``x`` (T, F) with ``time_masks`` spans of up to ``time_width * T`` frames and
    ``freq_masks`` bands of up to ``freq_width`` bins set to ``fill`` (per bin; default 0)."""
    out = np.array(x, dtype=np.float32, copy=True)
    t, f = out.shape
    fill = np.zeros(f, np.float32) if fill is None else np.asarray(fill, np.float32)
    for _ in range(int(time_masks)):
        w = int(rng.integers(0, max(1, int(time_width * t)) + 1))
        if w:
            s = int(rng.integers(0, t - w + 1))
            out[s : s + w] = fill
    for _ in range(int(freq_masks)):
        w = int(rng.integers(0, min(int(freq_width), f) + 1))
        if w:
            s = int(rng.integers(0, f - w + 1))
            out[:, s : s + w] = fill[s : s + w]
    return out


def frame_dropout(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """The frames of ``x`` kept, each with probability ``1 - p`` (at least one; order kept)."""
    if p <= 0 or len(x) <= 1:
        return x
    keep = rng.random(len(x)) >= p
    if not keep.any():
        keep[int(rng.integers(len(x)))] = True
    return x[keep]
