"""Train the expression embedding (rule ``fit_expression_embedding``:
``python -m emoflow.features.fit expression_embedding OUT_JSON --trunk TRUNK_JSON TRUNK_PT
--data ... --config JSON [--threads N]``, which calls :func:`fit_stage`).

1. The trunk: a ``fit_frame_cnn`` model (its JSON + ``.pt``).  The frozen part of the
   network (:class:`emoflow.similarity.model.Embedder`) is computed once for every face
   the training triplets name (FER2013 ``train``, 48x48 grey, normalised as the frame
   CNN's fit did), and for its mirror image when ``flip`` is on: epochs then take seconds.
   ``votes_weight`` > 0 adds a second loss (2 by default; 0 turns it off): the training faces' own FER+
   vote distributions (``ferplus/ferplus_votes.parquet``, train split only), predicted from
   the embedding by a linear layer that is dropped after the fit (KL divergence).
2. A seeded ``holdout`` fraction of the training *faces* is held out; the triplets with two
   or three of them are the held-out part, those with none the fit part
   (:func:`triplets.holdout_split`).  Training on the fit part (Adam, cosine learning-rate decay over ``epochs``, the FECNet
   loss with ``margin`` -- one delta or one per triplet type -- and ``mining``) picks the
   epoch with the best held-out triplet accuracy.
3. ``refit``: the same training again from the same start on *all* training triplets,
   stopped at that epoch (the schedule unchanged).  Without it the fit-part model is kept.
4. ``triplets_val`` (FER2013 ``public_test`` faces) is scored once, at the end, and only
   reported (``val`` in the JSON): it never picks anything.

Writes ``OUT_JSON`` (everything measured, the trunk's and the head's specification, the
``framing`` the extractor applies to aligned crops) and the ``.pt`` beside it (trunk and
head weights: the pair is self-contained, the bundle copies both).
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np

from emoflow.data_root import VOTES_DEFAULT, data_path
from emoflow.nets import loop
from emoflow.similarity import triplets as T

#: Every parameter of an ``expression_embedding`` config entry (fit and extractor).
DEFAULTS = {
    "model": None,  # the fit's JSON (the workflow sets it for the extractor)
    "trunk": "frame_cnn",  # the frame_cnn feature whose fit is the trunk (workflow)
    "trunk_model": None,  # or a frame CNN fit's JSON ("{data_root}/..." allowed); overrides trunk
    "framing": None,  # aligned crop -> trunk input; null: the trunk feature's framing
    "images": "{data_root}/fer2013/fer2013.parquet",
    "triplets": "{data_root}/fer_similarity/triplets_train.parquet",
    "val_triplets": "{data_root}/fer_similarity/triplets_val.parquet",  # scored once, at the end
    "dim": 16,
    "hidden": 256,
    "dropout": 0.2,
    "tune": "fc",  # none | fc | block (emoflow.similarity.model)
    "inputs": None,  # trunk layers the head reads (default: the bottleneck)
    "margin": 0.1,  # or {one_class: .., two_class: .., three_class: ..}
    "mining": "none",  # none | active | semihard | hard
    "hard_fraction": 0.5,
    "epochs": 30,
    "batch_size": 256,
    "lr": 0.001,
    "weight_decay": 0.0001,
    "flip": True,  # mirror images as training augmentation
    "flip_tta": True,  # embed a face and its mirror image, averaged
    "holdout": 0.2,  # fraction of training faces held out to pick the epoch (triplets with 2+ of them)
    # also predict the training faces' FER+ vote distributions (0: off); 2 was chosen on the
    # held-out training triplets (79.0% there against 78.2% without; bench/similarity.py)
    "votes_weight": 2.0,
    "votes": VOTES_DEFAULT,
    "refit": True,
    "seed": 0,
    "precision": "fp32",  # training steps: fp32 | bf16 (autocast; embedding is always fp32)
    "extract_batch": 256,
    "device": "auto",
}


def _params(params: dict) -> dict:
    p = {**DEFAULTS, **{k: v for k, v in params.items() if k != "extractor"}}
    unknown = set(params) - set(DEFAULTS) - {"extractor"}
    if unknown:
        raise ValueError(f"expression_embedding: unknown parameter(s) {sorted(unknown)} (accepted: {sorted(DEFAULTS)})")
    if p["mining"] not in T.MINING:
        raise ValueError(f"expression_embedding: mining {p['mining']!r} is not one of {T.MINING}")
    return p


def cache_frozen(net, images: np.ndarray, mean: float, std: float, flip: bool, device, batch_size: int = 512):
    """The frozen part of ``net`` for every image (and its mirror image): CPU tensors."""
    import torch

    from emoflow.nets.common import batches
    from emoflow.nets.train import to_tensor

    net.eval()
    plain, mirrored = [], []
    with torch.no_grad():
        for s in batches(len(images), batch_size):
            x = to_tensor(images[s], mean, std, device)
            plain.append(net.frozen(x).float().cpu())
            if flip:
                mirrored.append(net.frozen(x.flip(3)).float().cpu())
    out = torch.cat(plain)
    return out, (torch.cat(mirrored) if flip else None)


def embed_cached(
    net, cache, faces: np.ndarray | None = None, flip_tta: bool = True, device="cpu", batch_size: int = 1024
):
    """Embeddings (numpy) of cached faces (all, or the rows ``faces``) in eval mode."""
    import torch
    import torch.nn.functional as F

    from emoflow.nets.common import batches

    plain, mirrored = cache
    rows = np.arange(len(plain)) if faces is None else np.asarray(faces)
    net.eval()
    out = []
    with torch.no_grad():
        for s in batches(len(rows), batch_size):
            r = torch.from_numpy(rows[s])
            e = net.tail(plain[r].to(device))
            if flip_tta and mirrored is not None:
                e = F.normalize(e + net.tail(mirrored[r].to(device)), dim=1)
            out.append(e.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, net.dim), np.float32)


def train(
    net,
    cache,
    trip: T.Triplets,
    p: dict,
    device,
    held: T.Triplets | None = None,
    stop_after: int | None = None,
    log=None,
    votes=None,
) -> dict:
    """Train ``net``'s tail in place on ``trip`` for ``p['epochs']`` epochs (or ``stop_after``
    of them, same schedule).  With ``held``: keep the best held-out epoch's weights.
    ``votes``: (distributions, valid) of every face, for ``votes_weight``.
    Returns {history, best_epoch, best_held, seconds}."""
    import torch
    import torch.nn.functional as F

    plain, mirrored = cache
    gen = np.random.default_rng(p["seed"])
    torch.manual_seed(p["seed"])
    params = [q for q in net.parameters() if q.requires_grad]
    vhead = None
    if p["votes_weight"] and votes is not None:  # a linear read-out of the vote distribution, dropped after the fit
        vhead = torch.nn.Linear(net.dim, votes[0].shape[1]).to(device)
        params += list(vhead.parameters())
        vdist, vvalid = torch.from_numpy(votes[0]), torch.from_numpy(votes[1])
    opt = torch.optim.AdamW(params, lr=p["lr"], weight_decay=p["weight_decay"])
    steps = math.ceil(len(trip) / p["batch_size"])
    total = max(1, p["epochs"] * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    anchor, positive, negative = T.pair_roles(trip)
    margin = torch.from_numpy(T.margins(p["margin"], trip.type))
    held_faces = np.unique(held.faces) if held is not None else None
    t0 = time.time()
    epochs = p["epochs"] if stop_after is None else min(stop_after, p["epochs"])
    totals = {}

    def steps(epoch: int):
        order = gen.permutation(len(trip))
        totals.update(loss=0.0, seen=0, active=0)
        for i in range(0, len(order), p["batch_size"]):
            b = order[i : i + p["batch_size"]]
            if len(b) < 2:
                continue
            roles = np.stack([anchor[b], positive[b], negative[b]])
            faces, inv = np.unique(roles, return_inverse=True)
            inv = torch.from_numpy(inv.reshape(3, -1))
            rows = torch.from_numpy(faces)
            x = plain[rows]
            if mirrored is not None and p["flip"]:
                use = torch.from_numpy(gen.random(len(faces)) < 0.5)
                x = torch.where(use.view(-1, *[1] * (x.dim() - 1)), mirrored[rows], x)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=p["precision"] == "bf16"):
                e = net.tail(x.to(device))
            e = e.float()
            loss, dists = T.triplet_losses(e[inv[0]], e[inv[1]], e[inv[2]], margin[b].to(device))
            batch_loss = T.mined_mean(loss, dists, p["mining"], p["hard_fraction"])
            if vhead is not None:
                ok = vvalid[rows]
                if ok.any():
                    logp = F.log_softmax(vhead(e[ok.to(device)]), 1)
                    batch_loss = batch_loss + p["votes_weight"] * F.kl_div(
                        logp, vdist[rows][ok].to(device), reduction="batchmean"
                    )
            totals["loss"] += float(loss.detach().sum())
            totals["active"] += int((loss.detach() > 0).sum())
            totals["seen"] += len(b)
            yield batch_loss

    scores = {}

    def end_epoch(epoch: int):
        seen = max(1, totals["seen"])
        row = {
            "epoch": epoch,
            "loss": totals["loss"] / seen,
            "active": totals["active"] / seen,
            "lr": sched.get_last_lr()[0],
            "seconds": round(time.time() - t0, 1),
        }
        key = None
        if held is not None:
            emb = np.zeros((len(plain), net.dim), np.float32)
            emb[held_faces] = embed_cached(net, cache, held_faces, p["flip_tta"], device)
            acc = T.accuracy(emb, held)
            row.update({"held_" + k: v for k, v in acc.items() if k != "n"})
            scores[epoch], key = acc, acc["all"]
        if log:
            extra = f" held-out {row['held_all']:.4f}" if held is not None else ""
            log.info(
                "epoch %d/%d: loss %.4f active %.3f%s (%.0f s)",
                epoch,
                epochs,
                row["loss"],
                row["active"],
                extra,
                row["seconds"],
            )
        return row, key

    progress = loop.run_epochs(net, opt, epochs, steps, end_epoch, sched=sched)
    return {
        "history": progress.history,
        "best_epoch": progress.best_epoch if held is not None else epochs,
        "best_held": scores.get(progress.best_epoch),
        "seconds": round(time.time() - t0, 1),
    }


def fit(trunk_path: str, out: str | None, params: dict, threads: int = 1, log=None, caches: dict | None = None) -> dict:
    """Train per ``params`` (an expression_embedding config entry, paths resolved); write
    ``out`` (.json) and its .pt (``out`` None: return the metadata and keep the network in
    ``meta['_net']``, for benchmarks).  ``caches``: a dict kept between calls (benchmarks)
    in which the frozen trunk's values are reused by fits of the same trunk and split."""
    import torch

    from emoflow.nets.common import pick_device, setup_torch
    from emoflow.similarity import model as M
    from emoflow.storage import atomic_path, write_text

    p = _params(params)
    setup_torch(threads, seed=p["seed"])
    t0 = time.time()
    device = pick_device(p["device"])
    trunk, tmeta = M.load_trunk(trunk_path)
    faces, trip = T.load(p["images"], p["triplets"], "train")
    if log:
        log.info(
            "%d training triplets over %d FER2013 train faces; trunk %s (%s)",
            len(trip),
            len(faces),
            trunk_path,
            tmeta["arch"],
        )
    net = M.Embedder(
        trunk, tmeta["arch"], tune=p["tune"], inputs=p["inputs"], hidden=p["hidden"], dim=p["dim"], dropout=p["dropout"]
    ).to(device)
    start = copy.deepcopy(net.state_dict())
    mean, std = float(tmeta["mean"]), float(tmeta["std"])
    key = (str(trunk_path), p["triplets"], p["tune"], tuple(net.inputs), bool(p["flip"] or p["flip_tta"]))
    if caches is not None and key in caches:
        cache = caches[key]
    else:
        cache = cache_frozen(net, faces.images, mean, std, p["flip"] or p["flip_tta"], device)
        if caches is not None:
            caches[key] = cache
    t_cache = time.time() - t0
    if log:
        log.info("frozen trunk cached: %s per face (%.0f s)", tuple(cache[0].shape[1:]), t_cache)
    fit_rows, held_rows = T.holdout_split(trip, len(faces), p["holdout"], p["seed"], min_held=2)
    if log:
        log.info(
            "held out: %d triplets with 2+ of %.0f%% of the faces held out; fitting on %d",
            len(held_rows),
            100 * p["holdout"],
            len(fit_rows),
        )
    votes = T.load_votes(p["votes"], faces, "train") if p["votes_weight"] else None
    chosen = train(net, cache, trip.take(fit_rows), p, device, held=trip.take(held_rows), log=log, votes=votes)
    best_epoch = chosen["best_epoch"]
    if log:
        log.info("best held-out epoch %d: %.4f", best_epoch, chosen["best_held"]["all"])
    refit = None
    if p["refit"]:
        net.load_state_dict(start)
        refit = train(net, cache, trip, p, device, stop_after=best_epoch, log=log, votes=votes)
    train_seconds = time.time() - t0 - t_cache
    meta = {
        "trunk": {k: tmeta[k] for k in ("arch", "net", "size", "classes", "mean", "std")} | {"model": str(trunk_path)},
        "head": {
            "tune": p["tune"],
            "inputs": net.inputs,
            "hidden": p["hidden"],
            "dim": p["dim"],
            "dropout": p["dropout"],
        },
        "framing": p["framing"],
        "flip_tta": bool(p["flip_tta"]),
        "training": {
            k: p[k]
            for k in (
                "margin",
                "mining",
                "hard_fraction",
                "epochs",
                "batch_size",
                "lr",
                "weight_decay",
                "flip",
                "holdout",
                "refit",
                "seed",
                "votes_weight",
                "precision",
            )
        },
        "data": {
            "images": str(p["images"]),
            "triplets": str(p["triplets"]),
            "faces": len(faces),
            "triplets_n": len(trip),
            "fit_triplets": int(len(fit_rows)),
            "held_triplets": int(len(held_rows)),
        },
        "best_epoch": best_epoch,
        "held_out": chosen["best_held"],
        "history": chosen["history"],
        "refit_history": refit["history"] if refit else None,
        "seconds": {"cache": round(t_cache, 1), "train": round(train_seconds, 1)},
        "device": str(device),
        "threads": threads,
    }
    if p["val_triplets"] and Path(p["val_triplets"]).is_file():
        vfaces, vtrip = T.load(p["images"], p["val_triplets"], "public_test")
        emb = M.embed(net, vfaces.images, mean, std, device, flip_tta=p["flip_tta"])
        meta["val"] = T.accuracy(emb, vtrip)  # reported once; nothing was chosen on it
        if log:
            log.info("triplets_val (scored once): %s", {k: round(v, 4) for k, v in meta["val"].items() if k != "n"})
    meta["seconds"]["total"] = round(time.time() - t0, 1)
    if out is None:
        meta["_net"] = net
        return meta
    outp = Path(out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(outp.with_suffix(".pt"), suffix=".pt") as tmp:
        torch.save({"state_dict": net.cpu().state_dict()}, tmp)
    write_text(outp, json.dumps(meta, indent=1) + "\n")
    return meta


def resolve(params: dict, root: str) -> dict:
    """``{data_root}`` expanded in the entry's paths."""
    out = dict(params)
    for key in ("trunk_model", "images", "triplets", "val_triplets", "votes"):
        out.setdefault(key, DEFAULTS[key])
        out[key] = data_path(out.get(key), root)
    return out


def fit_stage(job) -> None:
    """The workflow's fit (:class:`emoflow.features.fit.FitJob`): the trunk's frame CNN fit
    (JSON, weights) and the FER2013 faces and triplets its config names."""
    params = dict(job.params)
    trunk_framing = params.pop("trunk_framing", None)
    params = resolve(params, job.data_root)
    if params.get("framing") is None:
        params["framing"] = trunk_framing
    fit(job.inputs["trunk"][0], job.out, params, job.threads, job.log)
