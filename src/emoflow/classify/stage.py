"""One experiment (feature x encoding x classifier) of one evaluation partition: fit on
the partition's training split, predict class probabilities for every video.

Inputs: the partition table (``splits/{part}.parquet``) and the feature, either its
per-shard tables (video-level features; frame-level ones for sequence models) or its
encoded video vectors (``encoded/{part}/{feature}.{encoding}.parquet``).

* scikit-learn classifiers (:mod:`emoflow.classify.models`): hyper-parameters by
  speaker-grouped cross-validation on the training split, refitted on all of it.
* sequence models (:mod:`emoflow.classify.sequence`, classifier ``type: sequence``): the
  training split's speakers are divided once more (a seeded ``holdout`` fraction of
  them, default 0.2) to pick the epoch, so the validation split stays untouched for
  fusion.

``normalize: speaker`` (:mod:`emoflow.classify.speaker_norm`) standardises each video vector
over its speaker's videos first; the population statistics it keeps for speakers with too
few videos are fitted on the training speakers.

Videos whose feature is missing (no face, no audio, empty transcript) are left out of
training; their predictions are the training split's class prior, flagged ``missing``,
so fusion can tell an abstaining experiment from a confident one.

Writes ``predictions/{part}/{experiment}.parquet`` (``tables.predictions``), the model
(a skops file for scikit-learn, a torch file for sequence models) and a JSON report: spec, chosen
hyper-parameters and their cross-validation score, and accuracy / UAR / macro-F1 on
train, val and test.  Choices never look at val or test.

``python -m emoflow.classify.stage EXPERIMENT SPLITS PRED REPORT MODEL --inputs FEATURE_TABLES...
--config JSON [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pyarrow as pa

from emoflow import logs
from emoflow.classify import speaker_norm
from emoflow.classify.experiment import Experiment
from emoflow.errors import EmoflowError
from emoflow.evaluate.metrics import scores
from emoflow.features.read import FeatureSet, read
from emoflow.storage import read_table, write_table, write_text
from emoflow.tables import predictions


def run(
    experiment: str, splits_path: str, inputs: list[str], cfg: dict, threads: int, log
) -> tuple[dict, dict, object]:
    """(predictions columns, report, fitted :class:`Experiment`) of one experiment."""
    classes, spec = cfg["classes"], cfg["classifier"]
    evaluation = cfg.get("evaluation", {})
    metric = evaluation.get("metric", "accuracy")
    sp = read_table(splits_path).to_pandas()
    sp = sp[sp["label"].isin(classes)]
    ids = sp["video_id"].tolist()
    y = np.array([classes.index(lab) for lab in sp["label"]])
    split, groups = sp["split"].to_numpy(), sp["speaker"].to_numpy()
    fs: FeatureSet = read(inputs)
    sequence = spec["type"] == "sequence"
    if sequence and fs.level == "video":
        raise EmoflowError(
            f"{experiment}: a sequence classifier needs a frame-level feature, {inputs[0]} is video level"
        )
    if not sequence and fs.level != "video":
        raise EmoflowError(f"{experiment}: {inputs[0]} is {fs.level} level: give the experiment an encoding")
    if sequence:
        missing = np.array([v not in fs.sequences for v in ids])
    else:
        X, missing = fs.matrix(ids)
    tr = (split == "train") & ~missing
    normalize = {"by": cfg.get("normalize") or "none"}
    if normalize["by"] == "speaker":
        if sequence:
            raise EmoflowError(
                f"{experiment}: normalize: speaker applies to video vectors, not to a sequence model's frames"
            )
        X, normalize = speaker_norm.fit_transform(X, ids, groups, ~missing, tr)
        log.info(
            "%s: speaker-normalised (%d speakers with their own statistics, %d videos with the population's)",
            experiment,
            normalize["speakers_own"],
            normalize["videos_population"],
        )
    if len(np.unique(y[tr])) < 2:
        raise EmoflowError(f"{experiment}: fewer than 2 classes among the training videos with this feature")
    log.info(
        "%s: %d train videos with the feature (%d missing), dim %d, %s",
        experiment,
        tr.sum(),
        ((split == "train") & missing).sum(),
        fs.dim,
        spec["type"],
    )
    t0 = time.time()
    have = ~missing
    tr_idx = np.flatnonzero(tr)
    if sequence:
        exp, fit_report = Experiment.fit(
            classes,
            spec,
            y[tr_idx],
            groups[tr_idx],
            sequences=[fs.sequences[ids[i]] for i in tr_idx],
            evaluation=evaluation,
            threads=threads,
            log=log.info,
        )
        probs = exp.predict_proba(len(ids), have, sequences=[fs.sequences[ids[i]] for i in np.flatnonzero(have)])
    else:
        exp, fit_report = Experiment.fit(
            classes, spec, y[tr], groups[tr], X=X[tr], evaluation=evaluation, threads=threads
        )
        probs = exp.predict_proba(len(ids), have, X=X[have])
        log.info("%s: best %s, cv %s %.3f", experiment, fit_report["best_params"], metric, fit_report["cv_score"])
    pred = probs.argmax(1)
    split_scores = {}
    for s in ("train", "val", "test"):
        m = split == s
        if m.any():
            split_scores[s] = scores(y[m], pred[m], len(classes)) | {"missing": int((m & missing).sum())}
    report = {
        "experiment": experiment,
        **{k: cfg.get(k) for k in ("feature", "encoding", "modality")},
        "classifier": spec,
        "normalize": normalize,
        "level": fs.level,
        "dim": fs.dim,
        "fit": fit_report,
        "scores": split_scores,
        "fit_seconds": round(time.time() - t0, 2),
    }
    if "val" in split_scores:
        log.info(
            "%s: val accuracy %.3f, UAR %.3f", experiment, split_scores["val"]["accuracy"], split_scores["val"]["uar"]
        )
    columns = {"video_id": ids, "split": split.tolist(), "label": sp["label"].tolist(), "missing": missing.tolist()}
    columns |= {f"p_{c}": probs[:, i] for i, c in enumerate(classes)}
    return columns, report, exp


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow classify", description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment")
    ap.add_argument("splits", help="splits/{part}.parquet")
    ap.add_argument("predictions", help="output: predictions/{part}/{experiment}.parquet")
    ap.add_argument("report", help="output: the model's JSON report")
    ap.add_argument(
        "model", help="output: the fitted model (skops file for scikit-learn, torch file for sequence models)"
    )
    ap.add_argument("--inputs", nargs="+", required=True, help="the feature's shard tables or its encoded table")
    ap.add_argument(
        "--config", required=True, help="JSON: classes, classifier spec, evaluation, feature/encoding/modality"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.classify")
    cfg = json.loads(args.config)
    try:
        columns, report, exp = run(args.experiment, args.splits, args.inputs, cfg, args.threads, log)
    except (EmoflowError, ValueError) as exc:
        print(f"error: experiment {args.experiment}: {exc}", file=sys.stderr)
        return 2
    report["model_format"] = exp.model_format
    exp.save(args.model, {"experiment": args.experiment, "classes": cfg["classes"]})
    write_table(pa.table(columns), args.predictions, predictions(cfg["classes"]))
    write_text(args.report, json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
