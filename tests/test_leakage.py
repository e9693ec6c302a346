"""No fitted artefact may depend on the validation or test split.

Validation belongs to fusion and the report, test to the report alone.  For every fit of the
workflow -- frame CNN on the run's crops, C3D, audio CNN, TF-IDF, temporal encoders,
scikit-learn classifiers (with speaker normalisation), sequence models -- each test runs the
real entry point twice: once on a corpus, once on the same corpus with the val and test
*labels scrambled and their inputs replaced by noise*, and asserts the fitted artefact is
bit-for-bit the same (weights, vocabulary, encoder parameters, chosen hyper-parameters and
the classifier's probabilities on the training videos).  Each test also checks that the
scrambling was real (the val/test inputs or labels differ)."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image

from emoflow import tables
from emoflow.storage import read_table, write_rows, write_table

LOG = logging.getLogger("test")


def _scramble_labels(man: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Every val/test label moved to the next class (so none is what it was)."""
    out = man.copy()
    held = out["split"].isin(["val", "test"])
    out.loc[held, "label"] = [classes[(classes.index(lab) + 1) % len(classes)] for lab in out.loc[held, "label"]]
    return out


def _noise_jpeg(rng, size=112) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --------------------------------------------------------------------------- face crops (frame CNN, C3D)


@pytest.fixture(scope="module")
def crop_corpus(tmp_path_factory):
    """A face-stage shard of disc videos (test_c3d's), with speakers, val and test videos;
    and its scrambled twin: val/test labels moved, their crops replaced by noise."""
    from test_c3d import CLASSES, _write_shard

    tmp = tmp_path_factory.mktemp("leak_crops")
    manifest, paths = _write_shard(tmp, n_train=24, n_val=16)
    man = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    man = man[man["video_id"] != "noface"].reset_index(drop=True)
    man["split"] = ["train"] * 24 + ["val"] * 8 + ["test"] * 8
    man["speaker"] = [f"s{i // 2}" for i in range(len(man))]  # two videos a speaker
    man.to_csv(manifest, index=False)
    scr = tmp / "scrambled"
    scr.mkdir()
    _scramble_labels(man, CLASSES).to_csv(scr / "manifest.csv", index=False)
    held = set(man.loc[man["split"] != "train", "video_id"])
    crops = read_table(paths[2]).to_pylist()
    rng = np.random.default_rng(7)
    for r in crops:
        if r["video_id"] in held:
            r["color"] = _noise_jpeg(rng)
            r["grey"] = rng.integers(0, 255, 48 * 48, dtype=np.uint8).tobytes()
    scr_paths = list(paths)
    scr_paths[2] = str(scr / "crops.parquet")
    write_rows(crops, scr_paths[2], tables.CROPS)
    assert read_table(paths[2]).to_pylist() != crops  # the inputs really differ
    return (manifest, paths), (str(scr / "manifest.csv"), scr_paths), CLASSES


def _state_equal(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_c3d_fit_never_reads_val_or_test(crop_corpus, tmp_path):
    import torch

    from test_c3d import CLASSES, _fit

    assert crop_corpus[2] == CLASSES
    metas = []
    for i, (manifest, paths) in enumerate(crop_corpus[:2]):
        out = tmp_path / f"c3d{i}.json"
        meta = _fit(manifest, paths, out, epochs=3, patience=3)
        metas.append((meta, torch.load(out.with_suffix(".pt"), weights_only=True)))
    (m0, w0), (m1, w1) = metas
    assert m0["history"] == [{**h, "seconds": g["seconds"]} for h, g in zip(m1["history"], m0["history"])]
    assert m0["best_epoch"] == m1["best_epoch"] and m0["holdout_videos"] == 4  # 2 of the 12 training speakers
    _state_equal(w0["state_dict"] if "state_dict" in w0 else w0, w1["state_dict"] if "state_dict" in w1 else w1)


def test_frame_cnn_on_crops_never_reads_val_or_test(crop_corpus, tmp_path):
    import torch

    from emoflow.features.frame_cnn import fit

    params = {
        "arch": "vgg",
        "net": {"widths": [8, 8, 8, 8], "fc": 16},
        "size": 24,
        "epochs": 2,
        "seed": 0,
        "train": {"source": "crops"},
        "training": {"batch_size": 32, "precision": "fp32"},
        "device": "cpu",
    }
    runs = []
    for i, (manifest, paths) in enumerate(crop_corpus[:2]):
        out = tmp_path / f"fcnn{i}.json"
        meta = fit(manifest, str(out), paths, params, crop_corpus[2], str(tmp_path / f"resume{i}"), 1, LOG)
        runs.append((meta, torch.load(out.with_suffix(".pt"), weights_only=True)["state_dict"]))
    (m0, w0), (m1, w1) = runs
    assert m0["counts"] == m1["counts"] and m0["counts"]["test"] == 0
    assert [h["val_acc"] for h in m0["history"]] == [h["val_acc"] for h in m1["history"]]
    assert m0["mean"] == m1["mean"] and m0["std"] == m1["std"]
    _state_equal(w0, w1)


# --------------------------------------------------------------------------- audio CNN


def test_audio_cnn_fit_never_reads_val_or_test(tmp_path):
    pytest.importorskip("tensorflow")
    from emoflow.features.fit import main

    sr = 16000
    classes = ["low", "high"]
    rows, man = [], []
    rng = np.random.default_rng(0)
    splits = ["train"] * 12 + ["val"] * 4 + ["test"] * 4

    def wav(path, y):
        import soundfile as sf

        sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")

    variants = {}
    for name in ("clean", "scrambled"):
        d = tmp_path / name
        d.mkdir()
        variants[name] = d
    for i, split in enumerate(splits):
        vid, label = f"a{i:02d}", classes[i % 2]
        t = np.arange(int(1.2 * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (200 if label == "low" else 900) * rng.uniform(0.9, 1.1) * t)
        wav(variants["clean"] / f"{vid}.wav", y)
        noise = rng.normal(0, 0.3, len(t)) if split != "train" else y
        wav(variants["scrambled"] / f"{vid}.wav", noise)
        rows.append(
            {
                "video_id": vid,
                "has_audio": True,
                "wav": f"{vid}.wav",
                "sample_rate": sr,
                "n_samples": len(t),
                "duration_s": 1.2,
                "rms_dbfs": -13.0,
            }
        )
        man.append({"video_id": vid, "path": f"{vid}.mp4", "label": label, "split": split, "speaker": f"p{i // 2}"})
    man = pd.DataFrame(man)
    outs = []
    for name, d in variants.items():
        write_rows(rows, d / "index.parquet", tables.AUDIO)
        m = man if name == "clean" else _scramble_labels(man, classes)
        m.to_csv(d / "manifest.csv", index=False)
        out = d / "audio_cnn.json"
        argv = [
            "audio_cnn",
            str(out),
            "--manifest",
            str(d / "manifest.csv"),
            "--audio",
            str(d / "index.parquet"),
            str(d),
            "--config",
            json.dumps({"epochs": 2, "patience": 2, "seed": 0}),
            "--classes",
            json.dumps(classes),
            "--threads",
            "1",
        ]
        assert main(argv) == 0
        outs.append(json.loads(out.read_text()))
    a, b = outs
    assert a["holdout_clips"] == b["holdout_clips"] == 2 and a["train_clips"] == 10
    assert a["mean"] == b["mean"] and a["std"] == b["std"]
    assert a["history"] == b["history"]
    import tensorflow as tf

    wa = tf.keras.models.load_model(variants["clean"] / "audio_cnn.keras", compile=False).get_weights()
    wb = tf.keras.models.load_model(variants["scrambled"] / "audio_cnn.keras", compile=False).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))


# --------------------------------------------------------------------------- TF-IDF


def test_tfidf_fit_never_reads_val_or_test(tmp_path):
    from emoflow.features.fit import main

    words = {"happy": "wonderful great joy", "sad": "terrible grief tears"}
    man, tx = [], []
    for i in range(12):
        split = ["train", "train", "val", "test"][i % 4]
        label = ["happy", "sad"][i % 2]
        man.append({"video_id": f"t{i}", "path": "x.mp4", "label": label, "split": split, "speaker": f"p{i}"})
        tx.append(
            {
                "video_id": f"t{i}",
                "text": f"today {words[label]} indeed",
                "confidence": 0.9,
                "n_words": 4,
                "missing": False,
                "backend": "test",
            }
        )
    man = pd.DataFrame(man)
    scrambled_tx = [
        dict(r, text="zebra quantum xylophone" if man.loc[i, "split"] != "train" else r["text"])
        for i, r in enumerate(tx)
    ]
    outs = []
    for name, m, t in (("clean", man, tx), ("scr", _scramble_labels(man, ["happy", "sad"]), scrambled_tx)):
        m.to_csv(tmp_path / f"{name}.csv", index=False)
        write_rows(t, tmp_path / f"{name}.parquet", tables.TRANSCRIPTS)
        out = tmp_path / f"{name}.json"
        argv = ["tfidf", str(out), "--manifest", str(tmp_path / f"{name}.csv")]
        assert main([*argv, "--transcripts", str(tmp_path / f"{name}.parquet"), "--config", "{}"]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1] and "zebra" not in outs[1]


# --------------------------------------------------------------------------- encoders, classifiers, sequence models


CLASSES = ["happy", "sad", "surprise"]


def _corpus(scrambled: bool):
    from test_evaluation_stages import manifest

    m = manifest()
    return _scramble_labels(m, CLASSES) if scrambled else m


def _frames(path, m, scrambled: bool, dim=6):
    rows = []
    centers = np.eye(3, dim) * 3
    for r in m.sort_values("video_id").itertuples():
        rng = np.random.default_rng(int(r.video_id[3:5]) * 100 + int(r.video_id[-1]))
        n = 5 + int(r.video_id[-1])
        if scrambled and r.split != "train":
            x = rng.normal(40, 25, (n, dim))
        else:
            label = r.label
            x = centers[CLASSES.index(label)] + rng.normal(0, 1.0, (n, dim))
        rows += [
            {"video_id": r.video_id, "frame": k, "time": k * 0.2, "missing": False, "x": x[k].tolist()}
            for k in range(n)
        ]
    write_table(pa.Table.from_pylist(rows), path, tables.features(dim, "frame"))


@pytest.mark.parametrize("classifier", ["linear_svm", "logistic", "sequence"])
def test_encoders_and_classifiers_never_read_val_or_test(tmp_path, classifier):
    from test_evaluation_stages import _classify_cfg, _splits_file

    from emoflow.classify import stage as classify_stage
    from emoflow.encode import stage as encode_stage

    results = []
    for scrambled in (False, True):
        d = tmp_path / ("scr" if scrambled else "clean")
        d.mkdir()
        m = _corpus(scrambled)
        sp = _splits_file(d, m)
        _frames(d / "frames.parquet", _corpus(False).set_index("video_id").loc[m["video_id"]].reset_index(), scrambled)
        if classifier == "sequence":
            cfg = _classify_cfg("sequence", head="netvlad", clusters=3, epochs=6, patience=6, batch_size=8, lr=3e-3)
            cfg["encoding"] = None
            cols, rep, exp = classify_stage.run("x", str(sp), [str(d / "frames.parquet")], cfg, 1, LOG)
            model = exp.model
            results.append((None, cols, rep, model.state_dict()))
            continue
        table, enc = encode_stage.run(
            str(sp), [str(d / "frames.parquet")], {"type": "fisher", "clusters": 2, "pca": 3}, LOG
        )
        write_table(table, d / "enc.parquet")
        cfg = _classify_cfg(classifier, grid={"C": [0.01, 1]}, normalize="speaker")
        cols, rep, exp = classify_stage.run("x", str(sp), [str(d / "enc.parquet")], cfg, 1, LOG)
        model = exp.model
        results.append((enc, cols, rep, model))
    (enc0, c0, r0, m0), (enc1, c1, r1, m1) = results
    train = np.array([s == "train" for s in c0["split"]])
    assert not np.array_equal(np.asarray(c0["label"])[~train], np.asarray(c1["label"])[~train])  # labels scrambled
    if classifier == "sequence":
        untimed = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
        assert untimed(r0["fit"]["history"]) == untimed(r1["fit"]["history"])
        _state_equal(m0, m1)
    else:
        np.testing.assert_array_equal(enc0.means, enc1.means)
        np.testing.assert_array_equal(enc0._pca["components"], enc1._pca["components"])
        assert r0["normalize"] == r1["normalize"]
        assert r0["fit"] == r1["fit"]  # chosen hyper-parameters and every CV score
        probe = np.random.default_rng(0).normal(size=(20, m0.n_features_in_))
        np.testing.assert_array_equal(m0.predict_proba(probe), m1.predict_proba(probe))
    for c in CLASSES:
        np.testing.assert_array_equal(np.asarray(c0[f"p_{c}"])[train], np.asarray(c1[f"p_{c}"])[train])
