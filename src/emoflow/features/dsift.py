"""Dense SIFT (cyvlfeat.sift.dsift, vlfeat) of the aligned grey face crop, frame by frame.

SIFT descriptors (4x4 spatial bins x 8 orientations = 128 values, unit L2 norm after
vlfeat's clamp-and-renormalise; zero on a flat patch) on a regular grid of keypoints,
concatenated in a fixed order (row by row, top to bottom, left to right).  Parameters:
``bin_size`` (pixels per spatial bin, default 4: a descriptor spans 16 pixels), ``step``
(pixels between keypoints, default 8), ``magnif`` (the image is pre-smoothed, as vl_phow
does, by a Gaussian of sigma sqrt((bin_size/magnif)^2 - 1/4); 0 disables it; default 6),
``fast`` (vlfeat's flat rather than Gaussian window, default true, as vl_phow) and
``grey_size`` (default 48; crops of another size are refused).

A descriptor fits where all its bin centres lie on the crop, so each axis holds
n = (grey_size - 1 - 3*bin_size) // step + 1 keypoints (grid centred on the crop) and
dim = n^2 * 128: 5 x 5 keypoints, 3200 values with the defaults.
"""

from __future__ import annotations

import math

import numpy as np

from emoflow.features.base import Extractor, Output
from emoflow.features.hog import grey_crops

GEOMETRY = (4, 4, 8)  # spatial bins y, x; orientations
DESCRIPTOR = GEOMETRY[0] * GEOMETRY[1] * GEOMETRY[2]


class DenseSIFT(Extractor):
    level = "frame"
    defaults = {"step": 8, "bin_size": 4, "magnif": 6.0, "fast": True, "grey_size": 48}

    def setup(self) -> None:
        p = self.params
        if p["step"] < 1 or p["bin_size"] < 1:
            raise ValueError("dsift: step and bin_size must be positive")
        if self.per_axis < 1:
            raise ValueError(f"dsift: a descriptor of bin_size {p['bin_size']} does not fit a {p['grey_size']}px crop")
        span = (GEOMETRY[0] - 1) * p["bin_size"] + (self.per_axis - 1) * p["step"]  # first to last bin centre
        self.offset = (p["grey_size"] - 1 - span) // 2  # centre the keypoint grid on the crop
        s = (p["bin_size"] / p["magnif"]) ** 2 - 0.25 if p["magnif"] else 0.0
        self.sigma = math.sqrt(s) if s > 0 else 0.0

    @property
    def per_axis(self) -> int:
        p = self.params
        return max(0, (p["grey_size"] - 1 - (GEOMETRY[0] - 1) * p["bin_size"]) // p["step"] + 1)

    @property
    def dim(self) -> int:
        return self.per_axis**2 * DESCRIPTOR

    def describe(self, image: np.ndarray) -> np.ndarray:
        """The (dim,) concatenated descriptors of one grey image."""
        from cyvlfeat.sift import dsift
        from scipy.ndimage import gaussian_filter

        p = self.params
        im = image.astype(np.float32)
        if self.sigma:
            im = gaussian_filter(im, self.sigma)
        g = p["grey_size"]
        frames, desc = dsift(
            np.ascontiguousarray(im, np.float32),
            step=p["step"],
            size=p["bin_size"],
            bounds=[self.offset, self.offset, g - 1, g - 1],
            fast=p["fast"],
            float_descriptors=True,
            geometry=GEOMETRY,
        )
        if len(desc) != self.per_axis**2:
            raise RuntimeError(f"dsift: {len(desc)} keypoints, expected {self.per_axis**2}")
        order = np.lexsort((frames[:, 1], frames[:, 0]))  # by y, then x
        return (desc[order] / 512.0).astype(np.float32).ravel()  # vlfeat's float descriptors are 512 x the unit vector

    def extract(self, clip) -> Output | None:
        grey = grey_crops(clip, self.params["grey_size"], "dsift")
        if not len(grey):
            return None
        return Output(np.stack([self.describe(g) for g in grey]), times=clip.times, frames=clip.frames)
