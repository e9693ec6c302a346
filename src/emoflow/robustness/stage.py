"""The ``robustness`` rules' two steps: fit one frame CNN of the grid, then score it.

``fit``    one copy of the frame CNN (:func:`emoflow.features.frame_cnn.fit`, its own
           training loop and epoch choice on held-out *training* faces) for one training
           target kind (hard | votes | uncertainty) and one label-noise rate (percent of the
           training labels flipped, :mod:`.noise`); beside the model a Parquet of the
           training faces (row, true and given label, flipped, learned λ).
``score``  FER2013 ``public_test`` (clean labels) under the fitted model: accuracy and UAR,
           against the FER+ majority labels and the FER+ vote distributions
           (:mod:`.metrics`); the same with each occluder (:mod:`.occlude`); and how well
           the learned λ separates flipped from clean training labels (AUROC of 1 − λ, the
           flipped ones positive; uncertainty targets with noise only).

Library use (``bench/ldl.py``): :func:`load_public_test` once, :func:`score_model` per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoflow.data_root import VOTES_DEFAULT, data_path
from emoflow.errors import EmoflowError


@dataclass
class TestSet:
    classes: list[str]
    x: np.ndarray  # (N, 48, 48) uint8
    y: np.ndarray  # FER2013 labels
    votes: np.ndarray  # (N, C) FER+ vote distributions over the label space
    has_votes: np.ndarray
    majority: np.ndarray  # FER+ majority in the label space, -1 for none


def load_public_test(fer_path: str, votes_path: str, label_map: dict, limit: int | None = None) -> TestSet:
    """FER2013 public_test with its FER+ votes mapped by ``label_map`` (FER+ emotion -> class)."""
    from emoflow.features.face_images import fer2013
    from emoflow.nets import ldl

    data = fer2013(fer_path, val_fraction=0.1, seed=0)
    if data.test_x is None:
        raise EmoflowError(f"{fer_path}: no public_test rows to score")
    counts, _ = ldl.read_votes(votes_path, fer_path)
    counts = counts[data.test_rows]
    dist, has = ldl.vote_distributions(counts, data.classes, label_map)
    maj = ldl.majority(counts, data.classes, label_map)
    sl = slice(None) if not limit else slice(0, limit)
    if limit:  # a fixed spread-out subset (rows are sorted by label)
        sl = np.linspace(0, len(data.test_y) - 1, min(limit, len(data.test_y))).astype(int)
    return TestSet(data.classes, data.test_x[sl], data.test_y[sl], dist[sl], has[sl], maj[sl])


def score_model(
    meta_path: str, test: TestSet, occluders=(), faces_path: str | None = None, device: str = "auto"
) -> dict:
    """Scores of one fitted frame CNN on ``test``: clean, under each occluder, and λ's AUROC."""
    from emoflow.features.frame_cnn import load_fitted
    from emoflow.nets.common import pick_device
    from emoflow.nets.train import predict
    from emoflow.robustness import metrics
    from emoflow.robustness.occlude import occlude

    net, meta = load_fitted(meta_path)
    if list(meta["classes"]) != list(test.classes):
        raise EmoflowError(f"{meta_path}: classes {meta['classes']} differ from the test set's {test.classes}")
    dev = pick_device(device)
    net.to(dev)

    def probs(x):
        return predict(net, x, meta["mean"], meta["std"], dev)

    out = {
        "targets": meta.get("targets", "hard"),
        "best_epoch": meta["best_epoch"],
        "val_accuracy": meta["val_accuracy"],
        "label_noise": (meta.get("training") or {}).get("label_noise", {}).get("rate", 0.0),
        "public_test": metrics.score(probs(test.x), test.y, test.classes, test.votes, test.has_votes, test.majority),
        "occlusion": {},
    }
    for kind in occluders:
        p = probs(occlude(test.x, kind))
        s = metrics.score(p, test.y, test.classes)
        out["occlusion"][kind] = {"accuracy": s["accuracy"], "uar": s["uar"]}
    out["lambda_auroc"] = lambda_auroc(faces_path) if faces_path else None
    return out


def lambda_auroc(faces_path: str) -> float | None:
    """AUROC of 1 − λ for flipped (positive) vs clean training labels, over faces with a
    learned λ; None without λ (not uncertainty targets) or without flips."""
    import pyarrow.parquet as pq

    from emoflow.robustness.metrics import auroc

    t = pq.read_table(faces_path, columns=["flipped", "lam"]).to_pandas()
    t = t[t["lam"].notna()]
    if t.empty:
        return None
    return auroc(1.0 - t["lam"].to_numpy(), t["flipped"].to_numpy(bool))


def fit_one(
    target: str,
    noise_pct: float,
    out: str,
    faces_out: str,
    cfg: dict,
    classes: list[str],
    threads: int = 1,
    log=None,
    resume: str | None = None,
) -> dict:
    """One frame CNN of the grid: ``cfg`` is the robustness section (``net``: a frame_cnn entry,
    ``label_map``, ``seed``); ``target`` the training targets, ``noise_pct`` the flip rate."""
    from emoflow.features import frame_cnn

    net = dict(cfg["net"])
    training = {**(net.get("training") or {}), "targets": target}
    if target != "hard":
        training["label_map"] = cfg["label_map"]
        if cfg.get("votes"):
            training["votes"] = cfg["votes"]
    net["training"] = training
    noise = {"rate": float(noise_pct) / 100.0, "seed": int(cfg.get("seed", 0))}
    return frame_cnn.fit(None, out, [], net, classes, resume, threads, log, label_noise=noise, faces_out=faces_out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(
        prog="emoflow robustness", description="Label-noise and occlusion robustness of the frame CNN."
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="train one frame CNN of the grid")
    f.add_argument("target", choices=["hard", "votes", "uncertainty"])
    f.add_argument("noise", type=float, help="percent of training labels flipped")
    f.add_argument("out", help="model JSON (.pt beside it)")
    f.add_argument("faces", help="Parquet of the training faces (flips, λ)")
    f.add_argument("--config", required=True, help="JSON: the robustness section (net, label_map, votes, seed)")
    f.add_argument("--classes", required=True, help="JSON list: the label space")
    f.add_argument("--resume", help="folder for the per-epoch resume checkpoint (default: OUT with .resume for .json)")
    f.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("score", help="score one fitted frame CNN on public_test, clean and occluded")
    s.add_argument("model")
    s.add_argument("faces")
    s.add_argument("out", help="scores JSON")
    s.add_argument(
        "--config", required=True, help="JSON: the robustness section (net.train.path, votes, label_map, occluders)"
    )
    s.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    from emoflow import logs
    from emoflow.nets.common import setup_torch
    from emoflow.storage import write_text

    log = logs.setup("emoflow.robustness")
    cfg = json.loads(args.config)
    root = cfg.pop("data_root", "") or ""
    net = dict(cfg["net"])
    net["train"] = {**net["train"], "path": data_path(net["train"]["path"], root)}
    cfg["net"] = net
    cfg["votes"] = data_path(cfg.get("votes") or VOTES_DEFAULT, root)
    try:
        if args.cmd == "fit":
            fit_one(
                args.target,
                args.noise,
                args.out,
                args.faces,
                cfg,
                json.loads(args.classes),
                args.threads,
                log,
                args.resume or str(Path(args.out).with_suffix(".resume")),
            )
        else:
            setup_torch(args.threads, seed=None)
            test = load_public_test(net["train"]["path"], cfg["votes"], cfg["label_map"])
            res = score_model(args.model, test, cfg.get("occluders") or (), args.faces)
            write_text(args.out, json.dumps(res, indent=1) + "\n")
            log.info(
                "public_test accuracy %.4f, occlusion %s, λ AUROC %s",
                res["public_test"]["accuracy"],
                {k: round(v["accuracy"], 4) for k, v in res["occlusion"].items()},
                res["lambda_auroc"],
            )
    except EmoflowError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
