"""Local binary pattern histograms of the aligned grey face crop over a spatial grid, frame by frame.

Each pixel gets an LBP code (skimage.feature.local_binary_pattern, ``points`` neighbours on
a circle of ``radius``, bilinearly interpolated).  ``method`` ``nri_uniform`` (the default)
is the classic LBP^u2 of face analysis: the P*(P-1)+2 uniform patterns keep their own code,
rotation included, and every non-uniform pattern shares one more, 59 codes for P=8.
``uniform`` (P+2 codes, rotation invariant) and ``default`` (all 2^P raw codes) are accepted
too.  Codes are histogrammed over a ``grid`` x ``grid`` grid of cells (default 6: 8x8-pixel
cells of a 48x48 crop), each histogram L1-normalised, and concatenated cell by cell (row
major): ``grid``^2 * codes values, 36 * 59 = 2124 with the defaults.

LBP is undefined on the crop's border (its neighbours fall outside), so only the interior
(``ceil(radius)`` pixels in from each side) is counted; cells are laid out on the whole crop,
so the border cells are a little smaller.  ``grey_size`` (default 48) is the side of the grey
crops; crops of another size are refused.
"""

from __future__ import annotations

import math

import numpy as np

from emoflow.features.base import Extractor, Output
from emoflow.features.hog import grey_crops

METHODS = ("nri_uniform", "uniform", "default")


def n_codes(points: int, method: str) -> int:
    """How many distinct codes ``method`` gives with ``points`` neighbours."""
    if method == "nri_uniform":
        return points * (points - 1) + 3
    if method == "uniform":
        return points + 2
    if method == "default":
        return 2**points
    raise ValueError(f"lbp: method must be one of {', '.join(METHODS)}, not {method!r}")


def border(radius: float) -> int:
    """Pixels on each side where the LBP code is undefined."""
    return int(math.ceil(radius))


def codes(images: np.ndarray, points: int, radius: float, method: str) -> np.ndarray:
    """(k, h, w) int64 LBP codes of k images of one size, valid on each image's interior only
    (the images are stacked into one tall image so skimage runs once; a border row reads its
    neighbour image, which the interior never does)."""
    from skimage.feature import local_binary_pattern

    k, h, w = images.shape
    c = local_binary_pattern(np.ascontiguousarray(images).reshape(k * h, w), points, radius, method)
    return c.astype(np.int64).reshape(k, h, w)


def cell_index(size: int, grid: int, margin: int) -> np.ndarray:
    """(size - 2*margin,) grid cell of each interior position along one axis; cells split the whole axis."""
    return (np.arange(margin, size - margin) * grid) // size


def histograms(values: np.ndarray, cells: np.ndarray, n_cells: int, n_bins: int) -> np.ndarray:
    """(k, n_cells * n_bins): per row of ``values`` (k, m) codes and ``cells`` (m,) their cell,
    the L1-normalised code histogram of every cell, concatenated (an empty cell stays zero)."""
    k = len(values)
    idx = (np.arange(k)[:, None] * n_cells + cells[None, :]) * n_bins + values
    h = np.bincount(idx.ravel(), minlength=k * n_cells * n_bins).reshape(k, n_cells, n_bins).astype(np.float64)
    h /= np.maximum(h.sum(axis=2, keepdims=True), 1.0)
    return h.reshape(k, n_cells * n_bins).astype(np.float32)


def check_grid(name: str, size: int, grid: int, radius: float) -> None:
    if grid < 1 or np.unique(cell_index(size, grid, border(radius))).size != grid:
        raise ValueError(
            f"{name}: a {grid}x{grid} grid leaves cells without interior pixels on a {size}px crop with radius {radius}"
        )


class LBP(Extractor):
    level = "frame"
    defaults = {"points": 8, "radius": 1, "method": "nri_uniform", "grid": 6, "grey_size": 48}

    def setup(self) -> None:
        p = self.params
        self.n_bins = n_codes(p["points"], p["method"])
        check_grid("lbp", p["grey_size"], p["grid"], p["radius"])
        m = border(p["radius"])
        axis = cell_index(p["grey_size"], p["grid"], m)
        self.cells = (axis[:, None] * p["grid"] + axis[None, :]).ravel()  # cell of every interior pixel, row major

    @property
    def dim(self) -> int:
        return self.params["grid"] ** 2 * n_codes(self.params["points"], self.params["method"])

    def describe(self, grey: np.ndarray) -> np.ndarray:
        """(n, dim) grid histograms of n grey images."""
        p = self.params
        m = border(p["radius"])
        c = codes(grey, p["points"], p["radius"], p["method"])
        g = p["grey_size"]
        interior = c[:, m : g - m, m : g - m].reshape(len(c), -1)
        return histograms(interior, self.cells, p["grid"] ** 2, self.n_bins)

    def extract(self, clip) -> Output | None:
        grey = grey_crops(clip, self.params["grey_size"], "lbp")
        if not len(grey):
            return None
        return Output(self.describe(grey), times=clip.times, frames=clip.frames)
