"""Training the e2e network: batches with every augmentation, epochs chosen on held-out
training speakers, refit, the seed ensemble, and prediction with face TTA.

Only the training rows ever reach :func:`fit_ensemble` (the stage passes nothing else): for
each seed a seeded share of the training speakers (:func:`emoflow.dataset.holdout.speaker_holdout`)
is held out, the network is fitted on the rest and its epoch chosen on them (accuracy of the
TTA-averaged fused probabilities, ties to the lower loss, early stop after ``patience``
epochs), then, with ``refit``, a network of the same seed is trained on all training rows
for that many epochs.  The ensemble's probability is the mean of its members', each the mean
over the TTA transforms.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from emoflow.classify.sequence import _frame_index, collate
from emoflow.dataset.holdout import speaker_holdout
from emoflow.e2e import augment as aug
from emoflow.e2e.data import Inputs
from emoflow.e2e.model import E2ENet, soft_cross_entropy
from emoflow.nets import loop
from emoflow.nets.common import batches, pick_device, setup_torch


def transform_indices(data: Inputs, names: list[str]) -> list[int]:
    """Positions of the named transforms in the data's cache (identity when none is named)."""
    names = list(names) or [aug.IDENTITY]
    missing = [n for n in names if n not in data.transforms]
    if missing:
        raise ValueError(f"face transforms {missing} are not in the cache ({data.transforms})")
    return [data.transforms.index(n) for n in names]


def branch_stats(data: Inputs, ids: list[str], seed: int = 0, cap: int = 200_000) -> dict:
    """Per branch: mean and std of the frames of ``ids`` (the face branch's identity view)."""
    rng = np.random.default_rng(seed)
    ident = transform_indices(data, [])[0] if aug.IDENTITY in data.transforms else 0
    out = {}
    for k, table in (("audio", data.audio), ("face", data.face)):
        if not data.dims().get(k):
            continue
        seqs = [table[v] if k == "audio" else table[v][ident] for v in ids if v in table]
        d = data.dims()[k]
        if not seqs:
            out[k] = (np.zeros(d, np.float32), np.ones(d, np.float32))
            continue
        frames = np.concatenate(seqs)
        if len(frames) > cap:
            frames = frames[rng.choice(len(frames), cap, replace=False)]
        std = frames.std(0)
        out[k] = (frames.mean(0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))
    return out


def _to_inputs(seqs: list, dim: int, present: np.ndarray, device) -> tuple:
    seqs = [s if s is not None and len(s) else np.zeros((1, dim), np.float32) for s in seqs]
    x, m = collate(seqs)
    return x.to(device), m.to(device), torch.as_tensor(present, dtype=torch.float32, device=device)


def train_batch(
    data: Inputs,
    ids: list[str],
    y: np.ndarray,
    spec: dict,
    n_classes: int,
    rng: np.random.Generator,
    train_t: list[int],
    stats: dict,
    device,
) -> tuple[dict, dict, dict]:
    """(inputs, targets, aux weights) of one training batch with every augmentation."""
    dims = data.dims()
    n = len(ids)
    seqs = {k: [None] * n for k in dims}
    for i, v in enumerate(ids):
        a = data.audio.get(v) if "audio" in dims else None
        f = data.face[v][train_t[int(rng.integers(len(train_t)))]] if "face" in dims and v in data.face else None
        if a is not None and f is not None and rng.random() < spec["modality_dropout"]:
            if rng.random() < 0.5:
                a = None
            else:
                f = None
        if a is not None:
            a = aug.frame_dropout(a[_frame_index(len(a), spec["max_audio_len"], rng)], spec["frame_dropout"], rng)
            if spec["specaugment"]:
                a = aug.spec_augment(a, rng, stats["audio"][0], **spec["specaugment"])
            seqs["audio"][i] = a
        if f is not None:
            seqs["face"][i] = aug.frame_dropout(
                f[_frame_index(len(f), spec["max_face_len"], rng)], spec["frame_dropout"], rng
            )
    base = aug.one_hot(y, n_classes)
    targets = {"fused": base.copy(), **{k: base.copy() for k in dims}}
    present = {k: np.array([s is not None for s in seqs[k]], np.float32) for k in dims}
    mix_lam = None
    if spec["mixup"] and rng.random() < spec["mixup_prob"]:
        mix_lam, perm = aug.mixup_lambda(spec["mixup"], rng), rng.permutation(n)
    elif spec["cutmix"] and "face" in dims and rng.random() < spec["cutmix"]:
        perm, orig = rng.permutation(n), list(seqs["face"])
        for i in range(n):
            a, b = orig[i], orig[perm[i]]
            if a is None or b is None:
                continue
            seqs["face"][i], share = aug.cutmix_face(a, b, float(rng.random()), rng)
            mixed = aug.cutmix_target(base[i], base[perm[i]], share)
            targets["fused"][i], targets["face"][i] = mixed, mixed
    inputs = {k: _to_inputs(seqs[k], d, present[k], device) for k, d in dims.items()}
    if mix_lam is not None:
        p = torch.as_tensor(perm, device=device)
        for k, (x, m, pr) in inputs.items():
            inputs[k] = (mix_lam * x + (1 - mix_lam) * x[p], m | m[p], torch.maximum(pr, pr[p]))
            present[k] = np.maximum(present[k], present[k][perm])
        targets = {k: mix_lam * t + (1 - mix_lam) * t[perm] for k, t in targets.items()}
    eps = float(spec["label_smoothing"])
    targets = {k: torch.as_tensor(aug.smooth(t, eps), device=device) for k, t in targets.items()}
    weights = {k: torch.as_tensor(present[k], device=device) for k in dims}
    return inputs, targets, weights


def loss_of(out: dict, targets: dict, weights: dict, aux_weight: float) -> torch.Tensor:
    """CE(fused) + aux_weight * mean over branches of CE(branch) (each over the clips that have it)."""
    loss = soft_cross_entropy(out["fused"], targets["fused"])
    if aux_weight:
        aux = [soft_cross_entropy(out[k], targets[k], w) for k, w in weights.items() if float(w.sum()) > 0]
        if aux:
            loss = loss + aux_weight * torch.stack(aux).mean()
    return loss


@torch.no_grad()
def predict_proba(
    members: list[E2ENet],
    data: Inputs,
    ids: list[str],
    transforms: list[str],
    batch_size: int = 64,
    device=None,
    per_clip: bool = True,
) -> np.ndarray:
    """(n, C): the members' fused softmax, each averaged over the face ``transforms`` (none:
    the identity), then over the members.  Clips without any modality get rows computed from
    zeros with both presence flags off (the caller replaces them by the training prior).

    ``per_clip`` (default): each clip on its own (its transforms as one face batch), so a
    clip's probabilities never depend on which other clips are predicted with it (the stage,
    the predictor and rule deployments agree to the last bit); False: ``batch_size`` clips at
    a time (faster; what training uses to score its held-out speakers)."""
    device = device or pick_device("auto")
    dims = data.dims()
    tidx = transform_indices(data, transforms) if "face" in dims and data.face else [0]
    total = np.zeros((len(ids), members[0].n_classes))
    for net in members:
        net.to(device).eval()
        spec = net.spec

        def audio_of(v):
            return (
                data.audio[v][_frame_index(len(data.audio[v]), spec["max_audio_len"], None)]
                if v in data.audio
                else None
            )

        def face_of(v, t):
            f = data.face.get(v)
            return f[t][_frame_index(f.shape[1], spec["max_face_len"], None)] if f is not None else None

        if per_clip:
            for i, v in enumerate(ids):
                pooled, present = {}, {}
                k = len(tidx) if "face" in dims else 1
                if "audio" in dims:
                    x, m, pr = _to_inputs([audio_of(v)], dims["audio"], [v in data.audio], device)
                    pooled["audio"], present["audio"] = net.branches["audio"](x, m).expand(k, -1), pr.expand(k)
                if "face" in dims:
                    x, m, present["face"] = _to_inputs(
                        [face_of(v, t) for t in tidx], dims["face"], [v in data.face] * k, device
                    )
                    pooled["face"] = net.branches["face"](x, m)
                total[i] += torch.softmax(net.head(pooled, present).double(), dim=1).mean(0).cpu().numpy()
            continue
        for sl in batches(len(ids), batch_size):
            chunk = ids[sl]
            pooled, present = {}, {}
            if "audio" in dims:
                seqs = [audio_of(v) for v in chunk]
                x, m, present["audio"] = _to_inputs(seqs, dims["audio"], [s is not None for s in seqs], device)
                pooled["audio"] = net.branches["audio"](x, m)
            acc = 0.0
            for t in tidx:
                if "face" in dims:
                    seqs = [face_of(v, t) for v in chunk]
                    x, m, present["face"] = _to_inputs(seqs, dims["face"], [s is not None for s in seqs], device)
                    pooled["face"] = net.branches["face"](x, m)
                acc = acc + torch.softmax(net.head(pooled, present).double(), dim=1).cpu().numpy()
            total[sl] += acc / len(tidx)
    return total / len(members)


def train(
    data: Inputs,
    ids: list[str],
    y: np.ndarray,
    hold_ids: list[str] | None,
    hold_y,
    n_classes: int,
    spec: dict,
    seed: int,
    epochs: int,
    device,
    log: Callable[[str], None] | None = None,
) -> tuple[E2ENet, list[dict], int]:
    """One network: trained on ``ids`` for up to ``epochs`` epochs; with held-out clips, the
    best epoch's weights (by held-out accuracy, ties to lower loss) and early stopping.
    Returns (network in eval mode, history, best epoch)."""
    setup_torch(torch.get_num_threads(), seed)
    rng = np.random.default_rng(seed)
    net = E2ENet(data.dims(), n_classes, spec)
    for k, (mean, std) in branch_stats(data, ids, seed).items():
        net.branches[k].set_standardization(mean, std)
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=float(spec["lr"]), weight_decay=float(spec["weight_decay"]))
    stats = {k: (b.feat_mean.cpu().numpy(), b.feat_std.cpu().numpy()) for k, b in net.branches.items()}
    train_t = transform_indices(data, spec["tta"] if spec["train_transforms"] else []) if "face" in data.dims() else [0]
    y = np.asarray(y, np.int64)
    has_hold = bool(hold_ids)
    totals = {}

    def steps(epoch: int):
        totals.update(t0=time.time(), loss=0.0)
        order = rng.permutation(len(ids))
        for sl in batches(len(ids), int(spec["batch_size"])):
            idx = order[sl]
            inputs, targets, weights = train_batch(
                data, [ids[i] for i in idx], y[idx], spec, n_classes, rng, train_t, stats, device
            )
            loss = loss_of(net(inputs), targets, weights, float(spec["aux_weight"]))
            totals["loss"] += float(loss.detach()) * len(idx)
            yield loss

    def end_epoch(epoch: int):
        row = {"epoch": epoch, "loss": totals["loss"] / max(1, len(ids)), "seconds": None}
        key = None
        if has_hold:
            net.eval()
            p = predict_proba([net], data, hold_ids, spec["tta"], device=device, per_clip=False)
            hy = np.asarray(hold_y)
            row["holdout_acc"] = float((p.argmax(1) == hy).mean())
            row["holdout_loss"] = float(-np.log(np.clip(p[np.arange(len(hy)), hy], 1e-12, None)).mean())
            key = (row["holdout_acc"], -row["holdout_loss"])  # ties to the lower loss
        row["seconds"] = round(time.time() - totals["t0"], 3)
        if log:
            extra = f" holdout acc {row['holdout_acc']:.3f} loss {row['holdout_loss']:.4f}" if has_hold else ""
            log(f"seed {seed} epoch {epoch}: loss {row['loss']:.4f}{extra} ({row['seconds']:.1f} s)")
        return row, key

    progress = loop.run_epochs(net, opt, epochs, steps, end_epoch, patience=int(spec["patience"]) if has_hold else None)
    best_epoch = progress.best_epoch if has_hold else int(epochs)
    return net.eval(), progress.history, best_epoch


def fit_ensemble(
    data: Inputs,
    ids: list[str],
    y,
    groups,
    n_classes: int,
    spec: dict,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> list[tuple[E2ENet, dict]]:
    """One member per seed, fitted on the TRAINING rows ``ids`` (labels ``y``, speakers
    ``groups``) alone: epoch chosen on the seed's held-out training speakers, then (``refit``)
    retrained on all of them for that many epochs."""
    setup_torch(threads, int(spec["seeds"][0]))
    device = pick_device(spec["device"])
    ids, y, groups = list(ids), np.asarray(y, np.int64), np.asarray(groups, object)
    members = []
    for seed in spec["seeds"]:
        seed = int(seed)
        t0 = time.time()
        hold = speaker_holdout(groups, float(spec["holdout"]), seed)
        fit_ids = [v for v, h in zip(ids, hold) if not h]
        hold_ids = [v for v, h in zip(ids, hold) if h]
        net, history, best = train(
            data, fit_ids, y[~hold], hold_ids, y[hold], n_classes, spec, seed, int(spec["epochs"]), device, log
        )
        rec = {
            "seed": seed,
            "holdout_speakers": sorted(map(str, np.unique(groups[hold]))),
            "holdout_videos": len(hold_ids),
            "best_epoch": best,
            "holdout_accuracy": history[best - 1]["holdout_acc"],
            "epochs_run": len(history),
            "history": history,
        }
        if spec["refit"]:
            net, refit_hist, _ = train(data, ids, y, None, None, n_classes, spec, seed, best, device, log)
            rec["refit_epochs"] = best
            rec["refit_history"] = refit_hist
        rec["seconds"] = round(time.time() - t0, 2)
        if log:
            log(
                f"seed {seed}: best epoch {best}, held-out accuracy {rec['holdout_accuracy']:.3f} ({rec['seconds']:.0f} s)"
            )
        members.append((net.cpu(), rec))
    return members
