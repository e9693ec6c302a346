"""Encoding, experiments, fusion and report as run by the workflow: on the demo run (every
configured experiment, each fusion group, the report), and the k-fold DAG (every fitted
step once per fold)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml

from conftest import REPO, job_counts, snakemake
from emoflow.config import load_config
from emoflow.storage import read_table

CFG = load_config([REPO / "config.yaml"])
CLASSES = CFG["label_spaces"][CFG["dataset"]["label_space"]]


def test_every_experiment_predicts_every_video_with_probabilities(demo_run):
    splits = read_table(demo_run / "splits" / "main.parquet").to_pandas()
    for name in CFG["experiments"]:
        pred = read_table(demo_run / "predictions" / "main" / f"{name}.parquet").to_pandas()
        assert sorted(pred["video_id"]) == sorted(splits["video_id"]), name
        p = pred[[f"p_{c}" for c in CLASSES]].to_numpy()
        assert np.isfinite(p).all() and np.allclose(p.sum(1), 1), name
        report = json.loads((demo_run / "models" / "classify" / "main" / f"{name}.json").read_text())
        assert set(report["scores"]) == {"train", "val", "test"}
        assert (demo_run / "models" / "classify" / "main" / f"{name}.model").stat().st_size > 0


def test_summary_has_every_experiment_and_fusion_group(demo_run):
    summary = pd.read_csv(demo_run / "report" / "summary.csv")
    systems = set(summary["system"])
    assert set(CFG["experiments"]) <= systems
    assert {f"fusion:{g}" for g in CFG["fusion"]["groups"]} <= systems
    seq = [n for n, e in CFG["experiments"].items() if CFG["classifiers"][e["classifier"]]["type"] == "sequence"]
    heads = {CFG["classifiers"][CFG["experiments"][n]["classifier"]]["head"] for n in seq}
    assert {"lstm", "gru", "netvlad", "netrvlad", "softdbow", "netfv"} <= heads  # a validation row per head
    assert summary.loc[summary["system"].isin(seq), "val_accuracy"].notna().all()
    for png in ["scores.png", "fusion_weights.png", *[f"confusion_{g}.png" for g in CFG["fusion"]["groups"]]]:
        assert (demo_run / "report" / png).stat().st_size > 1000, png


def test_fusion_learns_on_the_demo_and_writes_a_submission(demo_run):
    choice = json.loads((demo_run / "fusion" / "main" / "all.json").read_text())
    assert choice["method"] in CFG["fusion"]["methods"]
    assert choice["scores"]["val"]["accuracy"] > 1 / len(CLASSES) + 0.2  # the demo's classes are learnable
    sub = pd.read_csv(demo_run / "fusion" / "main" / "all.submission.csv")
    splits = read_table(demo_run / "splits" / "main.parquet").to_pandas()
    assert sorted(sub["video_id"]) == sorted(splits.loc[splits["split"] == "test", "video_id"])
    assert set(sub["label"]) <= set(CLASSES)


def test_kfold_fits_every_trained_step_once_per_fold(tmp_path):
    folds = 3
    preset = tmp_path / "kfold.yaml"
    preset.write_text(yaml.safe_dump({"outdir": "results/kfold", "evaluation": {"scheme": "kfold", "folds": folds}}))
    dry = snakemake(REPO, tmp_path, "-n", "--configfile", str(preset))
    counts = job_counts(dry.stdout)
    fitted = [
        p["extractor"] for p in CFG["features"].values() if p["extractor"] in ("tfidf", "audio_cnn", "c3d", "frame_cnn")
    ]
    for ext in set(fitted):  # the demo's frame CNN learns from the training faces: per fold too
        assert counts[f"fit_{ext}"] == folds * fitted.count(ext), ext
    assert counts["splits"] == folds
    n_enc = len({(e["feature"], e["encoding"]) for e in CFG["experiments"].values() if e.get("encoding")})
    assert counts["encode"] == folds * n_enc
    assert counts["classify"] == folds * len(CFG["experiments"])
    assert counts["fusion"] == folds * len(CFG["fusion"]["groups"])
    # each fold's fits read that fold's partition (its training split), not the manifest
    for part in range(folds):
        assert f"results/kfold/splits/f{part}.csv" in dry.stdout
