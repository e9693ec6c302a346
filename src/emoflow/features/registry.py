"""Every extractor type: where its code lives, what it reads, which env it runs in.

Adding an extractor is one module (a subclass of :class:`emoflow.features.base.Extractor`)
and one entry here.  Kept free of heavy imports: the workflow reads it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    module: str  # emoflow module holding the class
    cls: str
    input: str  # audio | transcripts | crops | frames (see emoflow.features.base)
    env: str  # envs/<env>.yaml
    gpu: bool = False  # can use a GPU
    fitted: bool = False  # needs a model fitted on the training split (a corpus-level rule)


REGISTRY: dict[str, Entry] = {
    "opensmile": Entry("emoflow.features.opensmile_sets", "OpenSmile", "audio", "audio"),
    "mfcc": Entry("emoflow.features.spectral", "MFCC", "audio", "audio"),
    "logmel": Entry("emoflow.features.spectral", "LogMel", "audio", "audio"),
    "sentence_embedding": Entry("emoflow.features.text", "SentenceEmbedding", "transcripts", "text", gpu=True),
    "tfidf": Entry("emoflow.features.tfidf", "TfIdf", "transcripts", "text", fitted=True),
    "audio_cnn": Entry("emoflow.features.audio_cnn", "AudioCNN", "audio", "audio", gpu=True, fitted=True),
    # visual: aligned main-face crops (emoflow.faces)
    "hog": Entry("emoflow.features.hog", "HOG", "crops", "face"),
    "lbp": Entry("emoflow.features.lbp", "LBP", "crops", "face"),
    "hog_lbp": Entry("emoflow.features.hog_lbp", "HOGLBP", "crops", "face"),
    "dsift": Entry("emoflow.features.dsift", "DenseSIFT", "crops", "face"),
    "lbp_top": Entry("emoflow.features.lbp_top", "LBPTOP", "crops", "face"),
    "geometry": Entry("emoflow.features.geometry", "Geometry", "crops", "face"),
    "frame_cnn": Entry("emoflow.features.frame_cnn", "FrameCNN", "crops", "visual-torch", gpu=True, fitted=True),
    "fer_scores": Entry("emoflow.features.fer_scores", "FERScores", "crops", "visual-tf", gpu=True),
    "c3d": Entry("emoflow.features.c3d", "C3D", "crops", "visual-torch", gpu=True, fitted=True),
    # the 16-d expression-similarity embedding (emoflow.similarity), trained on face triplets
    "expression_embedding": Entry(
        "emoflow.similarity.extractor", "ExpressionEmbedding", "crops", "visual-torch", gpu=True, fitted=True
    ),
}


#: Modality of each input kind (the report's face-only / audio-only / fused systems).
MODALITY = {"audio": "audio", "transcripts": "text", "crops": "face", "frames": "scene"}


def modality(extractor: str) -> str:
    return MODALITY[entry(extractor).input]


def entry(extractor: str) -> Entry:
    try:
        return REGISTRY[extractor]
    except KeyError:
        raise KeyError(f"unknown extractor {extractor!r} (known: {', '.join(sorted(REGISTRY))})") from None


def load(extractor: str):
    """The extractor class (imports its module)."""
    import importlib

    e = entry(extractor)
    return getattr(importlib.import_module(e.module), e.cls)
