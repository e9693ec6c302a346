"""LBP-TOP (local binary patterns on three orthogonal planes, Zhao & Pietikainen 2007) of the
aligned grey face volume, one vector per video.

The main face's grey crops, in frame order, make a T x H x W volume (the frames where the
face was found, one after another).  Every voxel gets three 2-D LBP codes
(skimage.feature.local_binary_pattern, ``points`` neighbours at ``radius``, ``method`` as in
:mod:`emoflow.features.lbp`, default ``nri_uniform``): in its XY plane (the frame), its XT
plane (the slice at its row y: time x columns) and its YT plane (the slice at its column x:
time x rows).  A static face gives XT/YT codes whose temporal neighbours all equal the
centre; motion and expression change show up there.

Codes count only on the interior voxels, where all three neighbourhoods lie inside the
volume: ``ceil(radius)`` in from every face of it, in time too.  Voxels are pooled over
time into a ``grid`` x ``grid`` grid of spatial blocks on (y, x) (default 4: 12x12-pixel
blocks of a 48x48 crop; an XT pixel (t, x) of row y and a YT pixel (t, y) of column x
belong to block (y, x)); each block's histogram is L1-normalised, and the vector is
[XY | XT | YT], each block by block (row major): 3 * grid^2 * codes values,
3 * 16 * 59 = 2832 with the defaults.

A volume with fewer than 2*ceil(radius)+1 frames (1 or 2 with radius 1) is padded by
repeating its first and last frames, so short clips still give a vector (a single frame
reads as a static face).  ``max_frames`` (default null: all) keeps at most that many
frames, evenly spaced, for very long videos (the temporal neighbours are then farther
apart).  ``grey_size`` (default 48) is the side of the grey crops; others are refused.
"""

from __future__ import annotations

import numpy as np

from emoflow.features.base import Extractor, Output
from emoflow.features.hog import grey_crops
from emoflow.features.lbp import border, cell_index, check_grid, codes, histograms, n_codes

PLANES = ("XY", "XT", "YT")


class LBPTOP(Extractor):
    level = "video"
    defaults = {"points": 8, "radius": 1, "method": "nri_uniform", "grid": 4, "max_frames": None, "grey_size": 48}

    def setup(self) -> None:
        p = self.params
        self.n_bins = n_codes(p["points"], p["method"])
        check_grid("lbp_top", p["grey_size"], p["grid"], p["radius"])
        if p["max_frames"] is not None and p["max_frames"] < 1:
            raise ValueError("lbp_top: max_frames must be a positive number of frames, or null for all")
        axis = cell_index(p["grey_size"], p["grid"], border(p["radius"]))
        self.blocks = (axis[:, None] * p["grid"] + axis[None, :]).ravel()  # block of every interior (y, x), row major

    @property
    def dim(self) -> int:
        p = self.params
        return len(PLANES) * p["grid"] ** 2 * n_codes(p["points"], p["method"])

    def volume(self, grey: np.ndarray) -> np.ndarray:
        """The (T, g, g) volume: subsampled to ``max_frames``, padded in time to at least 2*border+1 frames."""
        n, m = len(grey), border(self.params["radius"])
        if self.params["max_frames"] and n > self.params["max_frames"]:
            grey = grey[np.round(np.linspace(0, n - 1, self.params["max_frames"])).astype(int)]
        short = max(0, 2 * m + 1 - len(grey))
        if short:
            grey = np.pad(grey, ((short // 2, short - short // 2), (0, 0), (0, 0)), mode="edge")
        return grey

    def describe(self, volume: np.ndarray) -> np.ndarray:
        """(dim,) LBP-TOP of a (T, H, W) uint8 volume (T >= 2*border+1)."""
        p = self.params
        P, R, method = p["points"], p["radius"], p["method"]
        t, h, w = volume.shape
        m = border(R)
        xy = codes(volume, P, R, method)  # frames: rows y, columns x
        xt = codes(volume.transpose(1, 0, 2), P, R, method).transpose(1, 0, 2)  # slice per row y: rows t, columns x
        yt = codes(volume.transpose(2, 0, 1), P, R, method).transpose(1, 2, 0)  # slice per column x: rows t, columns y
        n_blocks = p["grid"] ** 2
        blocks = np.broadcast_to(self.blocks, (t - 2 * m, len(self.blocks))).ravel()
        out = [
            histograms(c[m : t - m, m : h - m, m : w - m].reshape(1, -1), blocks, n_blocks, self.n_bins)[0]
            for c in (xy, xt, yt)
        ]
        return np.concatenate(out)

    def extract(self, clip) -> Output | None:
        grey = grey_crops(clip, self.params["grey_size"], "lbp_top")
        if not len(grey):
            return None
        return Output(self.describe(self.volume(grey)))
