"""Audio and text extractors: documented openSMILE sizes, spectral shapes, the missing-
audio path (no NaN, explicit rows and skips), ASR, train-only TF-IDF, sentence embeddings."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, make_video
from emoflow import tables
from emoflow.config import load_config
from emoflow.features import base
from emoflow.features.opensmile_sets import OpenSmile
from emoflow.features.spectral import MFCC, LogMel
from emoflow.storage import read_table, write_rows

SR = 16000


def tone(seconds=1.5, freq=220.0, amp=0.3):
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    return (
        amp * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)
    ).astype(np.float32)


@pytest.mark.parametrize(
    "feature_set, functionals, lld",
    [
        ("IS09", 384, 16),
        ("IS10", 1582, 38),
        ("IS11", 4368, 59),
        ("IS13", 6373, 65),
        ("eGeMAPSv02", 88, 25),
        ("ComParE_2016", 6373, 65),
    ],
)
def test_opensmile_sizes_match_the_documented_ones(feature_set, functionals, lld):
    f = OpenSmile({"feature_set": feature_set, "level": "functionals"})
    out = f.extract((tone(), SR))
    assert f.level == "video" and f.dim == functionals and out.values.shape == (functionals,)
    assert np.isfinite(out.values).all()
    frames = OpenSmile({"feature_set": feature_set, "level": "lld"})
    lo = frames.extract((tone(), SR))
    assert frames.level == "frame" and lo.values.shape[1] == lld
    assert np.median(np.diff(lo.times)) == pytest.approx(0.01) and (np.diff(lo.times) >= 0).all()  # 10 ms hop


def test_unknown_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown parameter"):
        OpenSmile({"feature_set": "IS09", "levle": "lld"})


def test_spectral_shapes_and_hop():
    m = MFCC({"n_mfcc": 13, "deltas": 2}).extract((tone(1.0), SR))
    assert m.values.shape == (101, 39) and m.times[1] == pytest.approx(0.01)
    lm = LogMel({"n_mels": 64}).extract((tone(1.0), SR))
    assert lm.values.shape == (101, 64)
    peak_band = np.argmax(lm.values.mean(axis=0))
    assert peak_band < 16  # a 220 Hz tone lives in the low mel bands


def _shard(tmp_path, cfg):
    """audio index + wavs for: speech-like tone, a silent track, and no audio stream."""
    from emoflow.media import audio, probe
    from emoflow.dataset.sheet import write_sheet

    make_video(tmp_path / "loud.mp4", duration=1.5, tone=300)
    make_video(tmp_path / "mute.mp4", duration=1.0, audio=False)
    import subprocess

    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=16000:cl=mono",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            str(tmp_path / "silent.mp4"),
        ],
        check=True,
    )
    sheet = str(tmp_path / "sheet.parquet")
    write_sheet(
        pd.DataFrame(
            {
                "video_id": ["loud", "mute", "silent"],
                "path": [str(tmp_path / f"{v}.mp4") for v in ("loud", "mute", "silent")],
            }
        ),
        sheet,
    )
    probe.run(sheet, str(tmp_path / "p.parquet"), str(tmp_path / "ps.parquet"), cfg)
    audio.run(
        sheet,
        str(tmp_path / "p.parquet"),
        str(tmp_path / "a.parquet"),
        str(tmp_path / "wav"),
        str(tmp_path / "as.parquet"),
        cfg,
    )
    return str(tmp_path / "a.parquet"), str(tmp_path / "wav")


@pytest.fixture
def cfg():
    return json.loads(json.dumps(load_config([REPO / "config.yaml"])))


@pytest.mark.parametrize("name", ["egemaps", "egemaps_lld", "mfcc"])
def test_missing_and_silent_audio_give_explicit_rows_not_nan(tmp_path, cfg, name):
    index, wavs = _shard(tmp_path, cfg)
    out, skips = str(tmp_path / "f.parquet"), str(tmp_path / "s.parquet")
    n, missing = base.run(name, cfg, [index, wavs], out, skips)
    meta, x = base.read_features(out)
    assert n == 3 and missing == 2 and np.isfinite(x).all()
    by_video = meta.groupby("video_id")["missing"].agg(["all", "size"])
    assert not by_video.loc["loud", "all"] and by_video.loc["mute", "all"] and by_video.loc["silent", "all"]
    assert by_video.loc["mute", "size"] == 1 and (x[meta["missing"].to_numpy()] == 0).all()
    reasons = {s["video_id"]: s["reason"] for s in read_table(skips).to_pylist()}
    assert reasons["mute"] == "no audio" and reasons["silent"].startswith("silent audio")


def test_word_error_rate():
    from emoflow.asr.backends import word_error_rate

    assert word_error_rate("kids are talking by the door", "kids are talking by the door") == (0, 6)
    assert word_error_rate("dogs are sitting by the door", "does it sitting by the door") == (2, 6)
    assert word_error_rate("a b c", "") == (3, 3)


def test_pocketsphinx_transcribes_speech():
    from emoflow.asr.backends import make, word_error_rate
    from emoflow.demo.speech import synthesize

    voice = synthesize("Kids are talking by the door", "neutral", 0, np.random.default_rng(0))
    import librosa

    x = librosa.resample(voice, orig_sr=22050, target_sr=SR)
    text, conf = make("pocketsphinx").transcribe(x, SR)
    edits, n = word_error_rate("kids are talking by the door", text)
    assert edits / n <= 0.5, text
    assert 0.0 <= conf <= 1.0


def test_asr_stage_marks_no_audio_and_silence_missing(tmp_path, cfg):
    from emoflow.asr import stage

    index, wavs = _shard(tmp_path, cfg)
    rows, skips = stage.run(index, wavs, str(tmp_path / "t.parquet"), str(tmp_path / "s.parquet"), cfg)
    by_id = {r["video_id"]: r for r in rows}
    assert by_id["mute"]["missing"] and by_id["mute"]["text"] == ""
    assert by_id["silent"]["missing"] and by_id["silent"]["text"] == ""  # never sent to the recogniser
    assert {s["video_id"] for s in skips} >= {"mute", "silent"}


def test_tfidf_is_fitted_on_the_training_split_only(tmp_path):
    from emoflow.features import tfidf
    from emoflow.features.fit import main as fit_main

    man = tmp_path / "m.csv"
    pd.DataFrame({"video_id": ["a", "b", "c"], "path": ["x"] * 3, "split": ["train", "train", "test"]}).to_csv(
        man, index=False
    )
    tr = tmp_path / "t.parquet"
    write_rows(
        [
            {"video_id": v, "text": t, "confidence": 1.0, "n_words": 3, "missing": False, "backend": "x"}
            for v, t in [("a", "kids are talking"), ("b", "dogs are sitting"), ("c", "zebras secretly dancing")]
        ],
        tr,
        tables.TRANSCRIPTS,
    )
    model = tmp_path / "tfidf.json"
    argv = ["tfidf", str(model), "--manifest", str(man), "--transcripts", str(tr)]
    assert fit_main([*argv, "--config", json.dumps({"ngram_max": 1})]) == 0
    vocab = json.loads(model.read_text())["vocabulary"]
    assert "kids" in vocab and "dogs" in vocab
    assert not {"zebras", "secretly", "dancing"} & set(vocab)  # test-split words never enter
    ext = tfidf.TfIdf({"model": str(model)})
    assert np.count_nonzero(ext.extract("zebras secretly dancing").values) == 0
    v = ext.extract("kids are talking").values
    assert v[vocab.index("kids")] > v[vocab.index("are")] > 0  # rarer term, higher weight


def test_sentence_embeddings_offline():
    from emoflow.features.text import SentenceEmbedding

    ext = SentenceEmbedding({})
    a, b, c = (
        ext.extract(t).values
        for t in ("kids are talking by the door", "children are chatting at the door", "the stock market fell")
    )
    assert ext.dim == 384 and a.shape == (384,)
    assert float(a @ b) > float(a @ c) + 0.2


def test_audio_cnn_learns_and_embeds(tmp_path):
    """Train the audio CNN on tiny made-up classes (low vs high tones), then embed."""
    from emoflow.features import audio_cnn
    from emoflow.storage import atomic_path

    rng = np.random.default_rng(0)

    def clip(label):
        return tone(1.2, freq=(180 if label == 0 else 900) * rng.uniform(0.9, 1.1), amp=rng.uniform(0.1, 0.4))

    def dataset(n):
        xs, ys, clips = [], [], []
        for i in range(n):
            y = i % 2
            x, _ = audio_cnn.patches(clip(y), SR)
            xs.append(x)
            ys.append(y)
            clips.append(np.full(len(x), i))
        return np.concatenate(xs), np.array(ys), np.concatenate(clips)

    tr, va = dataset(16), dataset(8)
    mean, std = float(tr[0].mean()), float(tr[0].std())
    model, history = audio_cnn.train(
        (tr[0] - mean) / std,
        tr[1],
        tr[2],
        (va[0] - mean) / std,
        va[1],
        va[2],
        2,
        epochs=15,
        patience=15,
        log=lambda *_: None,
    )
    assert max(h["holdout_clip_acc"] for h in history) >= 0.75
    meta = tmp_path / "m.json"
    with atomic_path(meta.with_suffix(".keras"), suffix=".keras") as tmp:
        model.save(tmp)
    meta.write_text(json.dumps({"mean": mean, "std": std}))
    ext = audio_cnn.AudioCNN({"model": str(meta)})
    out = ext.extract((tone(2.0), SR))
    assert ext.level == "segment" and ext.dim == 128
    assert out.values.shape == (len(out.times), 128) and np.allclose(np.diff(out.times), 0.48)
