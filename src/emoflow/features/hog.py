"""Histograms of oriented gradients (skimage.feature.hog) of the aligned grey face crop, frame by frame.

Parameters: ``orientations`` (unsigned gradient bins over 0-180 degrees, default 9),
``pixels_per_cell`` (square cells, default 8), ``cells_per_block`` (square blocks of cells,
default 2), ``block_norm`` (default ``L2-Hys``), ``transform_sqrt`` (gamma compression,
default off) and ``grey_size`` (side of the grey crops, default 48: crops of another size
are refused, since the dimension depends on it).  On a 48x48 crop the defaults give 6x6
cells, 5x5 overlapping blocks of 2x2 cells, 5*5*2*2*9 = 900 values, ordered (block row,
block column, cell row, cell column, orientation) as skimage flattens them.
"""

from __future__ import annotations

import numpy as np

from emoflow.features.base import Extractor, Output


def grey_crops(clip, size: int, name: str) -> np.ndarray:
    """The clip's (n, size, size) uint8 grey crops; a clear error if they have another size."""
    grey = np.asarray(clip.grey)
    if grey.ndim != 3 or grey.shape[1:] != (size, size):
        raise ValueError(
            f"{name}: grey crops of {clip.video_id} have shape {grey.shape[1:]}, expected ({size}, {size}) "
            f"(set the extractor's grey_size to the crops' grey_size)"
        )
    return grey.astype(np.uint8, copy=False)


class HOG(Extractor):
    level = "frame"
    defaults = {
        "orientations": 9,
        "pixels_per_cell": 8,
        "cells_per_block": 2,
        "block_norm": "L2-Hys",
        "transform_sqrt": False,
        "grey_size": 48,
    }

    def setup(self) -> None:
        p = self.params
        if p["block_norm"] not in ("L1", "L1-sqrt", "L2", "L2-Hys"):
            raise ValueError(f"hog: block_norm must be L1, L1-sqrt, L2 or L2-Hys, not {p['block_norm']!r}")
        if p["grey_size"] // p["pixels_per_cell"] < p["cells_per_block"]:
            raise ValueError(
                f"hog: a {p['grey_size']}px crop holds fewer than cells_per_block={p['cells_per_block']} "
                f"cells of {p['pixels_per_cell']}px"
            )

    @property
    def dim(self) -> int:
        p = self.params
        # blocks per axis (cells tile the crop from its top-left corner; a remainder is dropped)
        blocks = p["grey_size"] // p["pixels_per_cell"] - p["cells_per_block"] + 1
        return blocks * blocks * p["cells_per_block"] ** 2 * p["orientations"]

    def describe(self, image: np.ndarray) -> np.ndarray:
        """The HOG vector (dim,) of one grey image."""
        from skimage.feature import hog

        p = self.params
        cells, blocks = (p["pixels_per_cell"],) * 2, (p["cells_per_block"],) * 2
        h = hog(
            image,
            orientations=p["orientations"],
            pixels_per_cell=cells,
            cells_per_block=blocks,
            block_norm=p["block_norm"],
            transform_sqrt=p["transform_sqrt"],
            feature_vector=True,
        )
        return h.astype(np.float32)

    def extract(self, clip) -> Output | None:
        grey = grey_crops(clip, self.params["grey_size"], "hog")
        if not len(grey):
            return None
        values = np.stack([self.describe(g) for g in grey])
        return Output(values, times=clip.times, frames=clip.frames)
