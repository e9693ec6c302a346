"""emoflow predict, the model bundle and the Recognizer API.

The end-to-end tests run on the demo run (scripts/test.sh makes it once): ``emoflow predict``
on the demo's 12 test clips must reproduce the workflow's own test predictions (every
experiment and the fusion) within 1e-6, and handle a clip without audio and a face image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emoflow.errors import EmoflowError
from emoflow.fusion.choose import apply as fuse_apply
from emoflow.predict import timeline
from emoflow.predict.bundle import Bundle, BundleError, used_experiments
from emoflow.predict.cli import video_id_of

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- units


def test_timeline_windows_cover_each_second():
    w = timeline.windows(4.2, window=2.0)
    assert [k for k, _, _ in w] == [0, 1, 2, 3, 4]
    assert w[0] == (0, 0.0, 1.5) and w[1] == (1, 0.5, 2.5) and w[3] == (3, 2.5, 4.2)
    assert w[4] == (4, 3.5, 4.2)  # 0.7 s >= the 0.5 s minimum
    assert [k for k, _, _ in timeline.windows(3.1)] == [0, 1, 2, 3]  # last window 2.5-3.1 s
    assert timeline.windows(0.3) == [(0, 0.0, 0.3)]  # a very short clip: one window
    assert timeline.windows(0) == []


def test_video_ids_from_file_names_are_valid_and_unique():
    taken = set()
    ids = [video_id_of(p, taken) for p in ["a b.mp4", "dir/a b.mp4", "$(rm -rf x);.mp4", "été.mov", "_x.mp4"]]
    assert ids[0] == "a_b" and ids[1] == "a_b-2"
    assert all(
        len(i) and i[0].isalnum() and set(i) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        for i in ids
    )
    assert len(set(ids)) == len(ids)


def test_fusion_renormalises_over_present_experiments():
    # two experiments with weights 0.75 / 0.25: a row where the first is absent is the
    # second's prediction alone; rows with both (or neither) use the full weights
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    b = np.array([[0.3, 0.7], [0.6, 0.4], [0.5, 0.5]])
    choice = {
        "method": "weighted",
        "models": ["a", "b"],
        "n_classes": 2,
        "methods": {"weighted": {"weights": {"a": 0.75, "b": 0.25}}},
    }
    full = fuse_apply(choice, {"a": a, "b": b})
    assert np.allclose(full, 0.75 * a + 0.25 * b)
    present = {"a": np.array([True, False, False]), "b": np.array([True, True, False])}
    part = fuse_apply(choice, {"a": a, "b": b}, present)
    assert np.allclose(part[0], full[0]) and np.allclose(part[2], full[2])
    assert np.allclose(part[1], b[1])
    assert used_experiments(choice) == ["a", "b"]
    choice["methods"]["weighted"]["weights"]["a"] = 0.0
    assert used_experiments(choice) == ["b"]


# ----------------------------------------------------------------------------- demo run


@pytest.fixture(scope="module")
def bundle_dir(demo_run):
    path = demo_run / "bundle"
    assert (path / "bundle.json").is_file(), f"{path}: the demo run exported no bundle"
    return path


def test_bundle_describes_the_run(demo_run, bundle_dir):
    b = Bundle.load(bundle_dir)
    meta = b.meta
    choice = json.loads((demo_run / "fusion" / meta["part"] / f"{meta['group']}.json").read_text())
    assert meta["classes"] == ["happy", "sad", "surprise"]
    assert set(b.experiments) == set(used_experiments(choice))
    assert meta["fusion_method"] == choice["method"]
    for name, e in b.experiments.items():
        assert abs(sum(e["prior"]) - 1) < 1e-9
        report = json.loads((demo_run / "models" / "classify" / meta["part"] / f"{name}.json").read_text())
        assert e["classifier"] == report["classifier"]
    assert {"sklearn", "numpy", "torch"} <= set(meta["versions"])
    assert meta["threads"]["faces"] >= 1 and meta["stages"]["faces"]["hints"] is None


def test_bundle_refuses_tampering_classes_and_versions(bundle_dir, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    Bundle.load(copy)  # intact copy loads
    with pytest.raises(BundleError, match=r"expected \['a', 'b'\]"):
        Bundle.load(copy, classes=["a", "b"])
    meta = json.loads((copy / "bundle.json").read_text())
    meta["versions"]["sklearn"] = "0.0.1"
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"sklearn 0\.0\.1 \(here 1\."):
        Bundle.load(copy)
    Bundle.load(copy, check_versions=False)
    target = next(p for p in sorted((copy / "classifiers").glob("*.skops")))
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BundleError, match="contents differ"):
        Bundle.load(copy, check_versions=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match="not an emoflow bundle"):
        Bundle.load(empty)


def test_skops_files_with_foreign_types_are_refused(bundle_dir, tmp_path):
    import hashlib

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    name = next(n for n, e in meta["experiments"].items() if e["model_format"] == "skops")
    path = copy / meta["experiments"][name]["model"]
    sio.dump(FunctionTransformer(func=os.getcwd), path)  # would call into the os module
    meta["files"][meta["experiments"][name]["model"]] = hashlib.sha256(path.read_bytes()).hexdigest()
    (copy / "bundle.json").write_text(json.dumps(meta))
    b = Bundle.load(copy)
    with pytest.raises(
        BundleError, match=rf"{path.name}: refuses to load a model with function-valued parameters.*getcwd"
    ):
        b.load_classifier(name)


def _replace_model(copy: Path, model) -> tuple[str, Path]:
    """Put ``model`` in place of the bundle's first skops classifier (digest updated)."""
    import hashlib

    import skops.io as sio

    meta = json.loads((copy / "bundle.json").read_text())
    name = next(n for n, e in meta["experiments"].items() if e["model_format"] == "skops")
    path = copy / meta["experiments"][name]["model"]
    sio.dump(model, path)
    meta["files"][meta["experiments"][name]["model"]] = hashlib.sha256(path.read_bytes()).hexdigest()
    (copy / "bundle.json").write_text(json.dumps(meta))
    return name, path


def test_a_chain_of_numpy_and_sklearn_functions_does_not_run(bundle_dir, tmp_path):
    """The exploit pattern: a Pipeline of FunctionTransformers built only from names under
    numpy / sklearn (prefix matching trusted them) would call each function when a clip is
    scored.  Every function-valued parameter is refused, before anything is instantiated."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import _testing

    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    chain = Pipeline(
        [
            ("a", FunctionTransformer(np.full_like, kw_args={"fill_value": 1})),
            ("b", FunctionTransformer(np.sum)),
            ("c", FunctionTransformer(_testing.assert_run_python_script_without_output)),
        ]
    )
    name, path = _replace_model(copy, chain)
    b = Bundle.load(copy)
    with pytest.raises(BundleError, match=rf"{path.name}: refuses .*function-valued.*numpy\.full_like.*numpy\.sum"):
        b.load_classifier(name)
    # a type emoflow never writes, even one skops trusts by default, is refused too
    from sklearn.neighbors import KNeighborsClassifier

    name, path = _replace_model(copy, KNeighborsClassifier().fit(np.eye(3), [0, 1, 2]))
    with pytest.raises(
        BundleError, match=rf"{path.name}: refuses to load a model with types emoflow does not write.*KNeighbors"
    ):
        Bundle.load(copy).load_classifier(name)


@pytest.mark.parametrize("where", ["files", "experiment", "feature"])
@pytest.mark.parametrize("bad", ["../outside.skops", "/etc/passwd"])
def test_bundle_paths_must_stay_inside_the_bundle(bundle_dir, tmp_path, where, bad):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    name = next(iter(meta["experiments"]))
    if where == "files":
        meta["files"][bad] = "0" * 64
    elif where == "experiment":
        meta["experiments"][name]["model"] = bad
    else:
        feat = next(f for f in meta["features"].values() if f["config"]["features"][f["table"]].get("model"))
        feat["config"]["features"][feat["table"]]["model"] = bad
    (copy / "bundle.json").write_text(json.dumps(meta))
    kind = "absolute path" if bad.startswith("/") else "leaves the bundle folder"
    with pytest.raises(BundleError, match=rf"bundle\.json: .*{kind}"):
        Bundle.load(copy)


def test_every_classifier_type_emoflow_writes_loads(tmp_path):
    """The allow-list is exact but complete: each classifier type (with scaling and PCA,
    SVMs calibrated) saves and loads through the bundle's check."""
    import skops.io as sio

    from emoflow.classify import models
    from emoflow.predict.bundle import check_skops

    rng = np.random.default_rng(0)
    X, y, g = rng.normal(size=(60, 6)), np.repeat([0, 1, 2], 20), np.tile(np.arange(6), 10)
    for kind in models.TYPES:
        model, _ = models.search(X, y, g, {"type": kind, "scale": True, "pca": 4}, folds=3)
        path = tmp_path / f"{kind}.skops"
        sio.dump(model, path)
        loaded = sio.load(path, trusted=check_skops(path))
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


@pytest.fixture(scope="module")
def predicted(demo_run, bundle_dir, tmp_path_factory):
    """One `emoflow predict` run: the 12 demo test clips, one of them without its audio, and
    a face image (a frame of a test clip)."""
    tmp = tmp_path_factory.mktemp("predict")
    manifest = pd.read_csv(demo_run / "demo" / "manifest.csv")
    test = manifest[manifest["split"] == "test"].copy()
    test["path"] = [str(demo_run / "demo" / p) for p in test["path"]]
    first = test.iloc[0]
    silent, image = tmp / "silent clip.mp4", tmp / "face image.png"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", first["path"], "-an", "-c:v", "copy", str(silent)],
        check=True,
    )
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "2", "-i", first["path"], "-frames:v", "1", str(image)],
        check=True,
    )
    extra = pd.DataFrame(
        [
            {"video_id": "silent", "path": str(silent), "label": first["label"], "split": "", "speaker": ""},
            {"video_id": "image", "path": str(image), "label": first["label"], "split": "", "speaker": ""},
        ]
    )
    # the speakers of the test clips: speaker-normalised experiments normalise each one's clips together
    rows = pd.concat([test[["video_id", "path", "label", "split", "speaker"]], extra], ignore_index=True)
    rows.to_csv(tmp / "inputs.csv", index=False)
    out = tmp / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # run from the results' parent with relative paths, as a user would (stages run elsewhere)
    rel = lambda p: os.path.relpath(p, demo_run.parent)  # noqa: E731
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emoflow",
            "predict",
            "--manifest",
            rel(tmp / "inputs.csv"),
            "--bundle",
            demo_run.name,
            "--out",
            rel(out),
            "--json",
            "--work",
            rel(tmp / "work"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=demo_run.parent,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, test


def test_predict_reproduces_the_workflows_test_predictions(demo_run, bundle_dir, predicted):
    out, test = predicted
    b = Bundle.load(bundle_dir)
    cols = [f"p_{c}" for c in b.classes]
    got = pd.read_csv(out / "predictions.csv").set_index("video_id")
    fused = pd.read_parquet(demo_run / "fusion" / b.meta["part"] / f"{b.meta['group']}.parquet").set_index("video_id")
    ids = test["video_id"].tolist()
    assert np.abs(got.loc[ids, cols].to_numpy() - fused.loc[ids, cols].to_numpy()).max() < 1e-6
    assert (
        got.loc[ids, "label_pred"].to_numpy() == np.array(b.classes)[fused.loc[ids, cols].to_numpy().argmax(1)]
    ).all()
    # every test clip has every feature: the modalities of all the experiments the fusion uses
    # (the chosen method decides which: stacking reads them all, a weighted search may drop some)
    modalities = sorted({m for e in b.experiments.values() for m in e["modality"].split("+")})  # e2e: "audio+face"
    assert {"audio", "face"} <= set(modalities)
    assert set(got.loc[ids, "modalities_used"]) == {";".join(modalities)}
    exp = pd.read_parquet(out / "experiments.parquet")
    assert set(exp["experiment"]) == set(b.experiments)
    for name, rows in exp[exp["video_id"].isin(ids)].groupby("experiment"):
        ref = pd.read_parquet(demo_run / "predictions" / b.meta["part"] / f"{name}.parquet").set_index("video_id")
        rows = rows.set_index("video_id").loc[ids]
        assert np.abs(rows[cols].to_numpy() - ref.loc[ids, cols].to_numpy()).max() < 1e-6, name
        assert (rows["present"].to_numpy() == ~ref.loc[ids, "missing"].to_numpy()).all(), name
    records = json.loads((out / "predictions.json").read_text())
    assert [r["video_id"] for r in records] == got.index.tolist()


def test_predict_uses_the_modalities_an_input_has(predicted):
    out, _ = predicted
    got = pd.read_csv(out / "predictions.csv", keep_default_na=False).set_index("video_id")
    assert got.loc["silent", "modalities_used"] == "face"  # no audio stream: face experiments only
    assert "no audio" in got.loc["silent", "note"].lower() or "audio" in got.loc["silent", "note"].lower()
    assert got.loc["image", "modalities_used"] == "face"
    assert got.loc["silent", "label_pred"] in ("happy", "sad", "surprise")
    p = got.loc[["silent", "image"], ["p_happy", "p_sad", "p_surprise"]].to_numpy(float)
    assert np.allclose(p.sum(1), 1.0)


def test_predict_writes_a_timeline_and_its_plot(predicted):
    out, test = predicted
    tl = pd.read_parquet(out / "timeline.parquet")
    assert set(tl["video_id"]) == set(test["video_id"]) | {"silent"}  # images get no timeline
    for vid, rows in tl.groupby("video_id"):
        assert rows["second"].tolist() == list(range(len(rows)))
        assert (rows["end"] > rows["start"]).all()
        assert np.allclose(rows[["p_happy", "p_sad", "p_surprise"]].sum(1), 1.0)
        png = out / "timeline" / f"{vid}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_rejects_missing_files_and_foreign_bundles(tmp_path, bundle_dir):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "emoflow", "predict", *a], capture_output=True, text=True, env=env, cwd=REPO
        )

    proc = run(str(tmp_path / "nope.mp4"), "--bundle", str(bundle_dir), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "nope.mp4: no such file" in proc.stderr
    proc = run(
        str(tmp_path / "nope.mp4"), "--bundle", str(bundle_dir), "--out", str(tmp_path / "o"), "--classes", "x,y"
    )
    assert proc.returncode == 2 and "expected ['x', 'y']" in proc.stderr
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    for bad, words in (
        (["--detect", "faces.thresholds=1"], "KEY one of"),
        (["--detect", "faces.min_face=-1"], "must be positive"),
        (["--detect", "frames.max_side=big"], "not an integer"),
        (["--modalities", "smell"], "modalities are audio, face"),
    ):
        proc = run(str(clip), "--bundle", str(bundle_dir), "--out", str(tmp_path / "o"), *bad)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_modalities_option_predicts_from_the_face_alone(demo_run, predicted, tmp_path):
    """A clip predicted with --modalities face gives what the same clip without its audio
    stream gets: the fusion renormalised over the face experiments."""
    out, test = predicted
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    first = test.iloc[0]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emoflow",
            "predict",
            first["path"],
            "--bundle",
            str(demo_run),
            "--out",
            str(tmp_path / "o"),
            "--no-timeline",
            "--modalities",
            "face",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = pd.read_csv(tmp_path / "o" / "predictions.csv", keep_default_na=False).iloc[0]
    silent = pd.read_csv(out / "predictions.csv", keep_default_na=False).set_index("video_id").loc["silent"]
    cols = ["p_happy", "p_sad", "p_surprise"]
    assert got["modalities_used"] == "face"
    assert np.allclose(got[cols].to_numpy(float), silent[cols].to_numpy(float), atol=1e-6)


def test_warm_stages_agree_with_subprocess_stages_and_load_models_once(bundle_dir, predicted, tmp_path):
    """The warm path (stages in this process, models kept) gives what the per-stage
    subprocesses give, to 1e-6, and a second call loads no model again."""
    from emoflow.predict.cli import gather, predict
    from emoflow.warm import ModelCache

    _, test = predicted
    b = Bundle.load(bundle_dir)
    inputs = gather(test["path"].head(3).tolist())  # no speaker: each clip on its own
    isolated = predict(b, inputs, tmp_path / "isolated", with_timeline=False, models=None)
    cache = ModelCache()
    first = predict(b, inputs.head(1), tmp_path / "warm1", with_timeline=False, models=cache)
    held, classifiers = len(cache), len(b.models)
    assert held > 0 and classifiers > 0
    again = predict(b, inputs, tmp_path / "warm2", with_timeline=False, models=cache)
    assert (len(cache), len(b.models)) == (held, classifiers)  # nothing loaded twice
    cols = [f"p_{c}" for c in b.classes]
    for warm in (first, again):
        ref = isolated.videos.set_index("video_id").loc[warm.videos["video_id"]]
        assert np.abs(warm.videos[cols].to_numpy(float) - ref[cols].to_numpy(float)).max() < 1e-6
        assert (warm.videos["label_pred"].to_numpy() == ref["label_pred"].to_numpy()).all()
        key = ["video_id", "experiment"]
        w = warm.experiments.set_index(key)
        i = isolated.experiments.set_index(key).loc[w.index]
        assert np.abs(w[cols].to_numpy(float) - i[cols].to_numpy(float)).max() < 1e-6
    assert set(again.videos["modalities_used"]) == set(isolated.videos["modalities_used"])


def test_watch_scores_a_file_once_it_is_renamed_into_place(bundle_dir, predicted, tmp_path):
    """--watch: a file written under a temporary name is left alone until it is renamed to a
    video name; then it gets its row, and a stray temporary file never does."""
    import time

    _, test = predicted
    folder, out = tmp_path / "incoming", tmp_path / "live"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    err = open(tmp_path / "watch.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emoflow",
            "predict",
            "--watch",
            str(folder),
            "--bundle",
            str(bundle_dir),
            "--out",
            str(out),
            "--no-timeline",
            "--poll",
            "0.2",
            "--stop-after",
            "1",
        ],
        stdout=err,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.time() + 120
        while "watching" not in (tmp_path / "watch.log").read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        data = Path(test["path"].iloc[0]).read_bytes()
        part = folder / "take1.mp4.part"
        part.write_bytes(data[: len(data) // 2])  # half-written, under a temporary name
        (folder / "stray.tmp").write_bytes(data)
        time.sleep(2.0)  # ten polls
        assert not (out / "predictions.csv").exists() and proc.poll() is None
        with open(part, "ab") as f:
            f.write(data[len(data) // 2 :])
        part.rename(folder / "take1.mp4")
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
    log = (tmp_path / "watch.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    got = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert got["video_id"].tolist() == ["take1"] and got["path"].iloc[0] == str(folder / "take1.mp4")
    assert (
        got["label_pred"].iloc[0] in Bundle.load(bundle_dir).classes and got["modalities_used"].iloc[0] == "audio;face"
    )


def test_model_cache_reloads_when_a_named_file_changes(tmp_path):
    from emoflow import warm

    f = tmp_path / "weights.bin"
    f.write_bytes(b"one")
    cache, built = warm.ModelCache(), []
    make = lambda: built.append(f.read_bytes()) or len(built)  # noqa: E731
    assert warm.model("k", {"model": str(f)}, make) == 1  # outside keeping(): always built
    with warm.keeping(cache):
        assert warm.model("k", {"model": str(f)}, make) == 2
        assert warm.model("k", {"model": str(f)}, make) == 2  # kept
        assert warm.model("k", {"model": str(f)}, make, threads=2) == 3  # other settings: another model
        os.utime(f, ns=(1, 1))
        assert warm.model("k", {"model": str(f)}, make) == 4  # the file changed: loaded again
    assert warm.model("k", {"model": str(f)}, make) == 5 and len(cache) == 3


def test_recognizer_api(demo_run, bundle_dir, predicted):
    from emoflow import Recognizer

    out, test = predicted
    rec = Recognizer(demo_run)
    ref = pd.read_csv(out / "predictions.csv").set_index("video_id")
    first = test.iloc[0]
    clips = test[test["speaker"] == first["speaker"]]
    batch = rec.batch_recognize(clips["path"].tolist(), speaker=first["speaker"])  # one speaker's clips, as in the run
    for vid, path in zip(clips["video_id"], clips["path"]):
        assert batch[path]["label"] == ref.loc[vid, "label_pred"]
        assert batch[path]["modalities_used"] == ref.loc[vid, "modalities_used"].split(";")
        assert all(abs(batch[path]["probabilities"][c] - ref.loc[vid, f"p_{c}"]) < 1e-6 for c in rec.classes)
    one = rec.recognize(first["path"])  # a lone clip: speaker-normalised experiments use population statistics
    assert one["label"] in rec.classes and abs(sum(one["probabilities"].values()) - 1) < 1e-6
    normalised = [n for n, e in rec.bundle.experiments.items() if e["normalize"] == "speaker"]
    assert ("population statistics" in one["note"]) == bool(normalised), (normalised, one["note"])
    if not normalised:
        assert all(abs(one["probabilities"][c] - ref.loc[first["video_id"], f"p_{c}"]) < 1e-6 for c in rec.classes)
    if normalised:
        # enrolment: the speaker's clips given once, then one clip alone gets exactly the
        # statistics (and so the probabilities) the run's speaker batch gave it
        assert rec.enrol(first["speaker"], clips["path"].tolist()) == len(clips)
        enrolled = rec.recognize(first["path"], speaker=first["speaker"])
        assert "enrolment of speaker" in enrolled["note"], enrolled["note"]
        assert all(abs(enrolled["probabilities"][c] - ref.loc[first["video_id"], f"p_{c}"]) < 1e-6 for c in rec.classes)
    manifest = out.parent / "test.csv"
    test[["video_id", "path", "label", "split", "speaker"]].to_csv(manifest, index=False)
    # scored in another label space (the demo's 3 classes read among FER2013's 7): same answers
    metrics = rec.eval(manifest, label_space="fer2013")
    choice = json.loads(
        (demo_run / "fusion" / rec.bundle.meta["part"] / f"{rec.bundle.meta['group']}.json").read_text()
    )
    assert metrics["n"] == len(test) and metrics["unpredicted"] == 0
    assert metrics["label_space"]["map"] == {c: c for c in rec.classes}
    assert abs(metrics["accuracy"] - choice["scores"]["test"]["accuracy"]) < 1e-9
    assert abs(metrics["by_split"]["test"]["uar"] - choice["scores"]["test"]["uar"]) < 1e-9
    assert len(metrics["confusion"]) == 7 and len(metrics["confusion"][0]) == 8  # + the "no answer" column
    with pytest.raises(EmoflowError, match="no such file"):
        rec.batch_recognize([str(out / "missing.mp4")])


def test_eval_counts_an_unpredicted_clip_as_wrong(demo_run, bundle_dir, tmp_path):
    """A clip that gets no prediction at all (here: not media) is wrong, as in the workflow,
    and counted; the other clips are scored as usual."""
    from emoflow import Recognizer

    manifest = pd.read_csv(demo_run / "demo" / "manifest.csv")
    one = manifest[manifest["split"] == "test"].iloc[[0]].copy()
    one["path"] = [str(demo_run / "demo" / p) for p in one["path"]]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    rows = pd.concat(
        [
            one,
            pd.DataFrame(
                [
                    {
                        "video_id": "broken",
                        "path": str(broken),
                        "label": one.iloc[0]["label"],
                        "split": "test",
                        "speaker": "nobody",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    rows[["video_id", "path", "label", "split", "speaker"]].to_csv(tmp_path / "m.csv", index=False)
    rec = Recognizer(demo_run)
    m = rec.eval(tmp_path / "m.csv")
    assert m["n"] == 2 and m["unpredicted"] == 1
    assert m["accuracy"] <= 0.5  # the unpredicted clip is wrong whatever the other one gets
    assert sum(row[-1] for row in m["confusion"]) == 1


def test_enrol_needs_a_speaker(bundle_dir, tmp_path):
    (tmp_path / "enrol").mkdir()
    (tmp_path / "enrol" / "a.mp4").write_bytes(b"x")
    (tmp_path / "clip.mp4").write_bytes(b"x")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emoflow",
            "predict",
            str(tmp_path / "clip.mp4"),
            "--bundle",
            str(bundle_dir),
            "--out",
            str(tmp_path / "o"),
            "--enrol",
            str(tmp_path / "enrol"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "needs --speaker" in proc.stderr, proc.stderr


def test_recognizer_train_runs_the_workflow(demo_run):
    """Recognizer.train goes through Snakemake's API: on the finished demo run there is nothing
    left to do, and it returns a Recognizer on the bundle that run exported."""
    from emoflow import Recognizer

    before = (demo_run / "bundle" / "bundle.json").stat().st_mtime_ns
    rec = Recognizer.train(workdir=demo_run.parent.parent, cores=2)
    assert rec.bundle.root == demo_run / "bundle"
    assert (demo_run / "bundle" / "bundle.json").stat().st_mtime_ns == before
