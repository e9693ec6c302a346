"""Label spaces (class sets) and maps between them.

A label space is an ordered class list from the config (``label_spaces``); the order
is the column order of probability tables.  ``label_maps.<from>.<to>`` maps classes of
one space onto another (``null`` = no counterpart), so a model trained on, say, FER+
(with contempt) can be read in EmotiW's 7 classes.
"""

from __future__ import annotations

import numpy as np

from emoflow.errors import ConfigError


def classes(cfg: dict, space: str | None = None) -> list[str]:
    space = space or cfg["dataset"]["label_space"]
    try:
        return list(cfg["label_spaces"][space])
    except KeyError:
        raise ConfigError(f"unknown label space {space!r}") from None


def label_map(cfg: dict, src: str, dst: str) -> dict[str, str | None]:
    """Class-to-class map from space ``src`` to ``dst`` (identity where names agree)."""
    src_classes, dst_classes = classes(cfg, src), classes(cfg, dst)
    explicit = cfg.get("label_maps", {}).get(src, {}).get(dst)
    if explicit is None:
        if src == dst:
            return {c: c for c in src_classes}
        explicit = {}
    out = {}
    for c in src_classes:
        if c in explicit:
            out[c] = explicit[c]
        else:
            out[c] = c if c in dst_classes else None
    return out


def map_labels(labels, mapping: dict[str, str | None]) -> list[str | None]:
    """Map a sequence of labels; classes with no counterpart become ``None``."""
    return [mapping.get(lab) for lab in labels]


def map_probabilities(probs, src_classes, dst_classes, mapping) -> np.ndarray:
    """Map an (n, len(src_classes)) probability matrix to ``dst_classes``.

    Probability of each destination class is the sum over the source classes mapped to
    it; rows are renormalised over the mass that has a counterpart (a row whose mass has
    none becomes uniform).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(src_classes):
        raise ValueError(f"expected (n, {len(src_classes)}) probabilities, got {probs.shape}")
    m = np.zeros((len(src_classes), len(dst_classes)))
    index = {c: i for i, c in enumerate(dst_classes)}
    for i, c in enumerate(src_classes):
        target = mapping.get(c)
        if target is not None:
            m[i, index[target]] = 1.0
    out = probs @ m
    mass = out.sum(axis=1, keepdims=True)
    uniform = np.full_like(out, 1.0 / len(dst_classes))
    return np.where(mass > 0, out / np.where(mass > 0, mass, 1.0), uniform)
