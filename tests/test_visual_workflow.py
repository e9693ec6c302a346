"""Every visual extractor, run by the workflow on the demo: complete, NaN-free, aligned
with the face stage (a row per face frame, an explicit missing row per faceless video),
and the trained visual models learned something (validation above chance)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from emoflow.features import registry
from emoflow.features.base import read_features
from emoflow.storage import read_table
from conftest import REPO

CFG = yaml.safe_load((REPO / "config.yaml").read_text())
VISUAL = sorted(n for n, p in CFG["features"].items() if p and registry.entry(p["extractor"]).input == "crops")


def _concat(paths):
    return pd.concat([read_table(p).to_pandas() for p in paths], ignore_index=True)


@pytest.mark.parametrize("name", VISUAL)
def test_visual_features_cover_every_video_and_face_frame(demo_run, name):
    shards = sorted(p.stem for p in (demo_run / "shards").glob("*.parquet"))
    videos = _concat([demo_run / "shards" / f"{s}.parquet" for s in shards])["video_id"]
    crops = _concat([demo_run / "crops" / f"{s}.parquet" for s in shards])[["video_id", "frame"]]
    metas, xs = zip(*(read_features(demo_run / "features" / name / f"{s}.parquet") for s in shards))
    meta, x = pd.concat(metas, ignore_index=True), np.concatenate(xs)
    assert np.isfinite(x).all()
    assert set(meta["video_id"]) == set(videos)  # nobody silently lost
    faceless = set(videos) - set(crops["video_id"])
    assert set(meta.loc[meta["missing"], "video_id"]) == faceless
    assert not np.any(x[meta["missing"].to_numpy()])  # missing rows are zeros
    present = meta[~meta["missing"]]
    level = registry.load(CFG["features"][name]["extractor"]).level
    if level == "frame":  # exactly the frames with a face, by index
        got = set(zip(present["video_id"], present["frame"]))
        assert got == set(zip(crops["video_id"], crops["frame"]))
    elif level == "video":
        assert present["video_id"].is_unique
    assert np.abs(x[~meta["missing"].to_numpy()]).sum(1).min() > 0  # real values, not zero rows


@pytest.mark.parametrize("name", [n for n in VISUAL if registry.entry(CFG["features"][n]["extractor"]).fitted])
def test_trained_visual_models_beat_chance_on_held_out_training_speakers(demo_run, name):
    meta = json.loads((demo_run / "models" / CFG["features"][name]["extractor"] / f"{name}.json").read_text())
    acc = meta.get("val_accuracy", meta.get("holdout_video_accuracy"))  # frame CNN / C3D: held-out training speakers
    print(f"{name}: held-out accuracy {acc:.3f} (chance {meta['chance']:.3f})")
    assert acc > meta["chance"] + 0.2
