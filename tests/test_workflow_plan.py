"""emoflow.workflow.plan: what a config implies (feature tables, fits, experiments, config
slices, bundle), checked in plain Python on the default (demo) config, without Snakemake.
The dry runs of tests/test_workflow_layout.py and the demo run check the rules built on it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from emoflow.config import load_config
from emoflow.errors import EmoflowError
from emoflow.workflow.plan import Plan, fits_on_labels

REPO = Path(__file__).resolve().parents[1]


def config(tmp_path, **overrides):
    cfg = load_config(
        [REPO / "config.yaml"], overrides={"outdir": str(tmp_path / "results/demo"), **overrides}, base_dir=REPO
    )
    return cfg


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    cfg = config(tmp_path_factory.mktemp("plan"))
    before = copy.deepcopy(cfg)
    plan = Plan(cfg)
    assert cfg == before  # a plan never changes its config
    return plan


def test_fixed_scheme_keeps_one_table_per_feature(fixed):
    assert fixed.parts == ["main"] and not fixed.kfold
    assert set(fixed.features) == set(fixed.features_all) and fixed.fold_of == {}
    assert fixed.feature_of("frame_cnn", "main") == "frame_cnn"
    assert fixed.fitted_model("frame_cnn").endswith("results/demo/models/frame_cnn/frame_cnn.json")
    # the demo's frame CNN learns from the run's own crops and labels
    assert fixed.fit_manifest("frame_cnn") == [fixed.manifest]
    assert len(fixed.train_crops("frame_cnn")) == 4 * len(fixed.shards)
    assert fixed.feature_model("hog") == []  # not fitted


def test_config_slices_are_the_entry_and_what_the_stage_needs(fixed):
    exp = next(iter(fixed.experiments))
    s = json.loads(fixed.experiment_config(exp))
    assert s["classes"] == fixed.classes and s["feature"] == fixed.experiments[exp]["feature"]
    assert set(s["evaluation"]) == {"metric", "seed", "cv_folds"}
    f = json.loads(fixed.feature_config("frame_cnn"))
    assert f["features"]["frame_cnn"]["model"] == fixed.fitted_model("frame_cnn")
    assert set(f["crops"]) == {"color_size", "grey_size", "margin"}  # how the crops were made
    assert "crops" not in json.loads(fixed.feature_config("egemaps"))  # an audio feature
    g = json.loads(fixed.fusion_config("all"))
    assert g["name"] == "all" and g["classes"] == fixed.classes


def test_bundle_holds_the_fusion_groups_experiments(fixed):
    part, group, experiments = fixed.bundle_choice()
    assert (part, group) == ("main", "all") and experiments
    spec = json.loads(fixed.bundle_spec({"frames": 2, "audio": 1, "faces": 2, "asr": 1, "features": 1}))
    assert set(spec["experiments"]) == set(experiments)
    for name in experiments:
        assert spec["experiments"][name]["model"] in fixed.bundle_inputs()
    assert spec["stages"]["faces"]["hints"] is None


def test_kfold_fits_label_fitted_extractors_once_per_fold(tmp_path):
    fer = {"extractor": "frame_cnn", "train": {"source": "fer2013", "path": "{data_root}/fer.parquet"}}
    cfg = config(tmp_path, evaluation={"scheme": "kfold", "folds": 3}, features={"fer_cnn": fer})
    before = copy.deepcopy(cfg)
    plan = Plan(cfg)
    assert cfg == before
    assert plan.parts == ["f0", "f1", "f2"] and plan.kfold
    # the demo's crops-trained frame CNN reads the labels: one table per fold ...
    assert plan.per_fold["frame_cnn"] == {p: f"frame_cnn__{p}" for p in plan.parts}
    assert "frame_cnn" not in plan.features and plan.fold_of["frame_cnn__f1"] == "f1"
    assert plan.fit_manifest("frame_cnn__f1") == [f"{plan.out}/splits/f1.csv"]
    assert plan.feature_of("frame_cnn", "f2") == "frame_cnn__f2"
    # ... a FER2013-trained one does not: one table, no manifest (cacheable across projects)
    assert "fer_cnn" in plan.features and plan.feature_of("fer_cnn", "f0") == "fer_cnn"
    assert plan.fit_manifest("fer_cnn") == [] and plan.train_crops("fer_cnn") == []
    assert not fits_on_labels(fer, plan.features_all)
    # an extractor without a fit is shared by every fold
    assert plan.feature_of("hog", "f0") == "hog"


def test_bad_config_names_its_source(tmp_path):
    cfg = config(tmp_path, e2e={"net": {"audio": "nope", "face": "frame_cnn"}})
    with pytest.raises(EmoflowError, match=r"presets\.yaml: e2e\.net: audio: 'nope' is not a configured feature"):
        Plan(cfg, source="presets.yaml")
    cfg = config(tmp_path, bundle={"part": "f7"})
    with pytest.raises(EmoflowError, match="bundle.part: 'f7' is not a partition"):
        Plan(cfg).bundle_choice()


def test_fit_inputs_are_the_kinds_the_registry_names(fixed, tmp_path):
    from emoflow.features import registry

    for table, params in fixed.features.items():
        ent = registry.entry(params["extractor"])
        if not ent.fitted or params.get("model_from"):
            continue
        inputs = fixed.fit_inputs(table)
        assert list(inputs) == list(ent.fit.inputs), table
        assert json.loads(fixed.fit_config(table))["data_root"] == fixed.root
    assert fixed.fit_inputs("text_tfidf")["transcripts"] == fixed.per_shard(fixed.L.text())
    assert fixed.fit_inputs("audio_cnn")["audio"] == fixed.audio_inputs()
    # the expression embedding's trunk: its trunk entry's fit, JSON and weights; framing passed on
    cfg = config(tmp_path, features={"expression_embedding": {"extractor": "expression_embedding"}})
    plan = Plan(cfg)
    trunk = plan.fit_inputs("expression_embedding")["trunk"]
    assert trunk == [plan.fitted_model("frame_cnn"), plan.fitted_model("frame_cnn")[: -len(".json")] + ".pt"]
    framing = json.loads(plan.fit_config("expression_embedding"))["trunk_framing"]
    assert framing == plan.features["frame_cnn"].get("framing")
    bad = config(tmp_path, features={"expression_embedding": {"extractor": "expression_embedding", "trunk": "hog"}})
    with pytest.raises(EmoflowError, match="trunk: 'hog' is not a frame_cnn entry"):
        Plan(bad).fit_inputs("expression_embedding")
