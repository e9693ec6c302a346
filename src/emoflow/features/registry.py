"""Every extractor type: where its code lives, what it reads, which env it runs in, and, for
one fitted on training data, how its fit runs.

Adding an extractor is one module (a subclass of :class:`emoflow.features.base.Extractor`)
and one entry here; a fitted one also offers ``fit_stage(job)`` (:mod:`emoflow.features.fit`)
and a :class:`Fit` here, and the workflow's one fit rule (rules/features.smk) runs it.  Kept
free of heavy imports: the workflow reads it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass


#: what a fit can read (``--<kind> PATH...`` of ``python -m emoflow.features.fit``); the
#: plan (:meth:`emoflow.workflow.plan.Plan.fit_inputs`) lists each kind's files
FIT_INPUTS = {
    "manifest": "the videos' manifest (training split: labels, speakers); none when no dataset labels are read",
    "transcripts": "every shard's transcripts",
    "audio": "every shard's audio index and wav folder, as pairs",
    "crops": "every shard's sheet, face videos, crops, faces (when it learns from the run's own faces)",
    "images": "an image set it trains on (FER2013 parquet or a folder)",
    "init": "a user checkpoint it starts from",
    "votes": "FER+ annotator votes (label-distribution targets)",
    "trunk": "a frame CNN fit (JSON, weights beside it) it builds on",
    "data": "FER2013 faces and triplets",
}


@dataclass(frozen=True)
class Fit:
    """How a fitted extractor's model is made (rule ``fit_<extractor>``)."""

    module: str  # emoflow module with fit_stage(job: emoflow.features.fit.FitJob)
    inputs: tuple[str, ...]  # kinds of FIT_INPUTS it reads
    weights: str | None = None  # suffix of the weights file written beside the JSON
    threads: int = 2
    cache: bool = False  # reads no run data: shared between workflows (Snakemake's output cache)


@dataclass(frozen=True)
class Entry:
    module: str  # emoflow module holding the class
    cls: str
    input: str  # audio | transcripts | crops | frames (see emoflow.features.base)
    env: str  # envs/<env>.yaml
    gpu: bool = False  # can use a GPU
    fit: Fit | None = None  # needs a fitted model (a corpus-level rule, fit_<extractor>)

    @property
    def fitted(self) -> bool:
        return self.fit is not None


REGISTRY: dict[str, Entry] = {
    "opensmile": Entry("emoflow.features.opensmile_sets", "OpenSmile", "audio", "audio"),
    "mfcc": Entry("emoflow.features.spectral", "MFCC", "audio", "audio"),
    "logmel": Entry("emoflow.features.spectral", "LogMel", "audio", "audio"),
    "sentence_embedding": Entry("emoflow.features.text", "SentenceEmbedding", "transcripts", "text", gpu=True),
    "tfidf": Entry(
        "emoflow.features.tfidf",
        "TfIdf",
        "transcripts",
        "text",
        fit=Fit("emoflow.features.tfidf", ("manifest", "transcripts"), threads=1),
    ),
    "audio_cnn": Entry(
        "emoflow.features.audio_cnn",
        "AudioCNN",
        "audio",
        "audio",
        gpu=True,
        fit=Fit("emoflow.features.audio_cnn", ("manifest", "audio"), ".keras"),
    ),
    # visual: aligned main-face crops (emoflow.faces)
    "hog": Entry("emoflow.features.hog", "HOG", "crops", "face"),
    "lbp": Entry("emoflow.features.lbp", "LBP", "crops", "face"),
    "hog_lbp": Entry("emoflow.features.hog_lbp", "HOGLBP", "crops", "face"),
    "dsift": Entry("emoflow.features.dsift", "DenseSIFT", "crops", "face"),
    "lbp_top": Entry("emoflow.features.lbp_top", "LBPTOP", "crops", "face"),
    "geometry": Entry("emoflow.features.geometry", "Geometry", "crops", "face"),
    "frame_cnn": Entry(
        "emoflow.features.frame_cnn",
        "FrameCNN",
        "crops",
        "visual-torch",
        gpu=True,
        # FER2013 (or an image folder): no run data unless train.source is crops
        fit=Fit("emoflow.features.frame_cnn", ("manifest", "crops", "images", "init", "votes"), ".pt", cache=True),
    ),
    "fer_scores": Entry("emoflow.features.fer_scores", "FERScores", "crops", "visual-tf", gpu=True),
    "c3d": Entry(
        "emoflow.features.c3d",
        "C3D",
        "crops",
        "visual-torch",
        gpu=True,
        fit=Fit("emoflow.features.c3d", ("manifest", "crops", "init"), ".pt"),
    ),
    # the 16-d expression-similarity embedding (emoflow.similarity), trained on face triplets
    "expression_embedding": Entry(
        "emoflow.similarity.extractor",
        "ExpressionEmbedding",
        "crops",
        "visual-torch",
        gpu=True,
        fit=Fit("emoflow.similarity.fit", ("trunk", "data"), ".pt", cache=True),
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
