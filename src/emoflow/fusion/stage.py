"""Late fusion of one partition's experiments, for one fusion group.

A group (config ``fusion.groups.<name>``) selects experiments by modality and/or leaves
features out (``{modalities: [face]}``, ``{exclude_features: [fer]}``; ``{}`` = all).
:func:`emoflow.fusion.choose.choose` fits every method (weighted average with searched
weights, stacking) on the **validation** predictions and keeps the best by its
cross-validated validation score; that choice is applied to every split, so test is
scored once, with nothing chosen on it.

Writes ``fusion/{part}/{group}.json`` (the choice, per-method scores, val/test scores),
``fusion/{part}/{group}.parquet`` (fused probabilities, ``tables.predictions``) and
``fusion/{part}/{group}.submission.csv`` (test videos: ``video_id,label``).

``python -m emoflow.fusion.stage SPLITS CHOICE FUSED SUBMISSION --predictions P... --reports R...
--config JSON``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from emoflow import logs
from emoflow.errors import EmoflowError
from emoflow.evaluate.metrics import scores
from emoflow.fusion.choose import apply, choose
from emoflow.storage import read_table, write_table, write_text
from emoflow.tables import predictions as predictions_schema


def select(reports: dict[str, dict], group: dict) -> list[str]:
    """Experiment names of a group, from their classify reports (modality, feature)."""
    mods = group.get("modalities")
    out = [
        n
        for n, r in reports.items()
        if (not mods or r.get("modality") in mods) and r.get("feature") not in (group.get("exclude_features") or [])
    ]
    return sorted(out)


def load_predictions(paths: list[str], classes: list[str]) -> dict:
    cols = [f"p_{c}" for c in classes]
    out = {}  # experiment -> its predictions, rows sorted by video_id
    for p in paths:
        t = read_table(p).to_pandas()
        missing = [c for c in cols if c not in t]
        if missing:
            raise EmoflowError(f"{p}: no columns {missing} (another label space?)")
        out[Path(p).stem] = t.sort_values("video_id").reset_index(drop=True)
    ids = {tuple(t["video_id"]) for t in out.values()}
    if len(ids) > 1:
        raise EmoflowError("the experiments' predictions cover different videos; rerun them on one partition")
    return out


def run(splits_path, pred_paths, report_paths, cfg, log) -> tuple[dict, dict]:
    classes, group = cfg["classes"], cfg.get("group", {})
    reports = {Path(p).stem: json.loads(Path(p).read_text()) for p in report_paths}
    names = select(reports, group)
    if not names:
        raise EmoflowError(f"fusion group {cfg.get('name')!r} selects no experiment ({group})")
    preds = load_predictions([p for p in pred_paths if Path(p).stem in names], classes)
    first = preds[names[0]]
    sp = read_table(splits_path).to_pandas().set_index("video_id").loc[first["video_id"]]
    split = first["split"].to_numpy()
    y = np.array([classes.index(lab) for lab in first["label"]])
    probs = {n: preds[n][[f"p_{c}" for c in classes]].to_numpy() for n in names}
    val = split == "val"
    if len(np.unique(y[val])) < 2:
        raise EmoflowError(f"{splits_path}: the validation split needs at least 2 classes to choose a fusion")
    ev = cfg.get("evaluation", {})
    log.info("fusing %d experiments on %d validation videos: %s", len(names), val.sum(), ", ".join(names))
    present = {n: ~preds[n]["missing"].to_numpy(bool) for n in names}
    choice = choose(
        {n: p[val] for n, p in probs.items()},
        y[val],
        sp["speaker"].to_numpy()[val],
        methods=tuple(cfg.get("methods", ("weighted", "stacking"))),
        metric=ev.get("metric", "accuracy"),
        folds=int(cfg.get("folds", 5)),
        seed=int(ev.get("seed", 0)),
        search_kw={"step": float(cfg.get("step", 0.05))},
        present={n: m[val] for n, m in present.items()},
    )
    fused = apply(choice, probs, present)
    pred = fused.argmax(1)
    choice["scores"] = {
        s: scores(y[split == s], pred[split == s], len(classes)) for s in ("train", "val", "test") if (split == s).any()
    }
    choice["group"] = {"name": cfg.get("name"), **group}
    log.info(
        "chose %s (cv %s %.3f); val %.3f, test %s",
        choice["method"],
        choice["metric"],
        next(r for r in choice["table"] if r["method"] == choice["method"])[f"cv_{choice['metric']}"],
        choice["scores"]["val"]["accuracy"],
        choice["scores"].get("test", {}).get("accuracy"),
    )
    columns = {
        "video_id": first["video_id"].tolist(),
        "split": split.tolist(),
        "label": first["label"].tolist(),
        "missing": [False] * len(split),
    } | {f"p_{c}": fused[:, i] for i, c in enumerate(classes)}
    return choice, columns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow fusion", description=__doc__.split("\n\n")[0])
    ap.add_argument("splits")
    ap.add_argument("choice", help="output: fusion/{part}/{group}.json")
    ap.add_argument("fused", help="output: fusion/{part}/{group}.parquet")
    ap.add_argument("submission", help="output: fusion/{part}/{group}.submission.csv")
    ap.add_argument("--predictions", nargs="+", required=True)
    ap.add_argument("--reports", nargs="+", required=True, help="the experiments' classify reports (modality, feature)")
    ap.add_argument("--config", required=True, help="JSON: classes, group, methods, step, evaluation")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.fusion")
    cfg = json.loads(args.config)
    try:
        choice, columns = run(args.splits, args.predictions, args.reports, cfg, log)
    except (EmoflowError, ValueError) as exc:
        print(f"error: fusion {cfg.get('name')}: {exc}", file=sys.stderr)
        return 2
    classes = cfg["classes"]
    write_table(pa.table(columns), args.fused, predictions_schema(classes))
    test = [i for i, s in enumerate(columns["split"]) if s == "test"]
    fused = np.column_stack([columns[f"p_{c}"] for c in classes])
    lines = ["video_id,label"] + [f"{columns['video_id'][i]},{classes[int(fused[i].argmax())]}" for i in test]
    write_text(args.submission, "\n".join(lines) + "\n")
    write_text(args.choice, json.dumps(choice, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
