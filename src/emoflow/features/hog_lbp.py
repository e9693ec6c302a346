"""HOG and LBP grid histograms of the aligned grey face crop, concatenated frame by frame: [HOG | LBP].

Parameters are nested: ``hog`` holds :class:`~emoflow.features.hog.HOG`'s and ``lbp``
:class:`~emoflow.features.lbp.LBP`'s (each filled from that extractor's defaults, unknown
keys refused), e.g. ``{extractor: hog_lbp, hog: {orientations: 12}, lbp: {grid: 4}}``.
``dim`` is the sum of the two, 900 + 2124 = 3024 with the defaults.
"""

from __future__ import annotations

import numpy as np

from emoflow.features.base import Extractor, Output
from emoflow.features.hog import HOG
from emoflow.features.lbp import LBP


class HOGLBP(Extractor):
    level = "frame"
    defaults = {"hog": dict(HOG.defaults), "lbp": dict(LBP.defaults)}

    def setup(self) -> None:
        for key in ("hog", "lbp"):
            if not isinstance(self.params[key] or {}, dict):
                raise ValueError(f"hog_lbp: parameter {key!r} must be a mapping of that extractor's parameters")
        self.hog = HOG(self.params["hog"], self.threads)
        self.lbp = LBP(self.params["lbp"], self.threads)

    @property
    def dim(self) -> int:
        return self.hog.dim + self.lbp.dim

    def extract(self, clip) -> Output | None:
        h, lb = self.hog.extract(clip), self.lbp.extract(clip)
        if h is None or lb is None:
            return None
        return Output(np.concatenate([h.values, lb.values], axis=1), times=clip.times, frames=clip.frames)
