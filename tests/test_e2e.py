"""The end-to-end multimodal network (emoflow.e2e, issue 21) on tiny synthetic data whose
class is encoded in the signal: augmentations and their label arithmetic, the face
transforms, modality dropout, a fit that beats chance on held-out speakers, epoch choice that
never reads validation or test, the ensemble and TTA averages, the model file round trip, the
predictor's path, the transform cache, and the workflow's plan (a dry run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from emoflow import tables
from emoflow.e2e import augment as aug
from emoflow.e2e import spec as e2e_spec
from emoflow.e2e import stage as e2e_stage
from emoflow.e2e.data import Inputs
from emoflow.e2e.data import load as load_inputs
from emoflow.e2e.fit import fit_ensemble, predict_proba, train_batch
from emoflow.e2e.model import load as load_model
from emoflow.e2e.model import save as save_model
from emoflow.storage import write_rows

torch.set_num_threads(1)
CLASSES = ["happy", "sad", "surprise"]
SMALL = {"hidden": 12, "fused_hidden": 12, "max_audio_len": 48, "batch_size": 16, "lr": 3e-3, "patience": 4}


# --------------------------------------------------------------------------- data


def synthetic(n_speakers=10, per_class=3, F=8, D=6, seed=0, transforms=aug.SEED_TRANSFORMS, no_face=(), no_audio=()):
    """Clips of ``n_speakers`` speakers; class c raises audio bin c and face dim c. The face
    views under each transform differ by a small per-transform offset."""
    rng = np.random.default_rng(seed)
    ids, y, spk = [], [], []
    data = Inputs(transforms=list(transforms), audio_dim=F, face_dim=D)
    for s in range(n_speakers):
        off = rng.normal(0, 0.3, F)
        for c in range(len(CLASSES)):
            for j in range(per_class):
                v = f"s{s}_c{c}_{j}"
                ids.append(v)
                y.append(c)
                spk.append(f"spk{s}")
                if v not in no_audio:
                    a = rng.normal(0, 1, (int(rng.integers(20, 60)), F)) + off
                    a[:, c] += 1.5
                    data.audio[v] = a.astype(np.float32)
                if v not in no_face:
                    f = rng.normal(0, 1, (int(rng.integers(4, 12)), D))
                    f[:, c] += 1.5
                    data.face[v] = np.stack([f + 0.05 * k for k in range(len(transforms))]).astype(np.float32)
    return ids, np.array(y), np.array(spk, object), data


def write_run(folder: Path, ids, y, spk, data: Inputs, split_of) -> dict:
    """A run's tables for the stage: splits, the audio feature, the face transform cache."""
    folder.mkdir(parents=True, exist_ok=True)
    write_rows(
        [{"video_id": v, "label": CLASSES[c], "split": split_of(s), "speaker": s} for v, c, s in zip(ids, y, spk)],
        folder / "splits.parquet",
        tables.SPLITS,
    )

    def frame_rows(seqs: dict, dim: int):
        rows = []
        for v in ids:
            if v not in seqs:
                rows.append({"video_id": v, "frame": 0, "time": 0.0, "missing": True, "x": np.zeros(dim, np.float32)})
                continue
            rows += [
                {"video_id": v, "frame": k, "time": k / 10, "missing": False, "x": x} for k, x in enumerate(seqs[v])
            ]
        return rows

    write_rows(
        frame_rows(data.audio, data.audio_dim), folder / "audio.parquet", tables.features(data.audio_dim, "frame")
    )
    from emoflow.e2e.tta import schema

    k = len(data.transforms)
    wide = {v: s.transpose(1, 0, 2).reshape(s.shape[1], k * data.face_dim) for v, s in data.face.items()}
    write_rows(frame_rows(wide, k * data.face_dim), folder / "face.parquet", schema(data.face_dim, data.transforms))
    return {
        "splits": str(folder / "splits.parquet"),
        "audio": str(folder / "audio.parquet"),
        "face": str(folder / "face.parquet"),
    }


def split_of(s: str) -> str:
    return {"spk8": "val", "spk9": "test"}.get(s, "train")


# --------------------------------------------------------------------------- augmentations


def test_seed_transforms_are_the_twelve_flips_and_brightnesses():
    assert len(set(aug.SEED_TRANSFORMS)) == 12
    assert {aug.parse_transform(t) for t in aug.SEED_TRANSFORMS} == {
        (h, v, b) for h in (False, True) for v in (False, True) for b in (0.9, 1.0, 1.1)
    }
    img = np.random.default_rng(0).integers(0, 256, (3, 8, 6), dtype=np.uint8)
    assert np.array_equal(aug.apply_transform(img, aug.IDENTITY), img)
    h = aug.apply_transform(img, "h1v0b1.0")
    assert np.array_equal(h, img[:, :, ::-1])
    assert np.array_equal(aug.apply_transform(h, "h1v0b1.0"), img)  # a flip twice is the identity
    v = aug.apply_transform(img, "h0v1b1.0")
    assert np.array_equal(v, img[:, ::-1]) and np.array_equal(aug.apply_transform(v, "h0v1b1.0"), img)
    colour = np.full((1, 2, 2, 3), 100, np.uint8)
    colour[0, 0, 0] = 250
    bright = aug.apply_transform(colour, "h0v0b1.1")
    assert bright[0, 1, 1, 0] == 110 and bright[0, 0, 0, 0] == 255  # x 1.1, clipped
    assert aug.apply_transform(colour, "h0v0b0.9")[0, 1, 1, 0] == 90
    both = aug.apply_transform(colour, "h1v1b1.0")
    assert np.array_equal(both, colour[:, ::-1, ::-1])


def test_mixup_and_cutmix_keep_label_mass():
    ta, tb = aug.one_hot([0], 3)[0], aug.one_hot([2], 3)[0]
    x, t = aug.mixup(np.ones(4), np.zeros(4), ta, tb, 0.3)
    assert np.allclose(x, 0.3) and np.allclose(t, [0.3, 0, 0.7]) and np.isclose(t.sum(), 1)
    rng = np.random.default_rng(0)
    a, b = np.zeros((8, 2)), np.arange(16, dtype=float).reshape(8, 2) + 1
    out, share = aug.cutmix_face(a, b, 0.25, rng)
    replaced = np.flatnonzero(out.any(1))
    assert share == 0.25 and len(replaced) == 2 and np.all(np.diff(replaced) == 1)  # one contiguous span
    assert np.array_equal(out[replaced], b[replaced])  # b's frames at the same relative times
    target = aug.cutmix_target(ta, tb, share)
    assert np.allclose(target, [0.75, 0, 0.25]) and np.isclose(target.sum(), 1)
    assert aug.cutmix_face(a, b[:0], 0.5, rng)[1] == 0.0  # nothing to cut from
    smoothed = aug.smooth(aug.one_hot([1, 2], 3), 0.1)
    assert np.allclose(smoothed.sum(1), 1) and np.isclose(smoothed[0, 1], 0.9 + 0.1 / 3)
    # whole training batches: every head's target is a distribution, the fused one mixed
    ids, y, spk, data = synthetic(n_speakers=3)
    spec = e2e_spec.resolve({**SMALL, "mixup_prob": 0.5, "cutmix": 1.0})
    stats = {"audio": (np.zeros(8, np.float32), np.ones(8, np.float32))}
    mixed = 0
    for k in range(12):
        _, targets, weights = train_batch(data, ids[:16], y[:16], spec, 3, np.random.default_rng(k), [0], stats, "cpu")
        for t in targets.values():
            assert torch.allclose(t.sum(1), torch.ones(16))
            assert float(t.min()) >= 0.1 / 3 - 1e-6  # label smoothing 0.1
        mixed += int((targets["fused"].max(1).values < 0.9 + 0.1 / 3 - 1e-6).any())
        assert set(weights) == {"audio", "face"}
    assert mixed >= 6  # mixup or CutMix changed most batches' targets


def test_spec_augment_masks_time_and_frequency():
    x = np.random.default_rng(0).normal(5, 1, (50, 16)).astype(np.float32)
    fill = np.full(16, -7.0, np.float32)
    out = aug.spec_augment(x, np.random.default_rng(3), fill, time_masks=2, time_width=0.2, freq_masks=2, freq_width=4)
    assert out.shape == x.shape and not np.shares_memory(out, x) and np.all(x > -7)
    masked = out == -7.0
    full_rows, full_cols = masked.all(1), masked.all(0)
    assert full_rows.sum() <= 2 * 10 and full_cols.sum() <= 2 * 4  # at most the masks' widths
    assert full_rows.any() or full_cols.any()
    assert np.array_equal(out[~masked], x[~masked])  # everything else untouched
    none = aug.spec_augment(x, np.random.default_rng(0), fill, time_masks=0, freq_masks=0)
    assert np.array_equal(none, x)
    kept = aug.frame_dropout(np.arange(20)[:, None], 0.5, np.random.default_rng(1))
    assert 1 <= len(kept) < 20 and np.all(np.diff(kept[:, 0]) > 0)
    assert len(aug.frame_dropout(np.arange(5)[:, None], 1.0, np.random.default_rng(1))) == 1


# --------------------------------------------------------------------------- fitting


@pytest.fixture(scope="module")
def fitted():
    """One seed fitted on eight training speakers (two held out to choose the epoch)."""
    ids, y, spk, data = synthetic(no_face={"s9_c0_0", "s9_c1_1"}, no_audio={"s9_c2_2"})
    tr = np.array([split_of(s) == "train" for s in spk])
    spec = e2e_spec.resolve({**SMALL, "epochs": 12, "seeds": [0], "refit": False})
    members = fit_ensemble(data, [v for v, t in zip(ids, tr) if t], y[tr], spk[tr], 3, spec)
    return ids, y, spk, data, spec, members


def test_fit_beats_chance_on_held_out_speakers(fitted):
    ids, y, spk, data, spec, members = fitted
    rec = members[0][1]
    assert rec["holdout_videos"] == 2 * 9 and len(rec["holdout_speakers"]) == 2
    assert rec["holdout_accuracy"] >= 0.6  # chance: 1/3
    unseen = [i for i, s in enumerate(spk) if split_of(s) != "train"]
    p = predict_proba([m for m, _ in members], data, [ids[i] for i in unseen], spec["tta"])
    assert np.allclose(p.sum(axis=1), 1)
    assert (p.argmax(1) == y[unseen]).mean() >= 0.6


def test_modality_dropout_predicts_a_clip_with_one_modality(fitted):
    ids, y, spk, data, spec, members = fitted
    net = members[0][0]
    for vid in ("s9_c0_0", "s9_c2_2"):  # no face; no audio
        p = predict_proba([net], data, [vid], spec["tta"])
        assert p.shape == (1, 3) and np.isfinite(p).all() and np.isclose(p.sum(), 1)
    # the presence flag, not the zeros, tells the network a modality is absent
    only_audio = Inputs(audio=data.audio, transforms=data.transforms, audio_dim=data.audio_dim, face_dim=data.face_dim)
    vids = [v for v, s in zip(ids, spk) if s == "spk9" and v in data.audio]
    pa_ = predict_proba([net], only_audio, vids, spec["tta"])
    assert np.isfinite(pa_).all() and (pa_.argmax(1) == y[[ids.index(v) for v in vids]]).mean() >= 0.5


def test_ensemble_and_tta_average_their_parts(fitted):
    ids, y, spk, data, spec, members = fitted
    other = fit_ensemble(data, ids[:60], y[:60], spk[:60], 3, {**spec, "epochs": 2, "seeds": [5]})[0][0]
    nets = [members[0][0], other]
    vids = ids[-9:]
    both = predict_proba(nets, data, vids, spec["tta"])
    each = [predict_proba([n], data, vids, spec["tta"]) for n in nets]
    assert np.allclose(both, (each[0] + each[1]) / 2, atol=1e-10)
    two = ["h0v0b1.0", "h1v0b1.0"]
    per_t = [predict_proba(nets[:1], data, vids, [t]) for t in two]
    assert np.allclose(predict_proba(nets[:1], data, vids, two), (per_t[0] + per_t[1]) / 2, atol=1e-10)
    assert not np.allclose(per_t[0], per_t[1])  # the views differ


def test_model_file_round_trip_gives_identical_probabilities(fitted, tmp_path):
    ids, y, spk, data, spec, members = fitted
    path = save_model(members, tmp_path / "m.model", {"tta": spec["tta"]})
    loaded, meta = load_model(path)
    assert meta == {"tta": spec["tta"]}
    before = predict_proba([m for m, _ in members], data, ids, spec["tta"])
    assert np.array_equal(predict_proba(loaded, data, ids, spec["tta"]), before)
    blob = torch.load(path, weights_only=True)  # plain data and tensors: no code
    assert blob["format"] == "emoflow.e2e/1"


# --------------------------------------------------------------------------- the stage


def run_stage(folder: Path, ids, y, spk, data, spec: dict) -> dict:
    paths = write_run(folder, ids, y, spk, data, split_of)
    cfg = {"e2e": spec, "classes": CLASSES, "audio_table": "audio", "face_table": "face", "tta_table": "face"}
    out = {k: str(folder / f"e2e.{k}") for k in ("parquet", "json", "model")}
    rc = e2e_stage.main(
        [
            "e2e",
            paths["splits"],
            out["parquet"],
            out["json"],
            out["model"],
            "--audio",
            paths["audio"],
            "--face",
            paths["face"],
            "--config",
            json.dumps(cfg),
        ]
    )
    assert rc == 0
    return {**paths, **out}


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    ids, y, spk, data = synthetic(no_face={"s9_c0_0"}, no_audio={"s8_c1_0"})
    spec = {**SMALL, "epochs": 4, "seeds": [0, 1], "refit": True}
    folder = tmp_path_factory.mktemp("e2e_stage")
    return ids, y, spk, data, spec, run_stage(folder / "a", ids, y, spk, data, spec), folder


def test_stage_writes_what_classify_writes(stage_run):
    from emoflow.storage import read_table

    ids, y, spk, data, spec, out, _ = stage_run
    pred = read_table(out["parquet"])
    assert pred.schema.equals(tables.predictions(CLASSES), check_metadata=False)
    df = pred.to_pandas()
    assert len(df) == len(ids) and not df["missing"].any()
    assert np.allclose(df[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1)
    rep = json.loads(Path(out["json"]).read_text())
    assert rep["model_format"] == "e2e" and rep["modality"] == "audio+face" and rep["classifier"]["type"] == "e2e"
    assert rep["feature"] == "e2e" and set(rep["scores"]) == {"train", "val", "test"}
    assert [m["seed"] for m in rep["fit"]["members"]] == [0, 1]
    assert all(m["refit_epochs"] == m["best_epoch"] for m in rep["fit"]["members"])
    members, meta = load_model(out["model"])
    assert len(members) == 2 and meta["tta"] == list(aug.SEED_TRANSFORMS)


def test_epoch_choice_never_reads_validation_or_test(stage_run):
    """Scrambled val/test features and labels: the same saved weights, the same train rows."""
    from emoflow.storage import read_table

    ids, y, spk, data, spec, out, folder = stage_run
    rng = np.random.default_rng(7)
    y2 = y.copy()
    scrambled = Inputs(
        audio=dict(data.audio),
        face=dict(data.face),
        transforms=data.transforms,
        audio_dim=data.audio_dim,
        face_dim=data.face_dim,
    )
    for i, (v, s) in enumerate(zip(ids, spk)):
        if split_of(s) != "train":
            y2[i] = rng.integers(3)
            if v in scrambled.audio:
                scrambled.audio[v] = rng.normal(0, 5, (int(rng.integers(5, 30)), data.audio_dim)).astype(np.float32)
            if v in scrambled.face:
                scrambled.face[v] = rng.normal(0, 5, scrambled.face[v].shape).astype(np.float32)
    out2 = run_stage(folder / "b", ids, y2, spk, scrambled, spec)
    a, b = torch.load(out["model"], weights_only=True), torch.load(out2["model"], weights_only=True)
    for ma, mb in zip(a["members"], b["members"]):
        assert ma["record"]["best_epoch"] == mb["record"]["best_epoch"]
        for k in ma["state_dict"]:
            assert torch.equal(ma["state_dict"][k], mb["state_dict"][k]), k
    pa_, pb = read_table(out["parquet"]).to_pandas(), read_table(out2["parquet"]).to_pandas()
    train = pa_["split"] == "train"
    cols = [f"p_{c}" for c in CLASSES]
    assert np.array_equal(pa_.loc[train, cols].to_numpy(), pb.loc[train, cols].to_numpy())


def test_predictor_reproduces_the_stage(stage_run):
    """The predictor's path (emoflow.predict.apply, as rule deployments and `emoflow predict`
    call it) gives the stage's probabilities; --modalities face reads the face branch alone."""
    from emoflow.predict.apply import e2e_probs, experiment_probs
    from emoflow.predict.bundle import Bundle, training_prior
    from emoflow.storage import read_table

    ids, y, spk, data, spec, out, _ = stage_run
    rep = json.loads(Path(out["json"]).read_text())
    e = {
        "feature": "e2e",
        "modality": rep["modality"],
        "classifier": rep["classifier"],
        "model_format": "e2e",
        "normalize": "none",
        "model": out["model"],
        "report": out["json"],
        "prior": training_prior(out["parquet"], CLASSES),
    }
    run = Bundle(Path("/"), {"classes": CLASSES, "experiments": {"e2e": e}, "features": {}})
    stored = (
        read_table(out["parquet"]).to_pandas().set_index("video_id").loc[ids, [f"p_{c}" for c in CLASSES]].to_numpy()
    )
    probs, present, _ = experiment_probs(run, "e2e", {"audio": [out["audio"]], "face": [out["face"]]}, ids)
    assert present.all() and np.abs(probs - stored).max() < 1e-6
    face_only, present, _ = e2e_probs(run, "e2e", {"audio": [out["audio"]], "face": [out["face"]]}, ids, {"face"})
    assert not present[ids.index("s9_c0_0")] and present.sum() == len(ids) - 1  # the clip without a face: prior
    assert np.allclose(face_only.sum(1), 1) and not np.allclose(face_only, probs)


# --------------------------------------------------------------------------- the transform cache


def test_transform_cache_is_the_frame_cnn_under_each_transform(tmp_path):
    from types import SimpleNamespace

    from emoflow.e2e.tta import TransformedFrameCNN
    from emoflow.features.frame_cnn import FrameCNN
    from emoflow.nets.frame import build

    torch.manual_seed(0)
    net = build("vgg", 3, size=48, widths=(4, 8), fc=16)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "cnn.pt")
    (tmp_path / "cnn.json").write_text(
        json.dumps(
            {
                "arch": "vgg",
                "net": {"widths": [4, 8], "fc": 16},
                "size": 48,
                "classes": CLASSES,
                "mean": 0.5,
                "std": 0.25,
            }
        )
    )
    params = {"extractor": "frame_cnn", "model": str(tmp_path / "cnn.json"), "framing": {"crop": 0.6, "center_y": 0.55}}
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    clip = SimpleNamespace(
        color=color, grey=color.mean(3).astype(np.uint8), times=np.arange(3) / 5.0, frames=np.arange(3)
    )
    tr = ["h0v0b1.0", "h1v0b1.0", "h0v0b1.1"]
    ext = TransformedFrameCNN(params, tr)
    out = ext.extract(clip).values
    d = FrameCNN(params).dim
    assert out.shape == (3, 3 * d) and ext.dim == 3 * d
    plain = FrameCNN(params)
    for k, name in enumerate(tr):
        view = SimpleNamespace(
            color=aug.apply_transform(color, name),
            grey=aug.apply_transform(clip.grey, name),
            times=clip.times,
            frames=clip.frames,
        )
        assert np.allclose(out[:, k * d : (k + 1) * d], plain.extract(view).values, atol=1e-6)
    assert np.allclose(out[:, :d], plain.extract(clip).values, atol=1e-6)  # the identity: the feature itself
    assert not np.allclose(out[:, :d], out[:, d : 2 * d])
    # read back as the e2e network's face input: (K, T, D) per clip
    from emoflow.e2e.tta import schema

    rows = [{"video_id": "v", "frame": k, "time": k / 5, "missing": False, "x": out[k]} for k in range(3)]
    write_rows(rows, tmp_path / "tta.parquet", schema(d, tr))
    back = load_inputs(None, [str(tmp_path / "tta.parquet")], face_cached=True)
    assert back.transforms == tr and back.face["v"].shape == (3, 3, d)
    assert np.allclose(back.face["v"][1], out[:, d : 2 * d])


# --------------------------------------------------------------------------- the workflow


@pytest.mark.workflow
def test_dry_run_plans_e2e_and_fusion_reads_it(tmp_path):
    from conftest import REPO, copy_workflow, job_counts, snakemake

    wf = copy_workflow(tmp_path / "wf")
    cfg = {
        "outdir": "results/t",
        "e2e": {"e2e": {"audio": "logmel", "face": "frame_cnn", "seeds": [0]}},
        "fusion": {"groups": {"all": {"modalities": ["face", "audio", "text"]}, "all_with_e2e": {}}},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(wf, tmp_path / "work", "-n", "--configfile", str(tmp_path / "cfg.yaml"))
    out = dry.stdout + dry.stderr
    counts = job_counts(out)
    n_shards = yaml.safe_load((REPO / "config.yaml").read_text())["sharding"]["n_shards"]
    assert counts["e2e"] == 1 and counts["e2e_tta"] == n_shards
    jobs = []  # (rule, input line, output line) of every planned job
    for chunk in re.split(r"^rule ", out, flags=re.M)[1:]:
        lines = chunk.splitlines()
        field = {ln.strip().split(": ", 1)[0]: ln.strip().split(": ", 1)[1] for ln in lines[1:] if ": " in ln}
        jobs.append((lines[0].rstrip(":"), field.get("input", ""), field.get("output", "")))
    fusion = {o.split(",")[0]: i for r, i, o in jobs if r == "fusion"}
    assert "results/t/predictions/main/e2e.parquet" in fusion["results/t/fusion/main/all_with_e2e.json"]
    e2e_in = next(i for r, i, o in jobs if r == "e2e")
    assert (
        "results/t/e2e/tta/frame_cnn_tta/s000.parquet" in e2e_in and "results/t/features/logmel/s000.parquet" in e2e_in
    )
    classify_out = [o for r, i, o in jobs if r == "classify"]
    assert classify_out and not any("main/e2e." in o for o in classify_out)
    bundle_in = next(i for r, i, o in jobs if r == "bundle")
    assert "results/t/models/classify/main/e2e.model" not in bundle_in  # the bundle's group 'all' leaves e2e out
