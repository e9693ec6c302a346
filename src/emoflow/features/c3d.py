"""C3D clip embeddings: a compact 3-D CNN (:mod:`emoflow.nets.c3d`, PyTorch) trained on the
training split's face clips, applied to 16-frame windows of a video's aligned face crops.

Input: the aligned colour crop (``clip.color``) converted to grey (the paired_av faces are
grey; grey also keeps the network small enough to train on a CPU), its central ``crop``
fraction (centred at ``center_y`` of the height) resized to ``size`` x ``size`` (default
48), pixels scaled to ``(x / 255 - 0.5) * 2``.  Clips: windows of ``frames`` crops, one every
``stride`` crops, plus one ending at the last crop; a video with fewer crops than ``frames``
(the face stage samples 5 fps, so 3-5 s clips have 15-25 crops) gives one window that
stretches them in order, each crop repeated about ``frames / n`` times.  Missing frames
(no face) are skipped, so a window spans consecutive crops, not consecutive video frames.

``fit`` (the workflow's ``fit_c3d`` rule) trains on the train split: each epoch one random
window per video, random horizontal flip, shift by up to ``jitter`` pixels (edge padded) and
brightness/contrast jitter, the same for all frames of a clip; AdamW (``lr``,
``weight_decay``, ``batch_size`` clips a step) with a one-cycle schedule (15 % warm-up, cosine
decay over ``epochs``), label smoothing 0.1; the kept epoch is the one with the best video
accuracy on held-out *training* speakers (a seeded ``holdout`` fraction of them,
:mod:`emoflow.dataset.holdout`; clip probabilities averaged per video, windows every ``stride``
crops), stopping after ``patience`` epochs without a gain.  The val and test splits are never
read: they belong to fusion and the report.  Seeded by ``seed``: the same
inputs give the same weights on the same device.  It writes the weights (``.pt`` state dict) and, at the given path, JSON
metadata: architecture, input framing, classes, best epoch, held-out accuracy, chance levels,
training time and the per-epoch history.  ``init`` names a checkpoint to start from: a
``.pt`` state dict of this network, or the ``.json`` of an earlier fit (its ``.pt`` beside
it); tensors whose shapes differ (e.g. another label space's class layer) stay as
initialised.  ``init`` with ``epochs: 0`` just loads it (the held-out accuracy is still measured).

On paired_av (719 train videos, FER2013 faces: the clips are still images drifting slowly)
the defaults train in about 14 min on one CPU thread (40 epochs, ~20 s each); with the epoch
chosen on the val split (before held-out training speakers) the best epoch was 33, val video
accuracy 0.445, test 0.405 (7 classes: chance 0.143, majority class 0.155).

The ``c3d`` extractor (clip level) writes the ``emb_dim`` (256) embedding of every window
(the embedding layer's output before its ReLU, see :mod:`emoflow.nets.c3d`),
with the window's first crop's time and frame index.  Its architecture and framing come from
the fit's metadata (``model``, added by the workflow); ``init`` is only read by ``fit``.
``stride`` and ``batch_size`` are also used at extraction; ``device`` (``auto``: the GPU when
there is one) for both.  Architecture: ``channels`` (one 3x3x3 conv block each), ``emb_dim``,
``dropout`` before the class layer, ``frames`` and ``size`` of the input clips.

    python -m emoflow.features.fit c3d OUT.json --manifest MANIFEST --crops SHEET VIDEOS CROPS FACES [...]
        --init [CHECKPOINT] --config JSON --classes JSON --threads N     (rule fit_c3d; fit_stage below)
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np

from emoflow.data_root import data_path
from emoflow.dataset.holdout import fit_roles
from emoflow.features.base import Extractor, Output
from emoflow.nets import loop
from emoflow.nets.common import batches, load_matching, pick_device, setup_torch

ARCH_KEYS = ("frames", "size", "crop", "center_y", "channels", "emb_dim", "dropout")
TRAIN_KEYS = ("epochs", "patience", "batch_size", "lr", "weight_decay", "jitter", "stride", "seed", "init", "holdout")
NORMALISATION = "(x / 255 - 0.5) * 2"


def faces(clip, crop: float, center_y: float, size: int) -> np.ndarray:
    """(n, size, size) uint8: the grey central ``crop`` of each aligned colour crop, resized."""
    from PIL import Image

    s = clip.color.shape[1]
    k = max(1, int(round(crop * s)))
    x0 = (s - k) // 2
    y0 = int(round(min(max(center_y * s - k / 2, 0), s - k)))
    box = (x0, y0, x0 + k, y0 + k)
    return np.stack(
        [np.asarray(Image.fromarray(c).convert("L").resize((size, size), Image.BILINEAR, box=box)) for c in clip.color]
    )


def windows(n: int, frames: int, stride: int) -> list[np.ndarray]:
    """Crop indices of each clip: every ``stride``-th window of ``frames`` crops (and the
    last one); a short video gives one window of its crops stretched in order."""
    if n <= frames:
        return [np.arange(frames) * n // frames]
    starts = list(range(0, n - frames + 1, max(1, stride)))
    if starts[-1] != n - frames:
        starts.append(n - frames)
    return [np.arange(s, s + frames) for s in starts]


def normalise(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0 - 0.5) * 2.0


def augment(clips: np.ndarray, rng: np.random.Generator, jitter: int) -> np.ndarray:
    """(b, t, s, s) uint8 -> float32 normalised, each clip flipped/shifted/lit at random."""
    b, _, s, _ = clips.shape
    out = np.empty(clips.shape, np.float32)
    padded = np.pad(clips, ((0, 0), (0, 0), (jitter, jitter), (jitter, jitter)), mode="edge") if jitter else clips
    for i in range(b):
        dy, dx = rng.integers(0, 2 * jitter + 1, 2) if jitter else (0, 0)
        c = normalise(padded[i, :, dy : dy + s, dx : dx + s])
        if rng.random() < 0.5:
            c = c[:, :, ::-1]
        out[i] = c * rng.uniform(0.8, 1.2) + rng.uniform(-0.2, 0.2)
    return out


def build(n_classes: int, arch: dict):
    from emoflow.nets.c3d import C3D as Net

    return Net(
        n_classes,
        frames=arch["frames"],
        size=arch["size"],
        channels=tuple(arch["channels"]),
        emb_dim=arch["emb_dim"],
        dropout=arch["dropout"],
    )


def _predict(net, clips: np.ndarray, device, batch_size: int, what: str = "probs") -> np.ndarray:
    """Class probabilities (``probs``) or embeddings (``embed``) of (n, t, s, s) uint8 clips."""
    import torch

    out = []
    with torch.no_grad():
        for sl in batches(len(clips), batch_size):
            x = torch.from_numpy(normalise(clips[sl])[:, None]).to(device)
            y = net.embed(x) if what == "embed" else torch.softmax(net(x), dim=1)
            out.append(y.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def video_accuracy(
    net, videos: list[tuple[np.ndarray, int]], frames: int, stride: int, device, batch_size: int
) -> float:
    """Accuracy of the per-video mean of clip probabilities."""
    clips, owner = [], []
    for v, (x, _) in enumerate(videos):
        for idx in windows(len(x), frames, stride):
            clips.append(x[idx])
            owner.append(v)
    probs = _predict(net, np.stack(clips), device, batch_size)
    owner = np.array(owner)
    pred = [np.argmax(probs[owner == v].mean(axis=0)) for v in range(len(videos))]
    return float(np.mean([p == y for p, (_, y) in zip(pred, videos)]))


def _fmt(acc: float | None) -> str:
    return "-" if acc is None else f"{acc:.3f}"


def fit(
    train: list[tuple[np.ndarray, int]],
    val: list[tuple[np.ndarray, int]],
    n_classes: int,
    params: dict,
    threads: int = 1,
    log=print,
) -> tuple[object, dict]:
    """Train on ``train`` videos ((n, size, size) uint8 faces, class index); keep the epoch with
    the best val video accuracy.  Returns (network on the CPU, in eval mode; metadata)."""
    import torch

    p = params
    setup_torch(threads, p["seed"])
    was_deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(p["seed"])
    device = pick_device(p["device"])
    net = build(n_classes, p)
    if p["init"]:
        load_matching(net, p["init"], log)
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    n_steps = max(1, p["epochs"] * -(-len(train) // p["batch_size"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p["lr"], total_steps=n_steps, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    labels = np.array([y for _, y in train])
    t0 = time.perf_counter()

    def evaluate() -> float | None:
        net.eval()
        return video_accuracy(net, val, p["frames"], p["stride"], device, p["batch_size"]) if val else None

    start_acc = evaluate()
    log(f"epoch 0 (start): val(video) {_fmt(start_acc)}")
    totals = {}

    def steps(epoch: int):
        order = rng.permutation(len(train))
        totals.update(loss=0.0, correct=0)
        for sl in batches(len(order), p["batch_size"]):
            vids = order[sl]
            if len(vids) < 2:  # batch norm needs more than one clip
                continue
            clips = []
            for v in vids:
                x = train[v][0]
                w = windows(len(x), p["frames"], 1)
                clips.append(x[w[rng.integers(len(w))]])
            xb = torch.from_numpy(augment(np.stack(clips), rng, p["jitter"])[:, None]).to(device)
            yb = torch.from_numpy(labels[vids]).to(device)
            logits = net(xb)
            loss = loss_fn(logits, yb)
            totals["loss"] += loss.item() * len(vids)
            totals["correct"] += int((logits.argmax(1) == yb).sum())
            yield loss

    def end_epoch(epoch: int):
        acc = evaluate()
        h = {
            "epoch": epoch,
            "loss": totals["loss"] / len(train),
            "train_clip_acc": totals["correct"] / len(train),
            "val_video_acc": acc,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log(
            f"epoch {epoch}/{p['epochs']}: loss {h['loss']:.3f} train(clip) {h['train_clip_acc']:.3f} "
            f"val(video) {_fmt(acc)} ({h['seconds']} s)"
        )
        return h, acc

    def better(acc, progress) -> bool:  # a fresh network's epoch 0 is no candidate
        return acc > progress.best_key or progress.best_epoch == 0 and not p["init"]

    start = loop.Progress(best_key=start_acc, best_state=copy.deepcopy(net.state_dict()))
    progress = loop.run_epochs(
        net,
        opt,
        p["epochs"],
        steps,
        end_epoch,
        sched=sched,
        better=better,
        patience=p["patience"],
        progress=start,
        log=log,
    )
    history = progress.history
    best = history[progress.best_epoch - 1] if progress.best_epoch else {"epoch": 0, "val_video_acc": start_acc}
    net.cpu().eval()
    torch.use_deterministic_algorithms(was_deterministic[0], warn_only=was_deterministic[1])
    val_y = np.array([y for _, y in val]) if val else np.zeros(0, int)
    meta = {
        "arch": {k: p[k] for k in ARCH_KEYS} | {"in_channels": 1, "n_classes": n_classes},
        "input": {
            "source": "clip.color -> grey",
            "crop": p["crop"],
            "center_y": p["center_y"],
            "size": p["size"],
            "normalisation": NORMALISATION,
        },
        "best_epoch": best["epoch"],
        "holdout_video_accuracy": best["val_video_acc"],
        "chance": 1.0 / n_classes,
        "chance_majority": float(np.bincount(val_y, minlength=n_classes).max() / len(val_y)) if len(val_y) else None,
        "train_videos": len(train),
        "holdout_videos": len(val),
        "epochs_chosen_on": "held-out training speakers",
        "train_seconds": round(time.perf_counter() - t0, 1),
        "device": str(device),
        "params": {k: p[k] for k in TRAIN_KEYS},
        "history": history,
    }
    return net, meta


def save(net, meta: dict, out: str) -> None:
    """Weights to ``out`` with suffix .pt, metadata (JSON) to ``out``."""
    import torch

    from emoflow.storage import atomic_path, write_text

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(out).with_suffix(".pt"), suffix=".pt") as tmp:
        torch.save(net.state_dict(), tmp)
    write_text(out, json.dumps(meta, indent=1) + "\n")


class C3D(Extractor):
    defaults = {
        "model": None,
        "init": None,
        "frames": 16,
        "stride": 8,
        "size": 48,
        "crop": 0.7,
        "center_y": 0.55,
        "channels": [16, 32, 64, 128],
        "emb_dim": 256,
        "dropout": 0.3,
        "epochs": 40,
        "patience": 15,
        "batch_size": 16,
        "lr": 2e-3,
        "weight_decay": 1e-3,
        "jitter": 3,
        "seed": 0,
        "device": "auto",
        "holdout": 0.2,
    }
    level = "clip"

    def setup(self) -> None:
        import torch

        setup_torch(self.threads, seed=None)
        meta_path = self.params["model"]
        if not meta_path:
            raise ValueError("c3d needs a trained model (the workflow's fit_c3d rule makes it)")
        self.meta = json.loads(Path(meta_path).read_text())
        self.arch = self.meta["arch"]
        self.device = pick_device(self.params["device"])
        self.net = build(self.arch["n_classes"], self.arch)
        state = torch.load(Path(meta_path).with_suffix(".pt"), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()

    @property
    def dim(self) -> int:
        return int(self.arch["emb_dim"])

    def extract(self, clip) -> Output | None:
        if len(clip) == 0:
            return None
        a = self.arch
        x = faces(clip, a["crop"], a["center_y"], a["size"])
        idx = windows(len(x), a["frames"], self.params["stride"])
        emb = _predict(self.net, np.stack([x[i] for i in idx]), self.device, self.params["batch_size"], "embed")
        starts = np.array([i[0] for i in idx])
        return Output(emb, clip.times[starts], clip.frames[starts])


def _params(config: dict, root: str) -> dict:
    """This extractor's parameters from its config entry, ``{data_root}`` expanded."""
    cfg = dict(config)
    for k in ("extractor", "model"):
        cfg.pop(k, None)
    unknown = set(cfg) - set(C3D.defaults)
    if unknown:
        raise ValueError(f"c3d: unknown parameter(s) {sorted(unknown)} (accepted: {sorted(C3D.defaults)})")
    p = {**C3D.defaults, **cfg}
    p["init"] = data_path(p["init"], root)
    return p


def fit_stage(job) -> None:
    """The workflow's fit (:class:`emoflow.features.fit.FitJob`): the training split's face
    clips (manifest, every shard's crops)."""
    import pandas as pd

    from emoflow.errors import EmoflowError
    from emoflow.faces.read import iter_crops

    log = job.log
    params = _params(job.params, job.data_root)
    classes = job.classes
    crops = job.inputs.get("crops", [])
    if len(crops) % 4 or not crops:
        raise EmoflowError("c3d fit: --crops takes 4 paths per shard (sheet, face videos, crops, faces)")
    man = pd.read_csv(job.one("manifest"), dtype={"video_id": str}, keep_default_na=False).set_index("video_id")
    # training speakers only: a held-out part of them picks the epoch (val/test are never read)
    roles = fit_roles(man, params["holdout"], params["seed"])
    data: dict[str, list] = {"fit": [], "holdout": []}
    no_face = 0
    groups = [crops[i : i + 4] for i in range(0, len(crops), 4)]
    t0 = time.perf_counter()
    for group in groups:
        for item in iter_crops(*group):
            if item.video_id not in roles.index:
                continue
            if item.data is None:
                no_face += 1
                continue
            label = man.loc[item.video_id, "label"]
            if label not in classes:
                continue
            x = faces(item.data, params["crop"], params["center_y"], params["size"])
            data[roles[item.video_id]].append((x, classes.index(label)))
    log.info(
        "read %d fit and %d held-out training videos with a face from %d shards in %.0f s (%d without a face left out)",
        len(data["fit"]),
        len(data["holdout"]),
        len(groups),
        time.perf_counter() - t0,
        no_face,
    )
    if len(data["fit"]) < 2:
        raise EmoflowError("the C3D network needs training videos with a face")
    if not data["holdout"]:
        log.warning("no held-out training videos with a face: keeping the last epoch")
    net, meta = fit(data["fit"], data["holdout"], len(classes), params, job.threads, log.info)
    meta["classes"] = classes
    meta["no_face_videos"] = no_face
    meta["holdout_speakers"] = int(
        man.loc[roles.index[roles == "holdout"]].get("speaker", pd.Series(dtype=str)).nunique()
    )
    save(net, meta, job.out)
    log.info(
        "best epoch %d: held-out training speakers' video accuracy %s (chance %.3f, majority class %s); %.0f s",
        meta["best_epoch"],
        _fmt(meta["holdout_video_accuracy"]),
        meta["chance"],
        _fmt(meta["chance_majority"]),
        meta["train_seconds"],
    )
