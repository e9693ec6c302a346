"""A VGGish-style audio CNN in TensorFlow/Keras: ~1 s log-mel patches (96 frames x 64
mel bands, 0.48 s hop) -> three conv blocks -> a 128-d embedding -> class softmax.

``fit`` (a corpus-level rule) trains it on the training split's labels, keeps the best
epoch by clip-level accuracy on held-out *training* speakers (a seeded ``holdout``
fraction of them, :mod:`emoflow.dataset.holdout`; segment probabilities averaged per
clip; the val and test splits are never read), and saves the model with its normalisation and scores.  The ``audio_cnn`` extractor then writes
one embedding per segment (segment level, with start times).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emoflow.dataset.holdout import fit_roles
from emoflow.features.base import Extractor, Output
from emoflow.features.spectral import log_mel

PATCH, HOP_PATCH, N_MELS = 96, 48, 64


def patches(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, PATCH, N_MELS) log-mel patches and their start times; short clips are padded."""
    m = log_mel(y, sr, n_mels=N_MELS).T  # frames x mels, 10 ms hop
    if len(m) < PATCH:
        m = np.pad(m, ((0, PATCH - len(m)), (0, 0)), mode="edge")
    starts = np.arange(0, len(m) - PATCH + 1, HOP_PATCH)
    return np.stack([m[s : s + PATCH] for s in starts]).astype(np.float32), starts * 0.01


def _tf():
    from emoflow.tf_import import tensorflow

    return tensorflow()


def set_threads(tf, threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    except RuntimeError:  # TensorFlow already initialised in this process: keep its setting
        pass


def build(n_classes: int, emb_dim: int = 128, seed: int = 0):
    tf = _tf()
    k = tf.keras
    k.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same model (multi-threaded reductions otherwise vary)
    inp = k.Input((PATCH, N_MELS, 1))
    x = inp
    for filters in (32, 64, 128):
        x = k.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = k.layers.BatchNormalization(momentum=0.9)(x)  # few steps an epoch: adapt the running stats fast
        x = k.layers.ReLU()(x)
        x = k.layers.MaxPool2D(2)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    emb = k.layers.Dense(emb_dim, activation="relu", name="embedding")(x)
    out = k.layers.Dense(n_classes, activation="softmax")(k.layers.Dropout(0.3)(emb))
    return k.Model(inp, out)


def _clip_accuracy(model, xs, clip_ids, labels) -> float:
    probs = model.predict(xs[..., None], verbose=0, batch_size=256)
    correct = [np.argmax(probs[clip_ids == c].mean(axis=0)) == labels[c] for c in np.unique(clip_ids)]
    return float(np.mean(correct))


def train(train_x, train_y, train_clip, val_x, val_y, val_clip, n_classes, epochs=30, seed=0, patience=6, log=print):
    """Train; returns (model with the weights of the epoch best on the held-out clips, history)."""
    tf = _tf()
    model = build(n_classes, seed=seed)
    steps = epochs * int(np.ceil(len(train_x) / 64))
    lr = tf.keras.optimizers.schedules.CosineDecay(
        1e-3, steps, alpha=0.05
    )  # settles, so early stopping sees a stable val curve
    model.compile(optimizer=tf.keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seg_y = train_y[train_clip]
    best, best_w, history, waited = -1.0, None, [], 0
    for epoch in range(epochs):
        h = model.fit(train_x[..., None], seg_y, batch_size=64, epochs=1, verbose=0, shuffle=True)
        acc = _clip_accuracy(model, val_x, val_clip, val_y)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(h.history["loss"][0]),
                "train_seg_acc": float(h.history["accuracy"][0]),
                "holdout_clip_acc": acc,
            }
        )
        log(
            f"epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.3f} train {history[-1]['train_seg_acc']:.3f} held-out(clip) {acc:.3f}"
        )
        if acc > best:
            best, best_w, waited = acc, model.get_weights(), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.set_weights(best_w)
    return model, history


class AudioCNN(Extractor):
    defaults = {"model": None, "epochs": 20, "patience": 6, "seed": 0, "holdout": 0.2}
    level = "segment"

    def setup(self) -> None:
        tf = _tf()
        set_threads(tf, self.threads)
        meta_path = self.params["model"]
        if not meta_path:
            raise ValueError("audio_cnn needs a trained model (the workflow's fit_audio_cnn rule makes it)")
        meta = json.loads(Path(meta_path).read_text())
        model = tf.keras.models.load_model(Path(meta_path).with_suffix(".keras"), compile=False, safe_mode=True)
        self.embed = tf.keras.Model(model.input, model.get_layer("embedding").output)
        self.mean, self.std = np.float32(meta["mean"]), np.float32(meta["std"])
        self._dim = int(self.embed.output.shape[-1])

    @property
    def dim(self) -> int:
        return self._dim

    def extract(self, item) -> Output:
        y, sr = item
        x, starts = patches(y, sr)
        emb = self.embed.predict(((x - self.mean) / self.std)[..., None], verbose=0, batch_size=256)
        return Output(emb, starts)


def fit_stage(job) -> None:
    """The workflow's fit (:class:`emoflow.features.fit.FitJob`): manifest, and every shard's
    audio index and wav folder (pairs)."""
    import pandas as pd

    from emoflow.errors import EmoflowError
    from emoflow.media.audio import read_wav
    from emoflow.storage import atomic_path, read_table, write_text

    log, params, classes = job.log, job.params, job.classes
    audio = job.inputs.get("audio", [])
    if not audio or len(audio) % 2:
        raise EmoflowError("audio_cnn fit: --audio takes pairs (audio index, wav folder), one per shard")
    tf = _tf()
    set_threads(tf, job.threads)
    man = pd.read_csv(job.one("manifest"), dtype=str, keep_default_na=False).set_index("video_id")
    # training speakers only: a held-out part of them picks the epoch (val/test are never read)
    roles = fit_roles(man, float(params.get("holdout", 0.2)), int(params.get("seed", 0)))
    data = {"fit": ([], [], []), "holdout": ([], [], [])}
    pairs = list(zip(audio[::2], audio[1::2]))
    for index, wav_dir in pairs:
        for r in read_table(index).to_pylist():
            if r["video_id"] not in roles.index or not r["has_audio"]:
                continue
            x, _ = patches(*read_wav(Path(wav_dir) / r["wav"]))
            xs, ys, clips = data[roles[r["video_id"]]]
            xs.append(x)
            ys.append(classes.index(man.loc[r["video_id"], "label"]))
            clips.append(np.full(len(x), len(ys) - 1))
    if not data["fit"][0] or not data["holdout"][0]:
        raise EmoflowError(
            "the audio CNN needs clips with audio from at least 2 training speakers (one held out to pick the epoch)"
        )
    tr_x, tr_y, tr_c = np.concatenate(data["fit"][0]), np.array(data["fit"][1]), np.concatenate(data["fit"][2])
    ho_x, ho_y, ho_c = (
        np.concatenate(data["holdout"][0]),
        np.array(data["holdout"][1]),
        np.concatenate(data["holdout"][2]),
    )
    mean, std = float(tr_x.mean()), float(tr_x.std() + 1e-6)
    log.info(
        "training on %d clips (%d segments), choosing the epoch on %d clips of held-out training speakers",
        len(tr_y),
        len(tr_x),
        len(ho_y),
    )
    model, history = train(
        (tr_x - mean) / std,
        tr_y,
        tr_c,
        (ho_x - mean) / std,
        ho_y,
        ho_c,
        len(classes),
        epochs=params.get("epochs", 20),
        seed=params.get("seed", 0),
        patience=params.get("patience", 6),
        log=log.info,
    )
    best = max(history, key=lambda h: h["holdout_clip_acc"])
    out = Path(job.out)
    with atomic_path(out.with_suffix(".keras"), suffix=".keras") as tmp:
        model.save(tmp)
    meta = {
        "classes": classes,
        "mean": mean,
        "std": std,
        "holdout_clip_accuracy": best["holdout_clip_acc"],
        "best_epoch": best["epoch"],
        "epochs_chosen_on": "held-out training speakers",
        "chance": 1.0 / len(classes),
        "train_clips": len(tr_y),
        "holdout_clips": len(ho_y),
        "history": history,
    }
    write_text(out, json.dumps(meta, indent=1) + "\n")
    log.info(
        "best epoch %d: held-out clip accuracy %.3f (chance %.3f)",
        best["epoch"],
        best["holdout_clip_acc"],
        1 / len(classes),
    )
