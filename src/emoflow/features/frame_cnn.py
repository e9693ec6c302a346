"""Frame CNN: a 2-D expression CNN trained by the workflow, then its bottleneck features
for every aligned face frame.

``fit`` (rule ``fit_frame_cnn``) trains a VGG- or ResNet-style network
(:mod:`emoflow.nets.frame`) on the image set of the entry's ``train`` block
(:mod:`emoflow.features.face_images`: FER2013, an image folder, or the training split's
own crops), optionally starting from a user checkpoint (``init``; a head of another
class count is re-initialised).  It keeps the best epoch by validation accuracy, resumes
after an interruption (a ``.resume`` folder beside the JSON), and, for FER2013, scores ``public_test``
once at the end (accuracy and UAR, plain and with mirror-image test-time augmentation).
The weights (``.pt``) and a JSON of everything measured are the rule's outputs.

The ``frame_cnn`` extractor loads them once per shard and writes, per frame, the
outputs of the named ``layers`` (default: the bottleneck, ``fc`` for vgg, ``pool`` for
resnet; ``[]`` for none), optionally followed by the class probabilities (``probs``).

Parameters (config entry): ``arch`` (vgg | resnet), ``net`` (widths, ...), ``size``
(input side, grey), ``train`` ({source, path, val_fraction}), ``epochs``, ``training``
(optimiser and augmentation settings, see :data:`emoflow.nets.train.DEFAULTS`), ``init``,
``seed``, ``layers``, ``probs``, ``batch_size``, ``device``, ``framing``.

``training.targets`` (default ``hard``) chooses what the network learns from
(:mod:`emoflow.nets.ldl`): ``hard`` labels, the FER+ ``votes`` distributions, or
``uncertainty``-aware label distributions (settings under ``training.uncertainty``);
the last two need ``train.source: fer2013`` and read ``training.votes`` (default
``{data_root}/ferplus/ferplus_votes.parquet``), mapped to the label space by the config's
``label_maps.ferplus8.<space>`` (the rule passes it).  Only the training changes: the
fitted network is the same kind of ``frame_cnn`` model, for the extractor, experiments,
fusion, the bundle and ``emoflow predict`` alike.  The epoch is still chosen by accuracy on
the held-out part of the training data.

``framing: {crop, center_y}`` (default none: the aligned grey crop as it is) shows the
network the central ``crop`` fraction of the aligned colour crop, centred at ``center_y``
of its height (:func:`emoflow.features.face_images.central_crop`), for a network trained
on more tightly framed faces.  For the FER2013-trained VGG on paired_av, chosen on the
*train* split (video accuracy of the frame-averaged softmax, 4 frames a video): whole crop
0.455, crop 0.8 / 0.7 / 0.6 / 0.55 / 0.5 at centre 0.55: 0.554 / 0.608 / 0.630 / 0.616 /
0.602 (centre 0.5 / 0.6 at crop 0.6: 0.581 / 0.619).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emoflow.data_root import VOTES_DEFAULT
from emoflow.errors import EmoflowError
from emoflow.evaluate import metrics
from emoflow.features.base import Extractor, Output
from emoflow.nets.common import load_matching

DEFAULT_LAYER = {"vgg": "fc", "resnet": "pool"}


class FrameCNN(Extractor):
    defaults = {
        "model": None,
        "arch": "vgg",
        "net": {},
        "size": 48,
        "train": {"source": "crops"},
        "epochs": 30,
        "training": {},
        "init": None,
        "seed": 0,
        "layers": None,
        "probs": False,
        "batch_size": 256,
        "device": "auto",
        "framing": None,
    }
    level = "frame"

    def setup(self) -> None:
        import torch

        from emoflow.nets.common import pick_device, setup_torch
        from emoflow.nets.frame import build

        setup_torch(self.threads, seed=None)
        if not self.params["model"]:
            raise ValueError("frame_cnn needs a trained model (the workflow's fit_frame_cnn rule makes it)")
        meta_path = Path(self.params["model"])
        self.meta = json.loads(meta_path.read_text())
        self.device = pick_device(self.params["device"])
        self.net = build(self.meta["arch"], len(self.meta["classes"]), size=self.meta["size"], **self.meta["net"])
        state = torch.load(meta_path.with_suffix(".pt"), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state["state_dict"])
        self.net.to(self.device).eval()
        layers = self.params["layers"]
        self.layers = [DEFAULT_LAYER[self.meta["arch"]]] if layers is None else list(layers)  # []: probabilities only
        if not self.layers and not self.params["probs"]:
            raise ValueError("frame_cnn: no output (layers is empty and probs is false)")
        unknown = [name for name in self.layers if name not in self.net.dims]
        if unknown:
            raise ValueError(
                f"frame_cnn: unknown layer(s) {unknown} of {self.meta['arch']} (known: {sorted(self.net.dims)})"
            )
        self._dim = sum(self.net.dims[name] for name in self.layers) + (
            len(self.meta["classes"]) if self.params["probs"] else 0
        )

    @property
    def dim(self) -> int:
        return self._dim

    def extract(self, clip) -> Output:
        import torch

        from emoflow.features.face_images import central_crop, resize
        from emoflow.nets.common import batches
        from emoflow.nets.train import to_tensor

        framing = self.params["framing"]
        if framing:  # a network trained on tighter faces (FER2013): frame the aligned crop like them
            grey = resize(central_crop(clip.color, framing["crop"], framing.get("center_y", 0.5)), self.meta["size"])
        else:
            grey = clip.grey if clip.grey.shape[1] == self.meta["size"] else resize(clip.grey, self.meta["size"])
        want = self.layers + (["logits"] if self.params["probs"] else [])
        out = []
        with torch.no_grad():
            for s in batches(len(grey), self.params["batch_size"]):
                f = self.net.features(
                    to_tensor(grey[s], self.meta["mean"], self.meta["std"], self.device), tuple(set(want))
                )
                parts = [f[name] for name in self.layers]
                if self.params["probs"]:
                    parts.append(torch.softmax(f["logits"], 1))
                out.append(torch.cat(parts, 1).float().cpu().numpy())
        return Output(np.concatenate(out), clip.times, clip.frames)


def fit(
    manifest: str,
    out: str,
    crop_inputs: list[str],
    params: dict,
    classes: list[str],
    resume: str | None = None,
    threads: int = 1,
    log=None,
    label_noise: dict | None = None,
    faces_out: str | None = None,
) -> dict:
    """Train per ``params`` (a frame_cnn config entry); write ``out`` (.json) and its .pt.

    ``label_noise`` ``{rate, seed}`` flips that fraction of the training labels (training
    and held-out part alike, :func:`emoflow.robustness.noise.flip_labels`) before training;
    ``faces_out`` (Parquet) keeps, per training face, its row in the FER2013 table, its true and given label,
    whether it was flipped and its learned λ (uncertainty targets; else null)."""
    import time

    import torch

    from emoflow.features import face_images
    from emoflow.nets import train as trainer
    from emoflow.nets.common import pick_device, setup_torch
    from emoflow.nets.frame import build
    from emoflow.storage import atomic_path, write_text

    p = {**FrameCNN.defaults, **params}
    setup_torch(threads, seed=p["seed"])
    t0 = time.time()
    data = face_images.load(
        p["train"] or {}, manifest=manifest, crop_inputs=crop_inputs, classes=classes, size=p["size"], seed=p["seed"]
    )
    log.info("%s: %s images (%d classes)", data.source, data.counts(), len(data.classes))
    true_train_y = data.train_y
    flipped = np.zeros(len(data.train_y), bool)
    if label_noise and float(label_noise.get("rate", 0)):
        from emoflow.robustness.noise import flip_labels

        rate, nseed = float(label_noise["rate"]), int(label_noise.get("seed", 0))
        data.train_y, flipped = flip_labels(data.train_y, rate, len(data.classes), nseed)
        data.val_y, _ = flip_labels(data.val_y, rate, len(data.classes), nseed + 1)
        log.info(
            "label noise: %d of %d training labels flipped (rate %.2f, seed %d)",
            flipped.sum(),
            len(flipped),
            rate,
            nseed,
        )
    device = pick_device(p["device"])
    model = build(p["arch"], len(data.classes), size=p["size"], **p["net"])
    if p["init"]:
        load_matching(model, p["init"], log.info)
    mean, std = float(data.train_x.mean() / 255.0), float(data.train_x.std() / 255.0 + 1e-6)
    tcfg = {**p["training"], "epochs": p["epochs"], "seed": p["seed"]}
    if label_noise:
        tcfg["label_noise"] = {"rate": float(label_noise.get("rate", 0)), "seed": int(label_noise.get("seed", 0))}
    objective = _objective(p, data, model, tcfg, log)
    res = trainer.fit(
        model,
        data.train_x,
        data.train_y,
        data.val_x,
        data.val_y,
        tcfg,
        device,
        mean,
        std,
        resume,
        data.val_groups,
        objective=objective,
    )
    log.info("best epoch %d: validation accuracy %.4f (%.0f s)", res.best_epoch, res.best_val_acc, res.seconds)
    meta = {
        "arch": p["arch"],
        "net": p["net"],
        "size": p["size"],
        "classes": data.classes,
        "mean": mean,
        "std": std,
        "source": data.source,
        "counts": data.counts(),
        "best_epoch": res.best_epoch,
        "val_accuracy": res.best_val_acc,
        "val_scored_per": "video" if data.val_groups is not None else "image",
        "chance": 1.0 / len(data.classes),
        "epochs": p["epochs"],
        "resumed_from_epoch": res.resumed_from,
        "train_seconds": round(res.seconds, 1),
        "history": res.history,
        "training": {**trainer.DEFAULTS, **tcfg},
        "device": str(device),
        "threads": threads,
        "targets": tcfg.get("targets", "hard"),
    }
    if faces_out:
        _write_faces(faces_out, data, true_train_y, flipped, objective)
    if data.test_x is not None and len(data.test_x):
        for tta in (False, True):
            probs = trainer.predict(model, data.test_x, mean, std, device, flip_tta=tta)
            pred = probs.argmax(1)
            key = "test_flip_tta" if tta else "test"
            sc = metrics.scores(data.test_y, pred, len(data.classes))
            meta[key] = {"accuracy": sc["accuracy"], "uar": sc["uar"], "n": sc["n"]}
            log.info(
                "%s: accuracy %.4f, UAR %.4f on %d images",
                key,
                meta[key]["accuracy"],
                meta[key]["uar"],
                len(data.test_y),
            )
    meta["total_seconds"] = round(time.time() - t0, 1)
    outp = Path(out)
    with atomic_path(outp.with_suffix(".pt"), suffix=".pt") as tmp:
        torch.save({"state_dict": model.state_dict()}, tmp)
    write_text(outp, json.dumps(meta, indent=1) + "\n")
    return meta


def _objective(p: dict, data, model, tcfg: dict, log):
    """The training objective of ``training.targets`` (None: hard labels, the loop's own)."""
    from emoflow.nets import ldl

    targets = tcfg.get("targets", "hard")
    if targets == "hard":
        return None
    if data.train_rows is None or not (p.get("train") or {}).get("source") == "fer2013":
        raise EmoflowError(
            f"training.targets {targets}: needs train.source fer2013 (the FER+ votes are per FER2013 face)"
        )
    counts = None
    u = {**ldl.UNCERTAINTY_DEFAULTS, **(tcfg.get("uncertainty") or {})}
    if targets == "votes" or u["aux"] == "va":
        if targets == "votes" and not tcfg.get("label_map"):
            raise EmoflowError("training.targets votes: no FER+ -> label space map (label_maps.ferplus8.<space>)")
        counts, _ = ldl.read_votes(tcfg.get("votes") or VOTES_DEFAULT, p["train"]["path"])
        counts = counts[data.train_rows]
    aux_features = None
    if targets == "uncertainty" and u["aux"] == "features":
        if not u["aux_model"]:
            raise EmoflowError("training.uncertainty.aux features: set uncertainty.aux_model (a fitted frame_cnn JSON)")
        aux_features = _frozen_features(u["aux_model"], data.train_x)
    layer = DEFAULT_LAYER[p["arch"]]
    return ldl.build_objective(
        targets,
        labels=data.train_y,
        classes=data.classes,
        counts=counts,
        layer=layer,
        feat_dim=model.dims[layer],
        batch_size=int(tcfg.get("batch_size") or 128),
        cfg=tcfg,
        aux_features=aux_features,
        log=log.info,
    )


def load_fitted(meta_path: str, what: str = "frame CNN fit"):
    """(network on the CPU, its metadata) of a fitted frame CNN: its JSON and the ``.pt``
    beside it (tensors only)."""
    import torch

    from emoflow.nets.frame import build

    mp = Path(meta_path)
    if not mp.is_file():
        raise EmoflowError(f"{meta_path}: {what} not found")
    meta = json.loads(mp.read_text())
    net = build(meta["arch"], len(meta["classes"]), size=meta["size"], **meta["net"])
    net.load_state_dict(torch.load(mp.with_suffix(".pt"), map_location="cpu", weights_only=True)["state_dict"])
    return net, meta


def _frozen_features(meta_path: str, images: np.ndarray) -> np.ndarray:
    """Bottleneck features of ``images`` under an already fitted frame CNN (its JSON)."""
    import torch

    from emoflow.nets.common import batches
    from emoflow.nets.train import to_tensor

    net, meta = load_fitted(meta_path, "frame CNN fit (uncertainty.aux_model)")
    net.eval()
    layer = DEFAULT_LAYER[meta["arch"]]
    out = []
    with torch.no_grad():
        for s in batches(len(images), 512):
            out.append(
                net.features(to_tensor(images[s], meta["mean"], meta["std"], torch.device("cpu")), (layer,))[
                    layer
                ].numpy()
            )
    return np.concatenate(out)


def _write_faces(path: str, data, true_y: np.ndarray, flipped: np.ndarray, objective) -> None:
    import pyarrow as pa

    from emoflow.storage import write_table

    lam = None
    if hasattr(objective, "lam"):  # learned λ; null for faces without neighbours (their λ is fixed at 1)
        lam = [float(v) if h else None for v, h in zip(objective.lam(), objective.has.cpu().numpy())]
    rows = data.train_rows if data.train_rows is not None else np.arange(len(true_y))
    table = pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "label": pa.array(true_y, pa.int64()),
            "given": pa.array(data.train_y, pa.int64()),
            "flipped": pa.array(flipped, pa.bool_()),
            "lam": pa.array(lam if lam is not None else [None] * len(true_y), pa.float32()),
        }
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_table(table, path)


def fit_stage(job) -> None:
    """The workflow's fit (:class:`emoflow.features.fit.FitJob`): manifest and crops when it
    learns from the run's own faces, the image set, init checkpoint and votes it names."""
    params = dict(job.params)
    params.pop("extractor", None)
    for key in ("init",):
        if params.get(key):
            params[key] = job.resolve(params[key])
    training = params.get("training") or {}
    if training.get("targets", "hard") != "hard":
        training = {**training, "votes": job.resolve(training.get("votes") or VOTES_DEFAULT)}
        u = training.get("uncertainty") or {}
        if u.get("aux_model"):
            training["uncertainty"] = {**u, "aux_model": job.resolve(u["aux_model"])}
        params["training"] = training
    if (params.get("train") or {}).get("path"):
        params["train"] = {**params["train"], "path": job.resolve(params["train"]["path"])}
    resume = str(Path(job.out).with_suffix(".resume"))  # per-epoch checkpoint, removed when done
    fit(job.one("manifest"), job.out, job.inputs.get("crops", []), params, job.classes, resume, job.threads, job.log)
