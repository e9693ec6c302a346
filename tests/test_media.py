"""Probe, frames and audio on tiny real media made with ffmpeg."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import make_video
from emoflow import tables
from emoflow.config import load_config
from emoflow.dataset.sheet import write_sheet
from emoflow.media import audio, frames, probe
from emoflow.media.frames import FrameReader, output_size
from emoflow.storage import read_table

from conftest import REPO


@pytest.fixture(scope="module")
def cfg():
    return load_config([REPO / "config.yaml"])


@pytest.fixture
def corpus(tmp_path):
    """Good, silent-less and broken inputs in one shard."""
    d = tmp_path / "in"
    make_video(d / "good.mp4", duration=2.0, size=(320, 240), fps=25, tone=440)
    make_video(d / "mute.mp4", duration=1.0, size=(64, 64), fps=10, audio=False)
    make_video(d / "rot0.mp4", duration=1.0, size=(64, 32), fps=10)  # then tag it as shot rotated:
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(d / "rot0.mp4"),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(d / "rot.mp4"),
        ],
        check=True,
    )
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 50)
    good = (d / "good.mp4").read_bytes()
    (d / "trunc.mp4").write_bytes(good[: len(good) // 2])
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(d / "voice.m4a")], check=True
    )
    names = ["good", "mute", "rot", "empty", "text", "trunc", "voice"]
    paths = [str(d / (n + (".m4a" if n == "voice" else ".mp4"))) for n in names]
    sheet = tmp_path / "sheet.parquet"
    write_sheet(pd.DataFrame({"video_id": names, "path": paths}), str(sheet))
    return tmp_path, sheet


def run_probe(corpus, cfg):
    tmp, sheet = corpus
    out, skips = tmp / "probe.parquet", tmp / "probe_skips.parquet"
    probe.run(str(sheet), str(out), str(skips), cfg)
    return out, {r["video_id"]: r for r in read_table(out).to_pylist()}, read_table(skips).to_pylist()


def test_probe_reads_good_files_and_records_broken_ones(corpus, cfg):
    _, rows, skips = run_probe(corpus, cfg)
    g = rows["good"]
    assert g["ok"] and g["has_video"] and g["has_audio"]
    assert (g["width"], g["height"]) == (320, 240) and g["fps"] == pytest.approx(25)
    assert g["duration_s"] == pytest.approx(2.0, abs=0.1) and g["n_frames"] == 50
    assert rows["mute"]["ok"] and not rows["mute"]["has_audio"]
    assert (rows["rot"]["width"], rows["rot"]["height"], rows["rot"]["rotation"]) == (32, 64, 90)
    assert rows["voice"]["ok"] and not rows["voice"]["has_video"] and rows["voice"]["has_audio"]
    assert "zero-byte file" in rows["empty"]["error"] and rows["empty"]["error"].startswith(str(corpus[0]))
    assert "not a readable media file" in rows["text"]["error"]
    assert "Invalid data found when processing input" in rows["trunc"]["error"]  # moov atom cut off
    assert "file:" not in rows["trunc"]["error"]
    assert {s["video_id"]: s["kind"] for s in skips} == {"empty": "error", "text": "error", "trunc": "error"}


def test_frames_sampled_scaled_and_readable(corpus, cfg, tmp_path):
    tmp, sheet = corpus
    probe_out, rows, _ = run_probe(corpus, cfg)
    cfg = json.loads(json.dumps(cfg))
    cfg["frames"].update(fps=5, max_side=160, rows_per_group=4)
    out, skips = tmp / "frames.parquet", tmp / "frames_skips.parquet"
    frames.run(str(sheet), str(probe_out), str(out), str(skips), cfg)
    reader = FrameReader(str(out))
    times, imgs = reader.frames("good")
    assert len(imgs) == 10  # 2 s at 5 fps
    np.testing.assert_allclose(times, np.arange(10) * 0.2)
    assert imgs[0].shape == (120, 160, 3)  # 320x240 -> longer side 160, aspect kept
    # the stored frame matches ffmpeg's own decode of the same instant
    ref = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(tmp / "in" / "good.mp4"),
            "-vf",
            "fps=5,scale=160:120:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:",
        ],
        capture_output=True,
        check=True,
    ).stdout
    ref = np.frombuffer(ref, np.uint8).reshape(-1, 120, 160, 3)
    assert len(ref) == 10
    err = [np.abs(imgs[3].astype(int) - ref[k].astype(int)).mean() for k in (2, 3, 4)]
    assert err[1] < 8.0 and err[1] < 0.5 * min(err[0], err[2])  # same instant; JPEG 4:2:0 error only
    _, rot = reader.frames("rot")
    assert rot[0].shape == (64, 32, 3)  # rotation applied
    assert len(reader.table("good")) == 10 and reader.file.num_row_groups >= 3  # 4 frames a group
    by_id = {s["video_id"]: s for s in read_table(skips).to_pylist()}
    assert by_id["voice"]["kind"] == "missing" and "no video stream" in by_id["voice"]["reason"]
    assert by_id["empty"]["kind"] == "upstream" and "zero-byte" in by_id["empty"]["reason"]
    assert "mute" not in by_id and "good" not in by_id


def test_frames_time_limit_is_enforced(corpus, cfg):
    tmp, sheet = corpus
    probe_out, _, _ = run_probe(corpus, cfg)
    cfg = json.loads(json.dumps(cfg))
    cfg["frames"].update(timeout_base_s=0.001, timeout_per_media_s=0.0)
    out, skips = tmp / "f.parquet", tmp / "fs.parquet"
    frames.run(str(sheet), str(probe_out), str(out), str(skips), cfg)
    reasons = {s["video_id"]: s["reason"] for s in read_table(skips).to_pylist()}
    assert "time limit" in reasons["good"]


def test_audio_16k_mono_and_missing_audio_recorded(corpus, cfg):
    tmp, sheet = corpus
    probe_out, _, _ = run_probe(corpus, cfg)
    index, wavs, skips = tmp / "audio.parquet", tmp / "wavs", tmp / "audio_skips.parquet"
    audio.run(str(sheet), str(probe_out), str(index), str(wavs), str(skips), cfg)
    rows = {r["video_id"]: r for r in read_table(index).to_pylist()}
    assert set(rows) == {"good", "mute", "rot", "empty", "text", "trunc", "voice"}
    g = rows["good"]
    assert g["has_audio"] and g["sample_rate"] == 16000
    assert g["duration_s"] == pytest.approx(2.0, abs=0.1)
    samples, rate = audio.read_wav(wavs / g["wav"])
    assert rate == 16000 and samples.ndim == 1 and len(samples) == g["n_samples"]
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * rate / len(samples) == pytest.approx(440, abs=5)  # the sine survived
    assert rows["voice"]["has_audio"]  # audio-only files still give audio
    assert not rows["mute"]["has_audio"]
    by_id = {s["video_id"]: s for s in read_table(skips).to_pylist()}
    assert by_id["mute"]["kind"] == "missing" and "no audio stream" in by_id["mute"]["reason"]
    assert by_id["text"]["kind"] == "upstream"
    assert sorted(p.name for p in wavs.iterdir()) == sorted(f"{v}.wav" for v, r in rows.items() if r["has_audio"])


def test_output_size_never_upscales():
    assert output_size(1920, 1080, 640) == (640, 360)
    assert output_size(100, 50, 640) == (100, 50)
    assert output_size(1080, 1920, None) == (1080, 1920)


def test_skip_rows_validate_kind():
    with pytest.raises(ValueError):
        tables.skip("v", "frames", "oops", "why")
