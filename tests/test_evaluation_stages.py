"""Partitions, encoding, classifiers and fusion as stages: speaker independence, and no
test-split (or validation-split) information in any fitted step."""

import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from emoflow.classify import stage as classify_stage
from emoflow.dataset import splits
from emoflow.encode import stage as encode_stage
from emoflow.errors import EmoflowError
from emoflow.fusion import stage as fusion_stage
from emoflow.storage import read_table, write_table
from emoflow.tables import SPLITS, features

LOG = logging.getLogger("test")
CLASSES = ["happy", "sad", "surprise"]


def manifest(n_speakers=12, per=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        split = "train" if s < 8 else "val" if s < 10 else "test"
        for j in range(per):
            rows.append(
                {
                    "video_id": f"spk{s:02d}_{j}",
                    "path": "x.mp4",
                    "label": CLASSES[(s + j) % 3],
                    "split": split,
                    "speaker": f"spk{s:02d}",
                }
            )
    df = pd.DataFrame(rows)
    return df.sample(frac=1, random_state=int(rng.integers(1000))).reset_index(drop=True)


def test_fixed_partition_keeps_manifest_splits():
    m = manifest()
    p = splits.partition(m, "main", {"scheme": "fixed"})
    assert list(p.columns) == ["video_id", "label", "split", "speaker"]
    merged = p.merge(m, on="video_id", suffixes=("", "_m"))
    assert (merged["split"] == merged["split_m"]).all() and len(p) == len(m)


def test_kfold_is_speaker_independent_and_tests_every_video_once():
    m = manifest(n_speakers=10, per=4)
    ev = {"scheme": "kfold", "folds": 5, "seed": 0}
    parts = [splits.partition(m, p, ev) for p in splits.partitions(ev)]
    tested = pd.concat([p[p["split"] == "test"] for p in parts])
    assert sorted(tested["video_id"]) == sorted(m["video_id"])  # each video tested exactly once
    for p in parts:
        splits.check_disjoint(p)
        assert set(p["split"]) == {"train", "val", "test"}
        # validation of partition i is the test fold of partition i+1
    for i, p in enumerate(parts):
        nxt = parts[(i + 1) % len(parts)]
        assert set(p.loc[p["split"] == "val", "video_id"]) == set(nxt.loc[nxt["split"] == "test", "video_id"])
    again = [splits.partition(m, p, ev) for p in splits.partitions(ev)]
    assert all(a.equals(b) for a, b in zip(parts, again))  # deterministic


def test_kfold_needs_enough_speakers():
    with pytest.raises(EmoflowError, match="at least 5 speakers"):
        splits.partition(manifest(n_speakers=4), "f0", {"scheme": "kfold", "folds": 5})


# --------------------------------------------------------------------------- tiny feature tables


def _splits_file(tmp_path, m):
    path = tmp_path / "splits.parquet"
    write_table(
        pa.Table.from_pandas(splits.partition(m, "main", {"scheme": "fixed"}), preserve_index=False), path, SPLITS
    )
    return path


def _frame_table(path, m, dim=6, seed=0, perturb_split=None, missing=()):
    """Frame-level features whose mean depends on the class; ``perturb_split``'s videos get
    scrambled values (what must not change any fitted step)."""
    rng = np.random.default_rng(seed)
    rows = []
    centers = np.eye(3, dim) * 3
    for r in m.sort_values("video_id").itertuples():
        if r.video_id in missing:
            rows.append({"video_id": r.video_id, "frame": 0, "time": 0.0, "missing": True, "x": [0.0] * dim})
            continue
        n = 5 + (hash(r.video_id) % 7)
        x = centers[CLASSES.index(r.label)] + rng.normal(0, 1.0, (n, dim))
        if r.split == perturb_split:
            x = np.random.default_rng(abs(hash(r.video_id)) % 2**32 + 1).normal(50, 30, (n, dim))
        rows += [
            {"video_id": r.video_id, "frame": k, "time": k * 0.2, "missing": False, "x": x[k].tolist()}
            for k in range(n)
        ]
    write_table(pa.Table.from_pylist(rows), path, features(dim, "frame"))
    return path


def _classify_cfg(ctype="logistic", normalize="none", **extra):
    return {
        "classes": CLASSES,
        "classifier": {"type": ctype, **extra},
        "evaluation": {"metric": "accuracy", "seed": 0, "cv_folds": 4},
        "feature": "toy",
        "encoding": "fv",
        "modality": "face",
        "normalize": normalize,
    }


@pytest.mark.parametrize("normalize", ["none", "speaker"])
@pytest.mark.parametrize("perturb", ["val", "test"])
def test_encoder_and_classifier_never_see_val_or_test(tmp_path, perturb, normalize):
    m = manifest()
    sp = _splits_file(tmp_path, m)
    clean = _frame_table(tmp_path / "clean.parquet", m)
    dirty = _frame_table(tmp_path / "dirty.parquet", m, perturb_split=perturb)
    spec = {"type": "fisher", "clusters": 2, "pca": 3}
    t_clean, enc_clean = encode_stage.run(str(sp), [str(clean)], spec, LOG)
    t_dirty, enc_dirty = encode_stage.run(str(sp), [str(dirty)], spec, LOG)
    # the GMM and PCA are fitted on training frames only
    np.testing.assert_array_equal(enc_clean.means, enc_dirty.means)
    np.testing.assert_array_equal(enc_clean._pca["components"], enc_dirty._pca["components"])
    X_clean = np.asarray(t_clean["x"].to_pylist())
    X_dirty = np.asarray(t_dirty["x"].to_pylist())
    ids = t_clean["video_id"].to_pylist()
    split_of = dict(zip(m["video_id"], m["split"]))
    train = np.array([split_of[v] == "train" for v in ids])
    np.testing.assert_array_equal(X_clean[train], X_dirty[train])
    assert not np.allclose(X_clean[~train], X_dirty[~train])  # the perturbation is real
    # classifier (scaler + model) fitted on train rows only: identical train-split probabilities
    for t, name in ((t_clean, "c"), (t_dirty, "d")):
        write_table(t, tmp_path / f"enc_{name}.parquet")
    cfg = _classify_cfg(grid={"C": [0.01, 1]}, normalize=normalize)
    cols_c, rep_c, _ = classify_stage.run("x", str(sp), [str(tmp_path / "enc_c.parquet")], cfg, 1, LOG)
    cols_d, rep_d, _ = classify_stage.run("x", str(sp), [str(tmp_path / "enc_d.parquet")], cfg, 1, LOG)
    assert (
        rep_c["normalize"] == rep_d["normalize"] and rep_c["normalize"]["by"] == normalize
    )  # population stats: train only
    assert rep_c["fit"]["best_params"] == rep_d["fit"]["best_params"]
    assert rep_c["fit"]["cv_score"] == rep_d["fit"]["cv_score"]
    tr = np.array([s == "train" for s in cols_c["split"]])
    np.testing.assert_allclose(np.asarray(cols_c["p_happy"])[tr], np.asarray(cols_d["p_happy"])[tr])
    assert rep_c["scores"]["val"]["accuracy"] >= 0.8  # the classes are separable: it learned


def test_classifier_missing_videos_get_the_prior_and_a_flag(tmp_path):
    m = manifest()
    sp = _splits_file(tmp_path, m)
    gone = {"spk00_0", "spk10_1"}
    tab = _frame_table(tmp_path / "f.parquet", m, missing=gone)
    t, _ = encode_stage.run(str(sp), [str(tab)], {"type": "meanstd"}, LOG)
    assert set(v for v, miss in zip(t["video_id"].to_pylist(), t["missing"].to_pylist()) if miss) == gone
    write_table(t, tmp_path / "e.parquet")
    cols, rep, _ = classify_stage.run("x", str(sp), [str(tmp_path / "e.parquet")], _classify_cfg(), 1, LOG)
    probs = np.column_stack([cols[f"p_{c}"] for c in CLASSES])
    flagged = {v for v, miss in zip(cols["video_id"], cols["missing"]) if miss}
    assert flagged == gone
    train_labels = m.loc[(m["split"] == "train") & ~m["video_id"].isin(gone), "label"]
    prior = train_labels.value_counts(normalize=True).reindex(CLASSES).to_numpy()
    for v in gone:
        np.testing.assert_allclose(probs[cols["video_id"].index(v)], prior)
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(1), 1)
    assert rep["scores"]["test"]["missing"] == 1


def test_sequence_classifier_stage_learns_and_keeps_val_untouched(tmp_path):
    m = manifest()
    sp = _splits_file(tmp_path, m)
    clean = _frame_table(tmp_path / "clean.parquet", m)
    dirty = _frame_table(tmp_path / "dirty.parquet", m, perturb_split="val")
    cfg = _classify_cfg("sequence", head="netvlad", clusters=3, epochs=30, patience=30, batch_size=8, lr=3e-3)
    cfg["encoding"] = None
    cols_c, rep_c, _ = classify_stage.run("x", str(sp), [str(clean)], cfg, 1, LOG)
    cols_d, rep_d, _ = classify_stage.run("x", str(sp), [str(dirty)], cfg, 1, LOG)
    assert rep_c["fit"]["best_epoch"] == rep_d["fit"]["best_epoch"]  # epoch chosen on held-out *training* speakers
    tr = np.array([s == "train" for s in cols_c["split"]])
    np.testing.assert_allclose(np.asarray(cols_c["p_sad"])[tr], np.asarray(cols_d["p_sad"])[tr], atol=1e-6)
    assert rep_c["scores"]["val"]["accuracy"] >= 0.8


def test_fusion_stage_choice_ignores_test_predictions(tmp_path):
    m = manifest()
    sp = _splits_file(tmp_path, m)
    ids = sorted(m["video_id"])
    lab = m.set_index("video_id").loc[ids]
    y = np.array([CLASSES.index(v) for v in lab["label"]])
    rng = np.random.default_rng(0)

    def write(name, probs, modality, where):
        cols = {
            "video_id": ids,
            "split": lab["split"].tolist(),
            "label": lab["label"].tolist(),
            "missing": [False] * len(ids),
        }
        cols |= {f"p_{c}": probs[:, i] for i, c in enumerate(CLASSES)}
        from emoflow.tables import predictions

        write_table(pa.table(cols), where / f"{name}.parquet", predictions(CLASSES))
        (where / f"{name}.json").write_text(json.dumps({"modality": modality, "feature": name}))

    def noisy(acc, seed):
        r = np.random.default_rng(seed)
        p = r.dirichlet(np.ones(3), len(ids))
        right = r.random(len(ids)) < acc
        p[right, y[right]] += 1.0
        return p / p.sum(1, keepdims=True)

    a, b = noisy(0.8, 1), noisy(0.6, 2)
    runs = {}
    for tag in ("clean", "dirty"):
        d = tmp_path / tag
        d.mkdir()
        b2 = b.copy()
        if tag == "dirty":  # scramble test rows of one experiment
            test = (lab["split"] == "test").to_numpy()
            b2[test] = rng.dirichlet(np.ones(3), test.sum())
        write("a", a, "face", d)
        write("b", b2, "audio", d)
        cfg = {
            "name": "all",
            "group": {},
            "classes": CLASSES,
            "methods": ["weighted", "stacking"],
            "step": 0.1,
            "folds": 3,
            "evaluation": {"metric": "accuracy", "seed": 0},
        }
        runs[tag] = fusion_stage.run(
            str(sp), [str(d / "a.parquet"), str(d / "b.parquet")], [str(d / "a.json"), str(d / "b.json")], cfg, LOG
        )
    (c_clean, _), (c_dirty, _) = runs["clean"], runs["dirty"]
    assert c_clean["method"] == c_dirty["method"]
    assert c_clean["methods"] == c_dirty["methods"]  # weights / stacker identical
    assert c_clean["scores"]["val"] == c_dirty["scores"]["val"]
    # a group selecting one modality fuses only that modality's experiments
    assert fusion_stage.select(
        {"a": {"modality": "face", "feature": "a"}, "b": {"modality": "audio", "feature": "b"}},
        {"modalities": ["audio"]},
    ) == ["b"]
    assert fusion_stage.select({"a": {"modality": "face", "feature": "fer"}}, {"exclude_features": ["fer"]}) == []


def test_classify_stage_rejects_frame_features_without_encoding(tmp_path):
    m = manifest()
    sp = _splits_file(tmp_path, m)
    tab = _frame_table(tmp_path / "f.parquet", m)
    with pytest.raises(EmoflowError, match="give the experiment an encoding"):
        classify_stage.run("x", str(sp), [str(tab)], _classify_cfg(), 1, LOG)
    assert read_table(tab).num_rows > 0
