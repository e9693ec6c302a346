"""The ``expression_embedding`` extractor: the fitted expression embedding
(:mod:`emoflow.similarity.fit`) of every aligned main-face frame, ``dim`` (16) numbers of
unit length per frame.

Each aligned crop is framed as the trunk saw faces in its fit (``framing``: the entry's, else
the fit's, which comes from the trunk's frame_cnn entry), embedded together with its mirror
image when the fit says ``flip_tta``, and written frame by frame.  Parameters: those of
:data:`emoflow.similarity.fit.DEFAULTS` (fit settings are accepted and ignored here;
``model`` is the fit's JSON, set by the workflow).
"""

from __future__ import annotations

import numpy as np

from emoflow.features.base import Extractor, Output
from emoflow.similarity.fit import DEFAULTS


class ExpressionEmbedding(Extractor):
    defaults = dict(DEFAULTS)
    level = "frame"

    def setup(self) -> None:
        from emoflow.nets.common import pick_device, setup_torch
        from emoflow.similarity import model

        setup_torch(self.threads, seed=None)
        if not self.params["model"]:
            raise ValueError(
                "expression_embedding needs a fitted model (the workflow's fit_expression_embedding rule makes it)"
            )
        self.device = pick_device(self.params["device"])
        self.net, self.meta = model.load(self.params["model"], self.device)
        self.framing = self.params["framing"] if self.params["framing"] is not None else self.meta.get("framing")
        self.trunk = self.meta["trunk"]

    @property
    def dim(self) -> int:
        return int(self.meta["head"]["dim"])

    def extract(self, clip) -> Output:
        from emoflow.similarity import model

        images = model.face_images(clip.color if self.framing else None, clip.grey, self.framing, self.trunk["size"])
        emb = model.embed(
            self.net,
            images,
            self.trunk["mean"],
            self.trunk["std"],
            self.device,
            self.params["extract_batch"],
            flip_tta=self.meta.get("flip_tta", False),
        )
        return Output(emb.astype(np.float32), clip.times, clip.frames)
