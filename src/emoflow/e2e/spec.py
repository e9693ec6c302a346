"""The ``e2e`` config entry (``e2e.<name>`` in the config): its defaults and the facts the
workflow and the predictor derive from it (features read, modality, TTA table).

Every key and its meaning::

    audio: logmel          # a frame-level audio feature (features.<name>), or null: no audio branch
    face: frame_cnn        # a frame-level face feature, or null: no face branch
    tta: [...]             # face transforms averaged at inference (names of augment.TRANSFORMS);
                           # null or []: no TTA (the plain face feature table is read)
    train_transforms: true # with tta: each training clip sees one random cached transform
    pooling: attention     # attention (BiLSTM + attention) | mean | a classify.sequence head
                           # (lstm, gru, netvlad, netrvlad, softdbow, netfv)
    hidden: 64             # LSTM width per direction (and projection width)
    audio_stride: 4        # the audio branch's 1-D conv front end downsamples time by this (1, 2 or 4)
    fused_hidden: 64       # width of the fused head's hidden layer
    dropout: 0.3
    aux_weight: 2.0        # loss = CE(fused) + aux_weight * mean(CE(audio), CE(face))
    label_smoothing: 0.1
    mixup: 1.0             # Beta(alpha, alpha) of mixup over all modalities (0: off)
    mixup_prob: 0.5        # share of batches mixed up
    cutmix: 0.5            # share of (the other) batches whose face sequences get CutMix (0: off)
    specaugment: {time_masks: 2, time_width: 0.1, freq_masks: 2, freq_width: 8}   # null: off
    frame_dropout: 0.1     # share of frames dropped per training clip
    modality_dropout: 0.2  # chance a training clip with both modalities loses one (a branch zeroed)
    epochs: 30, patience: 8, batch_size: 32, lr: 0.001, weight_decay: 0.0001
    max_audio_len: 400, max_face_len: 32     # frames per clip (random window at training)
    seeds: [0, 1, 2]       # the ensemble: one model per seed, probabilities averaged
    holdout: 0.2           # share of the training speakers held out to choose the epoch
    refit: true            # refit on all training rows for the chosen number of epochs
    device: auto
"""

from __future__ import annotations

import copy

from emoflow.e2e.augment import SEED_TRANSFORMS, TRANSFORMS

DEFAULTS: dict = {
    "audio": "logmel",
    "face": "frame_cnn",
    "tta": list(SEED_TRANSFORMS),
    "train_transforms": True,
    "pooling": "attention",
    "hidden": 64,
    "audio_stride": 4,
    "fused_hidden": 64,
    "dropout": 0.3,
    "aux_weight": 2.0,
    "label_smoothing": 0.1,
    "mixup": 1.0,
    "mixup_prob": 0.5,
    "cutmix": 0.5,
    "specaugment": {"time_masks": 2, "time_width": 0.1, "freq_masks": 2, "freq_width": 8},
    "frame_dropout": 0.1,
    "modality_dropout": 0.2,
    "epochs": 30,
    "patience": 8,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "max_audio_len": 400,
    "max_face_len": 32,
    "seeds": [0, 1, 2],
    "holdout": 0.2,
    "refit": True,
    "device": "auto",
}

POOLINGS = ("attention", "mean", "lstm", "gru", "netvlad", "netrvlad", "softdbow", "netfv")


def resolve(entry: dict | None) -> dict:
    """The entry with every default filled in (and checked)."""
    entry = dict(entry or {})
    entry.pop("kind", None)
    unknown = sorted(set(entry) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"e2e: unknown key(s) {unknown} (accepted: {sorted(DEFAULTS)})")
    s = {**copy.deepcopy(DEFAULTS), **entry}
    if s["specaugment"] is not None:
        s["specaugment"] = {**DEFAULTS["specaugment"], **s["specaugment"]}
    if not s["audio"] and not s["face"]:
        raise ValueError("e2e: needs an audio or a face branch (both are null)")
    if s["pooling"] not in POOLINGS:
        raise ValueError(f"e2e: pooling {s['pooling']!r} is not one of {', '.join(POOLINGS)}")
    s["tta"] = list(s["tta"] or [])
    bad = [t for t in s["tta"] if t not in TRANSFORMS]
    if bad:
        raise ValueError(f"e2e: unknown face transform(s) {bad} (known: {', '.join(TRANSFORMS)})")
    if not s["face"]:
        s["tta"] = []
    if not s["seeds"]:
        raise ValueError("e2e: seeds is empty")
    if int(s["audio_stride"]) not in (1, 2, 4):
        raise ValueError("e2e: audio_stride must be 1, 2 or 4")
    return s


def modality(s: dict) -> str:
    """``audio+face``, ``audio`` or ``face`` (what fusion groups and the report see)."""
    return "+".join(m for m, f in (("audio", s["audio"]), ("face", s["face"])) if f)


def uses_tta(s: dict) -> bool:
    """The face branch reads the transform cache (TTA at inference and/or transforms at training)."""
    return bool(s["face"]) and bool(s["tta"])


def tta_table(face_table: str) -> str:
    """Name of the transform cache of a face feature table (``e2e/tta/<name>/`` in a run)."""
    return f"{face_table}_tta"
