"""Apply a bundle's fitted encoders, classifiers and fusion to freshly extracted features.

Each step calls what the workflow's stage calls: the encoder's ``transform`` into float32
video vectors (``emoflow.encode.stage``), :meth:`emoflow.classify.experiment.Experiment.predict_proba` (as ``emoflow.classify.stage``: a
missing feature gets the training prior; a speaker-normalised experiment goes through
:func:`emoflow.classify.speaker_norm.apply` first) and :func:`emoflow.fusion.choose.apply` (``emoflow.fusion.stage``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from emoflow.classify.experiment import Experiment
from emoflow.features.read import read
from emoflow.fusion.choose import apply as fuse_choice
from emoflow.predict.bundle import Bundle, used_experiments


@dataclass
class Scores:
    ids: list[str]
    experiments: dict[str, np.ndarray]  # name -> (n, C) probabilities
    present: dict[str, np.ndarray]  # name -> (n,) bool: the feature was there
    fused: np.ndarray  # (n, C)
    population_norm: np.ndarray = field(
        default=None
    )  # (n,) bool: a speaker-normalised experiment used population statistics
    branches: dict = field(default_factory=dict)  # e2e name -> {modality: (n,) bool}: the branches it read per video

    def modalities_used(self, bundle: Bundle) -> list[list[str]]:
        """Per video, the modalities of the experiments that predicted it (feature present)."""
        out = []
        for i in range(len(self.ids)):
            mods = {
                bundle.experiments[n]["modality"] for n, p in self.present.items() if p[i] and n not in self.branches
            }
            mods |= {m for b in self.branches.values() for m, p in b.items() if p[i]}  # e2e: the branches it had
            out.append(sorted(mods))
        return out


def prior_probs(experiment: dict, n: int) -> np.ndarray:
    """(n, C): an experiment's training prior, what it says for a video it cannot see."""
    return np.tile(np.asarray(experiment["prior"], float), (n, 1))


def experiment_probs(
    bundle: Bundle, name: str, tables: dict[str, list[str]], ids: list[str], speakers=None, reference=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities (n, C), present (n,), population statistics used (n,)) of one experiment
    for videos ``ids``; ``tables``: feature name -> its tables.  ``speakers`` (n,): speaker of
    each video (default: each video its own); ``reference`` (n,) bool: the videos whose features
    make a speaker's statistics (default all)."""
    e = bundle.experiments[name]
    if e.get("model_format") == "e2e":
        return e2e_probs(bundle, name, tables, ids)
    fs = read(list(tables[e["feature"]]))
    population = np.zeros(len(ids), bool)
    exp = Experiment(bundle.classes, e["classifier"], *bundle.load_classifier(name), np.asarray(e["prior"], float))
    if exp.sequence:
        have = np.array([v in fs.sequences for v in ids], bool)
        seqs = [fs.sequences[ids[i]] for i in np.flatnonzero(have)]
        return exp.predict_proba(len(ids), have, sequences=seqs), have, population
    if e.get("encoding"):
        enc = bundle.load_encoder(name)
        X = np.zeros((len(ids), enc.dim(fs.dim)), np.float32)
        have = np.array([v in fs.sequences for v in ids], bool)
        for i in np.flatnonzero(have):
            X[i] = enc.transform(fs.sequences[ids[i]])
    else:
        X, missing = fs.matrix(ids)
        have = ~missing
    if have.any() and e.get("normalize", "none") == "speaker":
        from emoflow.classify import speaker_norm

        state = json.loads(bundle.path(e["report"]).read_text())["normalize"]
        spk = np.asarray(ids if speakers is None else speakers, object)
        ref = np.ones(len(ids), bool) if reference is None else np.asarray(reference, bool)
        X[have], own = speaker_norm.apply(X[have], np.asarray(ids, object)[have], spk[have], state, ref[have])
        population[have] = ~own
    return exp.predict_proba(len(ids), have, X=X[have]), have, population


def e2e_probs(
    bundle: Bundle,
    name: str,
    tables: dict[str, list[str]],
    ids: list[str],
    modalities: set[str] | None = None,
    branches: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`experiment_probs` of an end-to-end network (:mod:`emoflow.e2e`): its ensemble's
    probabilities averaged over the face transforms it was fitted with, from the audio
    feature's tables and the face feature's (or its transform cache's); a clip with neither
    gets the training prior.  ``tables`` is keyed by the experiment's ``features`` names (a
    bundle's) or, without them, by the table names its model file records (a run's).
    ``modalities``: only these branches are read (the others count as absent, which the
    network was trained for by modality dropout); ``branches``: filled with each branch's
    presence per video."""
    from emoflow.e2e import data as e2e_data
    from emoflow.e2e.fit import predict_proba as e2e_predict

    e = bundle.experiments[name]
    _, (members, meta) = bundle.load_classifier(name)
    names = e.get("features") or meta["features"]
    face_key = names.get("tta") or names.get("face")
    if modalities is not None and "face" not in modalities:
        face_key = None
    use_audio = names.get("audio") and (modalities is None or "audio" in modalities)
    data = e2e_data.load(
        list(tables[names["audio"]]) if use_audio else None,
        list(tables[face_key]) if face_key else None,
        face_cached=bool(face_key and names.get("tta")),
    )
    dims = {"audio": members[0].dims.get("audio", 0), "face": members[0].dims.get("face", 0)}
    data.audio_dim, data.face_dim = dims["audio"], dims["face"]  # an unread branch: present nowhere
    have = np.zeros(len(ids), bool)
    for k, p in data.present(ids).items():
        have |= p
        if branches is not None:
            branches[k] = p
    probs = prior_probs(e, len(ids))
    idx = np.flatnonzero(have)
    if len(idx):
        probs[idx] = e2e_predict(members, data, [ids[i] for i in idx], meta["tta"])
    return probs, have, np.zeros(len(ids), bool)


def score(
    bundle: Bundle,
    tables: dict[str, list[str]],
    ids: list[str],
    modalities: set[str] | None = None,
    speakers=None,
    reference=None,
) -> Scores:
    """Every used experiment's probabilities and their fusion, for videos ``ids``;
    ``modalities`` (e.g. {"face"}): the other modalities' experiments count as absent, so the
    fusion renormalises over these alone (as for a clip without audio); ``speakers`` and
    ``reference``: see :func:`experiment_probs`."""
    choice = bundle.fusion_choice()
    probs, present = {}, {}
    population = np.zeros(len(ids), bool)
    branches = {}
    for name in used_experiments(choice):
        if bundle.experiments[name].get("model_format") == "e2e":  # one network over several modalities
            branches[name] = {}
            probs[name], present[name], _ = e2e_probs(bundle, name, tables, ids, modalities, branches[name])
            continue
        probs[name], present[name], pop = experiment_probs(bundle, name, tables, ids, speakers, reference)
        if modalities is not None and bundle.experiments[name]["modality"] not in modalities:
            # absent, as for a missing feature: no row, and the training prior in its place
            # (what a stacking fusion reads; weighted methods renormalise over the rest)
            present[name] = np.zeros_like(present[name])
            probs[name] = prior_probs(bundle.experiments[name], len(ids))
        population |= pop & present[name]
    fused = fuse_choice(choice, probs, present)
    return Scores(ids, probs, present, fused, population, branches)
