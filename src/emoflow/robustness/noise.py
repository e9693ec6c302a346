"""Synthetic label noise: a fixed fraction of labels flipped uniformly to another class.

:func:`flip_labels` flips exactly ``round(rate * n)`` labels (not a Bernoulli draw per
label, so a 20% run has 20% wrong labels, not about 20%), each to one of the other
classes with equal probability, all drawn from ``numpy.random.default_rng(seed)``: the
same labels, rate and seed always flip the same faces to the same classes.
"""

from __future__ import annotations

import numpy as np


def flip_labels(labels: np.ndarray, rate: float, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, flipped mask) of int class indices ``labels``."""
    y = np.asarray(labels, np.int64)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"label noise rate {rate} is not in [0, 1]")
    if n_classes < 2 and rate > 0:
        raise ValueError("label noise needs at least two classes")
    rng = np.random.default_rng(seed)
    n_flip = int(round(rate * len(y)))
    flipped = np.zeros(len(y), bool)
    flipped[rng.permutation(len(y))[:n_flip]] = True
    noisy = y.copy()
    # another class, uniformly: add 1 .. n_classes-1 modulo n_classes
    noisy[flipped] = (y[flipped] + rng.integers(1, n_classes, size=n_flip)) % n_classes
    return noisy, flipped
