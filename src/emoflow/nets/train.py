"""A resumable classifier training loop for the PyTorch models.

:func:`fit` trains on uint8 image arrays held in memory (N x H x W or N x H x W x C),
augments on the fly (:func:`augment`: flips, small affine jitter, brightness/contrast,
on the batch, on the training device), evaluates the validation part after every epoch,
keeps the best epoch's weights by validation accuracy (:class:`Result`), and writes a
resume checkpoint after every epoch (model, optimiser, schedule, random states, history):
started again with the same resume folder it continues where it stopped, but only when
the checkpoint was made from exactly the same training (:func:`data_digest`: settings,
image and label bytes, validation part, start weights, normalisation and the code of this
loop and of the network); a finished fit deletes it, so a later refit always recomputes.
Checkpoints load with ``weights_only=True`` (tensors and plain data, no code).

Schedule: SGD with Nesterov momentum and a one-cycle learning rate; label smoothing.
On a CPU with bfloat16 support, ``precision: bf16`` runs the forward pass under autocast
(about 2x faster for these small CNNs); ``fp32`` is exact.  The loop takes any module
whose ``forward`` maps a (N, C, H, W) float batch to logits, so later models (triplet
embeddings, label distributions, multimodal nets) can reuse it with another ``loss``.

``objective`` swaps the loss: an object with the methods of :class:`Objective` (e.g. the
label-distribution targets of :mod:`emoflow.nets.ldl`) that may read a named feature layer,
add its own parameters to the optimiser, refresh caches at the start of every epoch, step
optimisers of its own after every batch and carry state across a resume.  Without one the
loss is cross-entropy on the hard labels, exactly as before.  Epochs are chosen on the
validation part's hard labels in both cases.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from emoflow import logs
from emoflow.nets import loop
from emoflow.nets.common import batches, bf16_supported

log = logging.getLogger("emoflow.nets.train")

DEFAULTS = {
    "epochs": 30,
    "batch_size": 128,
    "lr": 0.05,  # one-cycle peak
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "precision": "auto",  # auto (bf16 where the device is fast at it, else fp32) | bf16 | fp32
    "augment": {
        "flip": True,
        "rotate": 10.0,
        "scale": 0.1,
        "shift": 0.08,
        "brightness": 0.2,
        "contrast": 0.2,
        "erase": 0.25,
    },
    "patience": None,  # stop after this many epochs without a better validation accuracy
    "seed": 0,
}


@dataclass
class Result:
    best_epoch: int
    best_val_acc: float
    history: list = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0


def to_unit(images: np.ndarray, device) -> torch.Tensor:
    """uint8 (N, H, W[, C]) -> float (N, C, H, W) in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return x.float() / 255.0


def to_tensor(images: np.ndarray, mean: float, std: float, device) -> torch.Tensor:
    """uint8 (N, H, W[, C]) -> normalised float (N, C, H, W) on ``device``."""
    return (to_unit(images, device) - mean) / std


def augment(x: torch.Tensor, cfg: dict, gen: torch.Generator) -> torch.Tensor:
    """Random flips, affine jitter (rotation in degrees, relative scale and shift),
    brightness/contrast and random erasing (probability) of a batch in [0, 1], drawn
    from ``gen`` (reproducible)."""
    n = x.shape[0]

    def u(lo, hi):
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    if cfg.get("flip"):
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    rot = torch.deg2rad(u(-cfg.get("rotate", 0.0), cfg.get("rotate", 0.0)))
    scale = 1.0 + u(-cfg.get("scale", 0.0), cfg.get("scale", 0.0))
    tx, ty = u(-cfg.get("shift", 0.0), cfg.get("shift", 0.0)) * 2, u(-cfg.get("shift", 0.0), cfg.get("shift", 0.0)) * 2
    if torch.any(rot != 0) or torch.any(scale != 1) or torch.any(tx != 0) or torch.any(ty != 0):
        cos, sin = torch.cos(rot) / scale, torch.sin(rot) / scale
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    b, c = cfg.get("brightness", 0.0), cfg.get("contrast", 0.0)
    if b or c:
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * (1.0 + u(-c, c)).to(x)[:, None, None, None] + mean + u(-b, b).to(x)[:, None, None, None]
    p = cfg.get("erase", 0.0)
    if p:
        h, w = x.shape[2:]
        erase = (torch.rand(n, generator=gen) < p).tolist()
        eh, ew = (u(0.15, 0.4) * h).long().tolist(), (u(0.15, 0.4) * w).long().tolist()
        ys, xs = torch.rand(n, generator=gen).tolist(), torch.rand(n, generator=gen).tolist()
        for i in range(n):
            if erase[i]:
                y0, x0 = int(ys[i] * (h - eh[i])), int(xs[i] * (w - ew[i]))
                x[i, :, y0 : y0 + eh[i], x0 : x0 + ew[i]] = 0.5
    return x.clamp(0.0, 1.0)


class Objective:
    """The interface :func:`fit` calls for a loss other than hard-label cross-entropy.

    ``layer``: a feature layer of the network the loss reads (``None``: logits only).
    ``loss(logits, feats, idx, y)``: the batch loss; ``idx`` are the batch's rows of the
    training arrays (sorted), ``y`` their hard labels (a tensor).
    """

    layer: str | None = None

    def trainable(self) -> list:  # parameters the main optimiser also trains
        return []

    def to(self, device):
        return self

    def begin_epoch(self, model, train_x, mean, std, device, precision, epoch: int = 0) -> None:  # epoch: 0-based
        pass

    def loss(self, logits, feats, idx, y):
        raise NotImplementedError

    def zero_grad(self) -> None:
        pass

    def step(self) -> None:  # after the main optimiser's step
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def digest(self) -> str:  # what the objective trains on (settings, targets, code)
        return ""


def _autocast(device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def predict(
    model,
    images: np.ndarray,
    mean: float,
    std: float,
    device,
    batch_size: int = 256,
    precision: str = "fp32",
    flip_tta: bool = False,
) -> np.ndarray:
    """Class probabilities (N, K) of uint8 images; ``flip_tta`` averages with the mirror image."""
    model.eval()
    out = []
    for s in batches(len(images), batch_size):
        x = to_tensor(images[s], mean, std, device)
        with _autocast(device, precision):
            p = F.softmax(model(x).float(), 1)
            if flip_tta:
                p = (p + F.softmax(model(x.flip(3)).float(), 1)) / 2
        out.append(p.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _array_digest(h, a: np.ndarray | None) -> None:
    if a is None:
        h.update(b"none")
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype == object:
        h.update(json.dumps(a.tolist(), default=str).encode())
    else:
        h.update(a.data)


def code_digest(*objects) -> str:
    """sha256 of the source files that define ``objects`` (modules, classes, functions):
    an edit to the training loop or the network invalidates a resume checkpoint."""
    import inspect
    import sys as _sys

    h = hashlib.sha256()
    for obj in (_sys.modules[__name__], *objects):
        try:
            path = inspect.getsourcefile(obj if inspect.ismodule(obj) else inspect.getmodule(obj))
        except TypeError:
            path = None
        h.update(Path(path).read_bytes() if path else repr(obj).encode())
    return h.hexdigest()


def data_digest(cfg: dict, *arrays, extra=None) -> str:
    """What a resumable fit trains on: the settings, every array's bytes (images, labels,
    validation groups), and ``extra`` (e.g. :func:`code_digest`, the model's start state)."""
    h = hashlib.sha256(json.dumps([cfg, extra], sort_keys=True, default=str).encode())
    for a in arrays:
        _array_digest(h, a)
    return h.hexdigest()[:32]


def fit(
    model,
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    cfg: dict,
    device,
    mean: float,
    std: float,
    resume_dir: str | None = None,
    val_groups: np.ndarray | None = None,
    objective: Objective | None = None,
) -> Result:
    """Train ``model`` in place; on return it holds the best validation epoch's weights.

    ``val_groups`` (one id per validation image, e.g. its video) scores the validation
    part per group: probabilities averaged over a group's images, as the videos are judged.
    ``objective`` (:class:`Objective`) replaces hard-label cross-entropy; it is left as
    trained at the last epoch run (e.g. its learned per-face weights).
    """
    cfg = {**DEFAULTS, **cfg, "augment": {**DEFAULTS["augment"], **(cfg.get("augment") or {})}}
    if cfg["precision"] == "auto":
        cfg["precision"] = "bf16" if bf16_supported(device) else "fp32"
    model.to(device)
    params = list(model.parameters())
    if objective is not None:
        objective.to(device)
        params += list(objective.trainable())
    opt = torch.optim.SGD(
        params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=True, weight_decay=cfg["weight_decay"]
    )
    n_steps = math.ceil(len(train_x) / cfg["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg["lr"], total_steps=max(1, cfg["epochs"] * n_steps), pct_start=0.2
    )
    gen = torch.Generator().manual_seed(cfg["seed"])
    progress = loop.Progress(best_state=loop.snapshot(model))  # epoch 0: the start weights
    ckpt = Path(resume_dir, "resume.pt") if resume_dir else None
    # the checkpoint is valid only for exactly this training: settings, data (images, labels,
    # validation part), start weights and code; anything else starts afresh
    start = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h0 = v.detach().cpu().contiguous()
        start.update(k.encode() + str(h0.dtype).encode() + h0.view(-1).view(torch.uint8).numpy().tobytes())
    digest = data_digest(
        {k: v for k, v in cfg.items() if k != "patience"},
        train_x,
        train_y,
        val_x,
        val_y,
        val_groups,
        extra=[
            code_digest(type(model), loop.run_epochs),
            start.hexdigest(),
            float(mean),
            float(std),
            *([objective.digest()] if objective is not None else []),
        ],
    )
    resumed_from = 0
    if ckpt and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)  # tensors and plain data only
        if state.get("digest") == digest:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            gen.set_state(state["gen"])
            if "torch_rng" in state:  # dropout draws from the global generator (older checkpoints lack it)
                torch.set_rng_state(state["torch_rng"])
            if objective is not None:
                objective.load_state_dict(state.get("objective") or {})
            progress = loop.Progress(
                epoch=state["epoch"],
                best_epoch=state["best_epoch"],
                best_key=state["best_val_acc"],
                best_state=state["best_state"],
                history=state["history"],
            )
            resumed_from = state["epoch"]
            log.info(
                "resuming after epoch %d (best so far: epoch %d, val %.4f)",
                resumed_from,
                progress.best_epoch,
                progress.best_key,
            )
        else:
            log.info("%s belongs to other settings or data: starting afresh", ckpt)
    t0 = time.time()
    totals = {}

    def begin_epoch(epoch: int) -> None:
        if objective is not None:
            objective.begin_epoch(model, train_x, mean, std, device, cfg["precision"], epoch - 1)

    def steps(epoch: int):
        order = torch.randperm(len(train_x), generator=gen).numpy()
        totals.update(total=0, correct=0, loss_sum=0.0)
        bar = logs.progress(
            batches(len(order), cfg["batch_size"]), f"epoch {epoch}/{cfg['epochs']}", total=n_steps, unit="batch"
        )
        for s in bar:
            idx = np.sort(order[s])
            if len(idx) < 2:  # batch norm needs two samples: a lone last one waits for the next epoch
                continue
            x = (augment(to_unit(train_x[idx], device), cfg["augment"], gen) - mean) / std
            y = torch.from_numpy(np.asarray(train_y[idx], np.int64)).to(device)
            if objective is None:
                with _autocast(device, cfg["precision"]):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg["label_smoothing"])
            else:
                with _autocast(device, cfg["precision"]):
                    out = model.features(x, (objective.layer, "logits")) if objective.layer else {"logits": model(x)}
                logits = out["logits"]
                feats = out[objective.layer].float() if objective.layer else None
                loss = objective.loss(logits.float(), feats, idx, y)
                objective.zero_grad()
            totals["total"] += len(idx)
            totals["correct"] += int((logits.argmax(1) == y).sum())
            totals["loss_sum"] += float(loss.detach()) * len(idx)
            yield loss

    def end_epoch(epoch: int):
        probs = predict(model, val_x, mean, std, device, precision=cfg["precision"])
        val_acc = _accuracy(probs, val_y, val_groups)
        total = max(1, totals["total"])
        row = {
            "epoch": epoch,
            "loss": totals["loss_sum"] / total,
            "train_acc": totals["correct"] / total,
            "val_acc": val_acc,
            "lr": sched.get_last_lr()[0],
            "seconds": round(time.time() - t0, 1),
        }
        log.info(
            "epoch %d/%d: loss %.3f train %.4f val %.4f", epoch, cfg["epochs"], row["loss"], row["train_acc"], val_acc
        )
        return row, val_acc

    def checkpoint(p: loop.Progress) -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "digest": digest,
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "gen": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "best_state": p.best_state,
                "epoch": p.epoch,
                "best_epoch": p.best_epoch,
                "objective": objective.state_dict() if objective is not None else {},
                "best_val_acc": p.best_key,
                "history": p.history,
            },
            tmp,
        )
        tmp.replace(ckpt)

    progress = loop.run_epochs(
        model,
        opt,
        cfg["epochs"],
        steps,
        end_epoch,
        sched=sched,
        after_step=objective.step if objective is not None else None,
        begin_epoch=begin_epoch,
        patience=cfg["patience"],
        progress=progress,
        checkpoint=checkpoint if ckpt else None,
        log=log.info,
    )
    result = Result(
        best_epoch=progress.best_epoch,
        best_val_acc=progress.best_key if progress.best_key is not None else -1.0,
        history=progress.history,
        seconds=time.time() - t0,
        resumed_from=resumed_from,
    )
    if ckpt and ckpt.exists():  # finished: resume state must not outlive this fit
        ckpt.unlink()
        try:
            ckpt.parent.rmdir()
        except OSError:
            pass
    return result


def _accuracy(probs: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> float:
    if len(y) == 0:
        return 0.0
    if groups is None:
        return float(np.mean(probs.argmax(1) == y))
    correct = []
    for g in np.unique(groups):
        m = groups == g
        correct.append(probs[m].mean(0).argmax() == y[m][0])
    return float(np.mean(correct))
