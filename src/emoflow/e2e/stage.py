"""Rule ``e2e``: one e2e experiment of one evaluation partition.

Fits the seed ensemble on the partition's training split (epochs on held-out training
speakers, :mod:`emoflow.e2e.fit`) and writes, exactly like rule ``classify``:
``predictions/{part}/{experiment}.parquet`` (``tables.predictions``: every video of the
partition; a video with neither modality gets the training prior, flagged ``missing``),
``models/classify/{part}/{experiment}.json`` (the report fusion, the report stage and the
bundle read: ``feature`` is the experiment's own name, so a fusion group can leave it out
with ``exclude_features``; ``features`` the tables it reads; ``modality`` ``audio+face``;
``classifier`` the spec with ``type: e2e``; ``fit``; ``scores``; ``model_format: e2e``) and
``models/classify/{part}/{experiment}.model`` (:func:`emoflow.e2e.model.save`).  Validation
and test videos are only predicted.

``python -m emoflow.e2e.stage EXPERIMENT SPLITS PRED REPORT MODEL [--audio TABLES...]
[--face TABLES...] --config JSON [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from emoflow import logs
from emoflow.e2e import data as e2e_data
from emoflow.e2e import spec as e2e_spec
from emoflow.e2e.fit import fit_ensemble, predict_proba
from emoflow.e2e.model import save
from emoflow.errors import EmoflowError
from emoflow.evaluate.metrics import scores
from emoflow.storage import atomic_path, read_table, write_table, write_text
from emoflow.tables import predictions


def prior(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y, minlength=n_classes) / max(1, len(y))


def run(experiment: str, splits_path: str, audio: list[str], face: list[str], cfg: dict, threads: int, log):
    """(predictions columns, report, members) of one e2e experiment."""
    classes = cfg["classes"]
    spec = e2e_spec.resolve(cfg["e2e"])
    sp = read_table(splits_path).to_pandas()
    sp = sp[sp["label"].isin(classes)]
    ids = sp["video_id"].tolist()
    y = np.array([classes.index(lab) for lab in sp["label"]])
    split, groups = sp["split"].to_numpy(), sp["speaker"].to_numpy(object)
    data = e2e_data.load(audio if spec["audio"] else None, face if spec["face"] else None, e2e_spec.uses_tta(spec))
    present = data.present(ids)
    have = np.zeros(len(ids), bool)
    for p in present.values():
        have |= p
    tr = (split == "train") & have
    if len(np.unique(y[tr])) < 2:
        raise EmoflowError(f"{experiment}: fewer than 2 classes among the training videos with audio or a face")
    tr_idx = np.flatnonzero(tr)
    log.info(
        "%s: %d training videos (%s), branches %s, %d seeds, transforms %s",
        experiment,
        len(tr_idx),
        ", ".join(f"{k} {int(p[tr_idx].sum())}" for k, p in present.items()),
        data.dims(),
        len(spec["seeds"]),
        spec["tta"] or "none",
    )
    t0 = time.time()
    members = fit_ensemble(
        data, [ids[i] for i in tr_idx], y[tr_idx], groups[tr_idx], len(classes), spec, threads, log.info
    )
    fit_seconds = time.time() - t0
    probs = np.tile(prior(y[tr], len(classes)), (len(ids), 1))
    have_idx = np.flatnonzero(have)
    t1 = time.time()
    probs[have_idx] = predict_proba([m for m, _ in members], data, [ids[i] for i in have_idx], spec["tta"])
    predict_seconds = time.time() - t1
    pred = probs.argmax(1)
    split_scores = {}
    for s in ("train", "val", "test"):
        m = split == s
        if m.any():
            split_scores[s] = scores(y[m], pred[m], len(classes)) | {"missing": int((m & ~have).sum())}
    recs = [r for _, r in members]
    report = {
        "experiment": experiment,
        "kind": "e2e",
        "feature": experiment,
        "features": {"audio": cfg.get("audio_table"), "face": cfg.get("face_table"), "tta": cfg.get("tta_table")},
        "encoding": None,
        "modality": e2e_spec.modality(spec),
        "classifier": {"type": "e2e", **spec},
        "normalize": {"by": "none"},
        "level": "frame",
        "dim": data.dims(),
        "transforms": data.transforms,
        "fit": {
            "holdout_accuracy": float(np.mean([r["holdout_accuracy"] for r in recs])),
            "best_epochs": [r["best_epoch"] for r in recs],
            "members": recs,
        },
        "scores": split_scores,
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 3),
        "predict_seconds_per_clip": predict_seconds / max(1, len(have_idx)),
        "model_format": "e2e",
    }
    if "val" in split_scores:
        log.info(
            "%s: val accuracy %.3f, UAR %.3f", experiment, split_scores["val"]["accuracy"], split_scores["val"]["uar"]
        )
    columns = {"video_id": ids, "split": split.tolist(), "label": sp["label"].tolist(), "missing": (~have).tolist()}
    columns |= {f"p_{c}": probs[:, i] for i, c in enumerate(classes)}
    return columns, report, members


def model_meta(experiment: str, cfg: dict, report: dict) -> dict:
    """What the model file says about itself (the predictor reads the tables' names here)."""
    return {
        "experiment": experiment,
        "classes": cfg["classes"],
        "features": report["features"],
        "transforms": report["transforms"],
        "tta": report["classifier"]["tta"],
        "modality": report["modality"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow e2e", description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment")
    ap.add_argument("splits", help="splits/{part}.parquet")
    ap.add_argument("predictions", help="output: predictions/{part}/{experiment}.parquet")
    ap.add_argument("report", help="output: models/classify/{part}/{experiment}.json")
    ap.add_argument("model", help="output: models/classify/{part}/{experiment}.model (torch state dicts)")
    ap.add_argument("--audio", nargs="*", default=[], help="the audio feature's shard tables")
    ap.add_argument("--face", nargs="*", default=[], help="the face feature's shard tables, or its transform cache's")
    ap.add_argument(
        "--config", required=True, help="JSON: e2e (the entry), classes, audio_table, face_table, tta_table"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.e2e")
    cfg = json.loads(args.config)
    try:
        columns, report, members = run(args.experiment, args.splits, args.audio, args.face, cfg, args.threads, log)
    except (EmoflowError, ValueError) as exc:
        print(f"error: e2e experiment {args.experiment}: {exc}", file=sys.stderr)
        return 2
    with atomic_path(Path(args.model)) as tmp:
        save(members, tmp, model_meta(args.experiment, cfg, report))
    write_table(pa.table(columns), args.predictions, predictions(cfg["classes"]))
    write_text(args.report, json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
