"""The embedded demo: planned deterministically, speaker-independent, and learnable
from the face and from the voice (checked on the workflow's own outputs with simple
features and a linear model trained on the training speakers only)."""

import json

import numpy as np
import pandas as pd

from emoflow.config import schema, validate
from emoflow.demo.generate import plan
from emoflow.media.audio import read_wav
from emoflow.media.frames import FrameReader
from emoflow.storage import read_table


def demo_cfg(**over):
    cfg = validate({"outdir": "x", "demo": over}, schema("config"))
    return cfg["demo"]


def test_plan_is_deterministic_balanced_and_speaker_independent():
    demo = demo_cfg()
    a, b = plan(demo), plan(demo)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 12 * 3 * 2
    spk_splits = a.groupby("speaker")["split"].nunique()
    assert (spk_splits == 1).all()  # every speaker in exactly one split
    assert a.drop_duplicates("speaker")["split"].value_counts().to_dict() == {"train": 8, "val": 2, "test": 2}
    assert (a.groupby(["split", "label"]).size().unstack().nunique(axis=1) == 1).all()  # balanced classes
    assert plan(demo_cfg(seed=1))["split"].tolist() != a["split"].tolist()


def test_generated_clip_is_real_av_media(tmp_path):
    from emoflow.demo.generate import generate_clip
    from emoflow.media.probe import probe_one

    demo = demo_cfg(speakers={"train": 1, "val": 1, "test": 1})
    row = plan(demo).iloc[0].to_dict()
    out = tmp_path / "c.mp4"
    generate_clip(row, demo, out, 0)
    info = probe_one("c", str(out), 30)
    assert info["ok"] and info["has_audio"] and info["has_video"]
    assert (info["width"], info["height"], info["fps"]) == (256, 256, 25)
    assert 1.0 < info["duration_s"] < 5.0
    first = out.read_bytes()
    generate_clip(row, demo, out, 0)
    assert out.read_bytes() == first  # bit-exact regeneration


def _split_rows(demo_run):
    manifest = pd.read_csv(demo_run / "demo" / "manifest.csv")
    return manifest.set_index("video_id")


def _audio_features(demo_run, ids):
    index = pd.concat([read_table(p).to_pandas() for p in sorted((demo_run / "audio").glob("*.parquet"))])
    index = index.set_index("video_id")
    feats = []
    for vid in ids:
        shard_dir = next(p for p in (demo_run / "audio").iterdir() if p.is_dir() and (p / f"{vid}.wav").exists())
        x, sr = read_wav(shard_dir / f"{vid}.wav")
        frames = x[: len(x) // 400 * 400].reshape(-1, 400)  # 25 ms
        energy = np.sqrt((frames**2).mean(axis=1))
        voiced = frames[energy > 0.1 * energy.max()]
        f0s = []
        for fr in voiced:  # autocorrelation pitch, 60-400 Hz
            ac = np.correlate(fr, fr, "full")[len(fr) - 1 :]
            lo, hi = sr // 400, sr // 60
            f0s.append(sr / (lo + np.argmax(ac[lo:hi])))
        spec = np.abs(np.fft.rfft(voiced, axis=1)).mean(axis=0)
        centroid = (spec * np.arange(len(spec))).sum() / spec.sum()
        feats.append(
            [
                index.loc[vid, "duration_s"],
                np.log(energy.mean()),
                np.median(f0s),
                np.std(f0s),
                centroid,
                len(voiced) / len(frames),
            ]
        )
    return np.array(feats)


def _face_features(demo_run, ids):
    from skimage.feature import hog
    from skimage.transform import resize

    readers = [FrameReader(str(p)) for p in sorted((demo_run / "frames").glob("*.parquet"))]
    where = {vid: r for r in readers for vid in r.video_ids()}
    feats = []
    for vid in ids:
        _, imgs = where[vid].frames(vid, mode="L")
        apex = np.mean([im.astype(float) for im in imgs[len(imgs) // 2 :]], axis=0)
        h, w = apex.shape
        crop = apex[h // 2 - 64 : h // 2 + 80, w // 2 - 72 : w // 2 + 72]  # the face's middle and lower part
        feats.append(hog(resize(crop, (72, 72)), pixels_per_cell=(8, 8), cells_per_block=(2, 2)))
    return np.array(feats)


def _speaker_independent_accuracy(X, rows):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = (rows["split"] == "train").to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    model.fit(X[train], rows["label"][train])
    return float((model.predict(X[~train]) == rows["label"][~train]).mean())


def test_demo_run_outputs_are_complete(demo_run):
    summary = json.loads((demo_run / "report" / "media_summary.json").read_text())
    assert summary["videos"] == summary["probe_ok"] == summary["videos_with_frames"] == summary["videos_with_wav"] == 72
    assert summary["skips"] == {}


def test_demo_is_learnable_from_the_voice(demo_run):
    rows = _split_rows(demo_run)
    acc = _speaker_independent_accuracy(_audio_features(demo_run, rows.index), rows)
    print(f"voice: held-out-speaker accuracy {acc:.3f} (chance 0.333)")
    assert acc >= 0.8


def test_demo_is_learnable_from_the_face(demo_run):
    rows = _split_rows(demo_run)
    acc = _speaker_independent_accuracy(_face_features(demo_run, rows.index), rows)
    print(f"face: held-out-speaker accuracy {acc:.3f} (chance 0.333)")
    assert acc >= 0.7
