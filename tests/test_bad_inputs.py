"""Bad inputs, in one place: every kind of input a user's corpus may hold that is not a
clean labelled clip, what emoflow does with it, and the test that proves it.

``CASES`` is the list (the README's bad-input table is made from it).  Each case ends in
one of two ways, chosen for what a user would want:

* **skip**: the video is recorded in ``skips/<stage>/<shard>.parquet`` (kind ``error``,
  ``missing``, ``partial`` or ``upstream``, with a reason naming the file and the cause),
  every stage after it leaves it out or marks its features ``missing``, its predictions
  are the training prior flagged ``missing``, and the rest of the run completes;
* **error**: the run stops before doing any work (or, for evaluation problems, at the
  ``splits`` job, after the per-video stages have run and are kept) with a message that
  names the file, the line or partition, and the cause.

Most cases run together in one small workflow run (``bad_run``: an 18-clip generated corpus
plus one file per bad case, two shards, three experiments, fusion and report) on a
private copy of the workflow; the manifest-level errors need only a dry run.  Cases
covered at stage level elsewhere are listed with their test.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_workflow, job_counts, make_video, snakemake
from emoflow.config import load_config, schema, validate
from emoflow.dataset.manifest import validate_manifest
from emoflow.errors import ManifestError
from emoflow.media.ffmpeg import command
from emoflow.media import audio, frames, probe
from emoflow.media.ffmpeg import Process
from emoflow.storage import read_table

pytestmark = pytest.mark.workflow

SKIP_ALL = "probe error; upstream skip in frames, audio, faces; every feature missing; predictions = training prior, flagged missing"
#: case -> (what the input is, outcome, where it is tested).  In this file unless named.
CASES = {
    # --- media, in the workflow run (bad_run) ---
    "zero_byte": ("zero-byte file", f"skip: {SKIP_ALL} ('zero-byte file')", "test_media_case"),
    "truncated_header": (
        "mp4 cut in half (index at the end: unreadable)",
        f"skip: {SKIP_ALL} ('not a readable media file')",
        "test_media_case",
    ),
    "truncated_tail": (
        "mp4 cut at 60% (index at the front: the start decodes)",
        "processed: the decoded part is kept; frames and audio record a 'partial' skip",
        "test_media_case",
    ),
    "not_a_video": ("a text file named .mp4", f"skip: {SKIP_ALL} ('not a readable media file')", "test_media_case"),
    "random_bytes": ("random bytes named .mp4", f"skip: {SKIP_ALL}", "test_media_case"),
    "still_image": (
        "a JPEG photo",
        "processed as a one-frame video; no audio stream (audio 'missing', audio features missing)",
        "test_media_case",
    ),
    "no_audio": (
        "video without an audio stream",
        "processed; audio skip 'missing' (has_audio false), audio features missing",
        "test_media_case",
    ),
    "silent_audio": (
        "audio stream of digital silence",
        "processed; audio features missing ('silent audio', below feature_inputs.min_audio_dbfs)",
        "test_media_case",
    ),
    "audio_only": (
        "audio-only file (.m4a)",
        "processed; frames skip 'missing' (no video stream), faces 'upstream', visual features missing",
        "test_media_case",
    ),
    "no_face": ("video without a face", "processed; faces skip 'missing', visual features missing", "test_media_case"),
    "two_frames": (
        "2-frame video (0.08 s)",
        "processed: one sampled frame (the fps filter passes the last frame); eGeMAPS functionals of 0.08 s of audio hold NaN, so that feature is missing ('NaN or infinite'), every other feature present",
        "test_media_case",
    ),
    "video_4k": (
        "3840x2160 video",
        "processed; frames stored at frames.max_side (256x144); peak RSS per stage in bench/out/bad_inputs.json",
        "test_media_case",
    ),
    "odd_file_name": (
        "file and folder names with spaces, quotes, unicode, ';', '$()', backticks",
        "processed like any other; no injected command runs",
        "test_no_manifest_field_reaches_a_shell",
    ),
    "long_video": (
        "10-minute video",
        "processed, streamed (frames in row groups; the face stage decodes a long video's frames on demand): memory bounded; peak RSS per stage in bench/out/bad_inputs.json",
        "test_long_video_is_streamed; test_long_video_faces_are_decoded_on_demand_with_the_same_results",
    ),
    "hung_decoder": (
        "ffmpeg that stops producing output",
        "killed at its time limit (timeout_base_s + timeout_per_media_s x duration); skip 'error' or 'partial'",
        "test_hung_decoder_is_killed_at_its_time_limit",
    ),
    # --- manifest: the run stops before any job, listing every problem with its line ---
    "duplicate_ids": (
        "two rows with one video_id (or ids differing only in case)",
        "error: line and first line of the id",
        "test_manifest_errors_stop_the_run_before_any_job; test_manifest.py",
    ),
    "unsafe_ids": (
        "video_id with spaces, quotes, unicode, ';', '$()', backticks, '/'",
        "error: the id is unsafe as a file name",
        "test_manifest_errors_stop_the_run_before_any_job; test_manifest.py",
    ),
    "label_outside_class_set": (
        "label not in the configured label space",
        "error: the label and the class set",
        "test_manifest_errors_stop_the_run_before_any_job; test_manifest.py",
    ),
    "missing_file": (
        "path to no file, a folder, or a pipe/device",
        "error: file not found / is a directory / not a regular file",
        "test_manifest_errors_stop_the_run_before_any_job; test_manifest.py",
    ),
    "braces_in_path": (
        "file name with '{' or '}'",
        "error: rename the file (Snakemake reads braces as wildcards)",
        "test_manifest_errors_stop_the_run_before_any_job",
    ),
    "bad_split": ("split not train/val/test/empty", "error", "test_manifest.py"),
    "empty_manifest": ("empty file, header only, missing columns", "error", "test_manifest.py"),
    # --- evaluation: the splits job fails (per-video stages done and kept) ---
    "class_absent_from_train": (
        "a class in val/test with no training video",
        "error at the splits job: the class, its videos per split, the manifest",
        "test_evaluation_errors_name_the_manifest_and_keep_the_media_stages",
    ),
    "empty_split": (
        "no val (or train, or test) videos",
        "error at the splits job: which split is empty, counts per split, the manifest",
        "test_evaluation_errors_name_the_manifest_and_keep_the_media_stages",
    ),
    "class_absent_everywhere": (
        "a class of the label space no video has",
        "allowed (the label space may be wider than the corpus): its probability column is 0",
        "test_class_absent_from_every_split_is_allowed",
    ),
}

FEATURES = {"egemaps": "audio", "hog": "face", "lbp_top": "face"}
EXPERIMENTS = {
    "egemaps_lr": {"feature": "egemaps", "classifier": "logistic"},
    "hog_mean_lr": {"feature": "hog", "encoding": "mean", "classifier": "logistic"},
    "lbp_top_lr": {"feature": "lbp_top", "classifier": "logistic"},
}
AUDIO_FEATURES = ["features/egemaps"]
VISUAL_FEATURES = ["features/hog", "features/lbp_top"]
UNREADABLE = {("probe", "error"), ("frames", "upstream"), ("audio", "upstream"), ("faces", "upstream")} | {
    (f, "missing") for f in AUDIO_FEATURES + VISUAL_FEATURES
}
#: case -> the (stage, kind) of every skip row the run records for it, exactly
EXPECTED_SKIPS = {
    "zero_byte": UNREADABLE,
    "truncated_header": UNREADABLE,
    "not_a_video": UNREADABLE,
    "random_bytes": UNREADABLE,
    "truncated_tail": {("frames", "partial"), ("audio", "partial")},
    "still_image": {("audio", "missing")} | {(f, "missing") for f in AUDIO_FEATURES},
    "no_audio": {("audio", "missing")} | {(f, "missing") for f in AUDIO_FEATURES},
    "silent_audio": {(f, "missing") for f in AUDIO_FEATURES},
    "audio_only": {("frames", "missing"), ("faces", "upstream")} | {(f, "missing") for f in VISUAL_FEATURES},
    "no_face": {("faces", "missing")} | {(f, "missing") for f in VISUAL_FEATURES},
    "two_frames": {("features/egemaps", "missing")},  # a NaN functional is never written as 0
    "video_4k": set(),
    "odd_file_name": set(),
}
REASONS = {  # case -> (stage, words its skip reason holds)
    "zero_byte": ("probe", "zero-byte file"),
    "truncated_header": ("probe", "not a readable media file"),
    "not_a_video": ("probe", "not a readable media file"),
    "random_bytes": ("probe", "not a readable media file"),
    "truncated_tail": ("frames", "decoding stopped early"),
    "still_image": ("audio", "no audio stream"),
    "no_audio": ("audio", "no audio stream"),
    "silent_audio": ("features/egemaps", "silent audio"),
    "audio_only": ("frames", "no video stream"),
    "no_face": ("faces", "no face found"),
}
# Names a shell would run something from, were they ever pasted into a command unquoted.
ODD_DIR = "data ünï $(touch pwned_dir) `touch pwned_dir_tick`; touch pwned_dir_semi"
ODD_NAME = "we ird 'q' \"d\" $(touch pwned_dollar) `touch pwned_tick`; touch pwned_semi & é日本😀 -x.mp4"
ODD_ID = "odd_file_name"


def ffmpeg(*args):
    subprocess.run(command(*args), check=True, timeout=120)


def face_png(path: Path) -> Path:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(path)
    return path


def face_video(
    path: Path,
    png: Path,
    duration=1.0,
    audio="sine=frequency=300:sample_rate=22050",
    scale="256:256",
    frames=None,
    extra=(),
):
    """A video of a real face photo (skimage's astronaut) with ``audio`` (a lavfi source; None: no audio stream)."""
    args = ["-loop", "1", "-framerate", "25", "-i", str(png)]
    if audio:
        args += ["-f", "lavfi", "-i", audio]
    args += ["-vf", f"scale={scale}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "1"]
    args += ["-frames:v", str(frames)] if frames else ["-t", str(duration)]
    if audio:
        args += ["-c:a", "aac", "-t", str(duration if not frames else frames / 25)]
    ffmpeg(*args, *extra, str(path))
    return path


def make_bad_media(root: Path, png: Path, good_clip: Path) -> dict[str, Path]:
    """One file per media case (``EXPECTED_SKIPS``), under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    m = {}
    m["zero_byte"] = root / "zero.mp4"
    m["zero_byte"].write_bytes(b"")
    data = good_clip.read_bytes()  # the demo's mp4s keep their index (moov) at the end
    m["truncated_header"] = root / "trunc_header.mp4"
    m["truncated_header"].write_bytes(data[: len(data) // 2])
    faststart = root / "faststart.tmp.mp4"
    ffmpeg("-i", str(good_clip), "-c", "copy", "-movflags", "+faststart", str(faststart))
    fs = faststart.read_bytes()
    faststart.unlink()
    m["truncated_tail"] = root / "trunc_tail.mp4"
    m["truncated_tail"].write_bytes(fs[: len(fs) * 6 // 10])
    m["not_a_video"] = root / "notes.mp4"
    m["not_a_video"].write_text("this is not a video\n" * 100)
    m["random_bytes"] = root / "random.mp4"
    m["random_bytes"].write_bytes(np.random.default_rng(0).integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    m["still_image"] = root / "still.jpg"
    ffmpeg("-i", str(png), "-vf", "scale=256:256", str(m["still_image"]))
    m["no_audio"] = face_video(root / "no_audio.mp4", png, audio=None)
    m["silent_audio"] = face_video(root / "silent.mp4", png, audio="anullsrc=r=22050:cl=mono")
    m["audio_only"] = root / "voice.m4a"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=22050:duration=1.5", "-c:a", "aac", str(m["audio_only"])
    )
    m["no_face"] = make_video(root / "no_face.mp4", duration=1.0, size=(128, 96), fps=25, pattern="testsrc")
    m["two_frames"] = face_video(root / "two_frames.mp4", png, frames=2)
    m["video_4k"] = face_video(root / "video_4k.mp4", png, duration=0.6, scale="2160:2160,pad=3840:2160:840:0")
    odd = root / ODD_DIR
    odd.mkdir()
    m["odd_file_name"] = face_video(odd / ODD_NAME, png, duration=1.0)
    return m


def write_csv(path: Path, rows: list[dict]) -> Path:
    """A manifest written by a real CSV writer (quotes where a field needs them)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def lean_config(manifest: Path) -> dict:
    """A small run: two shards, one audio and two visual extractors, three experiments."""
    base = load_config([REPO / "config.yaml"])
    return {
        "outdir": "results/bad",
        "dataset": {"name": "bad", "source": "manifest", "manifest": str(manifest), "label_space": "demo3"},
        "sharding": {"n_shards": 2},
        "features": {**{n: None for n in base["features"]}, **{n: base["features"][n] for n in FEATURES}},
        "asr": {"enabled": False},
        "experiments": {**{n: None for n in base["experiments"]}, **EXPERIMENTS},
        "evaluation": {"cv_folds": 2},
    }


def _skips(results: Path) -> pd.DataFrame:
    parts = [read_table(p).to_pandas() for p in sorted((results / "skips").rglob("*.parquet"))]
    return pd.concat(parts, ignore_index=True)


def _pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in Path(root).rglob("pwned*")]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """Run the workflow three times on one corpus: (1) with no val videos, (2) with a class
    absent from training (both fail at the splits job), (3) with the good manifest (completes)."""
    tmp = tmp_path_factory.mktemp("bad")
    wf = copy_workflow(tmp / "wf")
    work = tmp / "work"
    data = tmp / ODD_DIR  # the manifest and its good clips sit in an odd folder too
    demo = validate(
        {
            "outdir": "x",
            "demo": {
                "speakers": {"train": 3, "val": 2, "test": 1},
                "sentences": ["Kids are talking by the door"],
                "size": 160,
            },
        },
        schema("config"),
    )["demo"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO / "src")}
    subprocess.run(
        [sys.executable, "-m", "emoflow.demo.generate", str(data), "--config", json.dumps({"demo": demo})],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    good = pd.read_csv(data / "manifest.csv", dtype=str)
    media = make_bad_media(tmp / "bad media", face_png(tmp / "face.png"), data / good["path"].iloc[0])
    train_cases = {"no_face", "audio_only"}  # bad videos in training are left out of the fit
    bad = [
        {
            "video_id": case,
            "path": str(path),
            "label": "happy",
            "split": "train" if case in train_cases else "test",
            "speaker": f"bad_{case}",
            "sentence": "0",
        }
        for case, path in media.items()
    ]
    rows = good.to_dict("records") + bad
    manifest = data / "manifest.csv"
    cfg_file = tmp / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(lean_config(manifest), allow_unicode=True))
    args = ("--configfile", str(cfg_file))

    out = {"tmp": tmp, "work": work, "results": work / "results" / "bad", "media": media, "rows": rows}
    no_val = [dict(r, split="") if r["split"] == "val" else r for r in rows]  # val rows become prediction-only
    write_csv(manifest, no_val)
    out["no_val"] = snakemake(wf, work, *args, check=False)
    absent = [dict(r, label="sad") if (r["split"] == "train" and r["label"] == "surprise") else r for r in rows]
    write_csv(manifest, absent)
    out["absent_dry"] = snakemake(wf, work, *args, "-n", check=False)
    out["absent"] = snakemake(wf, work, *args, check=False)
    write_csv(manifest, rows)
    out["good"] = snakemake(wf, work, *args, check=False)
    out["pwned"] = _pwned(tmp) + [p for d in {REPO, Path.cwd()} for p in d.glob("pwned*")]
    return out


def _ok(proc) -> str:
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


def test_every_case_is_listed_with_an_outcome_and_a_test():
    tests = {name for name in globals() if name.startswith("test_")}
    for case, (what, outcome, where) in CASES.items():
        assert what and outcome.startswith(("skip:", "processed", "error", "killed", "allowed")), case
        named = [w.strip().split(" ")[0] for w in where.split(";")]
        assert all(n in tests or n.endswith(".py") for n in named), f"{case}: {where} names no test"
    assert set(EXPECTED_SKIPS) <= set(CASES)
    readme = (REPO / "README.md").read_text()  # the README's bad-input table is this list
    missing = [case for case, (what, outcome, _) in CASES.items() if f"| {what} | {outcome} |" not in readme]
    assert missing == [], f"README.md's bad-input table lacks (or words differently) {missing}"


def test_the_run_completes_around_every_bad_video(bad_run):
    _ok(bad_run["good"])
    results = bad_run["results"]
    splits = read_table(results / "splits" / "main.parquet").to_pandas()
    labelled = {r["video_id"] for r in bad_run["rows"] if r["split"]}
    assert set(splits["video_id"]) == labelled
    for name in EXPERIMENTS:
        pred = read_table(results / "predictions" / "main" / f"{name}.parquet").to_pandas()
        assert set(pred["video_id"]) == labelled, name
        p = pred[[c for c in pred.columns if c.startswith("p_")]].to_numpy()
        assert np.isfinite(p).all() and np.allclose(p.sum(1), 1), name
    summary = pd.read_csv(results / "report" / "summary.csv")
    assert set(EXPERIMENTS) <= set(summary["system"])
    media = json.loads((results / "report" / "media_summary.json").read_text())
    assert media["videos"] == len(bad_run["rows"]) and media["probe_failed"] == 4


@pytest.mark.parametrize("case", sorted(EXPECTED_SKIPS))
def test_media_case(bad_run, case):
    _ok(bad_run["good"])
    results = bad_run["results"]
    skips = _skips(results)
    mine = skips[skips["video_id"] == case]
    assert set(zip(mine["stage"], mine["kind"])) == EXPECTED_SKIPS[case], mine.to_string()
    if case in REASONS:
        stage, words = REASONS[case]
        reason = mine.loc[mine["stage"] == stage, "reason"].iloc[0]
        assert words in reason, reason
        if stage in ("probe", "frames", "audio"):
            assert str(bad_run["media"][case]) in reason  # names the file
    # predictions: flagged missing exactly where the experiment's feature is missing
    missing_features = {s.split("/")[1] for s, k in EXPECTED_SKIPS[case] if s.startswith("features/")}
    for name, exp in EXPERIMENTS.items():
        pred = read_table(results / "predictions" / "main" / f"{name}.parquet").to_pandas().set_index("video_id")
        assert bool(pred.loc[case, "missing"]) == (exp["feature"] in missing_features), (case, name)
    frames = pd.concat(
        [
            read_table(p, columns=["video_id", "width", "height"]).to_pandas()
            for p in (results / "frames").glob("*.parquet")
        ]
    )
    mine_frames = frames[frames["video_id"] == case]
    if case in ("two_frames", "still_image"):
        assert len(mine_frames) == 1
    if case == "video_4k":
        assert len(mine_frames) == 3 and set(zip(mine_frames["width"], mine_frames["height"])) == {(256, 144)}
    if case == "truncated_tail":
        probe_rows = pd.concat([read_table(p).to_pandas() for p in (results / "probe").glob("*.parquet")]).set_index(
            "video_id"
        )
        expected = probe_rows.loc[case, "n_frames"] / probe_rows.loc[case, "fps"] * 5
        assert 0 < len(mine_frames) < 0.9 * expected


def test_no_manifest_field_reaches_a_shell(bad_run, tmp_path):
    _ok(bad_run["good"])
    # the names are live ammunition: pasted into a shell unquoted, they run their commands
    subprocess.run(["bash", "-c", f"true {ODD_NAME} {ODD_DIR}"], cwd=tmp_path, capture_output=True)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "pwned_dollar",
        "pwned_tick",
        "pwned_semi",
        "pwned_dir",
        "pwned_dir_tick",
        "pwned_dir_semi",
    }
    # ... and the workflow ran on a manifest in such a folder, with such a file, and ran none of them
    assert bad_run["pwned"] == []
    results = bad_run["results"]
    sheets = pd.concat([read_table(p).to_pandas() for p in (results / "shards").glob("*.parquet")])
    assert sheets.set_index("video_id").loc[ODD_ID, "path"].endswith(ODD_NAME)
    faces = pd.concat([read_table(p).to_pandas() for p in (results / "faces").glob("*.videos.parquet")]).set_index(
        "video_id"
    )
    assert faces.loc[ODD_ID, "n_frames"] == 5 and faces.loc[ODD_ID, "coverage"] == 1.0  # processed, face found
    index = pd.concat([read_table(p).to_pandas() for p in (results / "audio").glob("*.parquet")]).set_index("video_id")
    assert index.loc[ODD_ID, "has_audio"] and index.loc[ODD_ID, "rms_dbfs"] > -30


def test_evaluation_errors_name_the_manifest_and_keep_the_media_stages(bad_run):
    manifest = str(Path(bad_run["tmp"]) / ODD_DIR / "manifest.csv")
    # no val videos: the splits job fails with the cause; the per-video stages all ran
    no_val = bad_run["no_val"]
    text = no_val.stdout + no_val.stderr
    assert no_val.returncode != 0
    n = pd.Series([r["split"] for r in bad_run["rows"]]).value_counts()
    counts = f"test {n['test']}, train {n['train']}, val 0"
    assert f"error: {manifest}: partition 'main' has no val videos (labelled rows per split: {counts})" in text
    assert "Traceback" not in text
    counts = job_counts(text)
    assert counts["probe"] == counts["frames"] == counts["faces"] == 2 and counts["features"] == 6
    # a class absent from training: only the splits job (and what follows it) is planned -- labels do not touch media
    dry = job_counts(bad_run["absent_dry"].stdout)
    assert "splits" in dry and not {"shard_sheet", "probe", "frames", "audio", "faces", "features"} & set(dry)
    absent = bad_run["absent"]
    text = absent.stdout + absent.stderr
    assert absent.returncode != 0
    n = pd.Series([r["split"] for r in bad_run["rows"] if r["label"] == "surprise"]).value_counts()
    counts = f"test {n['test']}, train 0, val {n['val']}"
    assert (
        f"error: {manifest}: partition 'main': class(es) 'surprise' have no training videos but are evaluated ('surprise': {counts})"
        in text
    )
    assert "Traceback" not in text


def test_manifest_errors_stop_the_run_before_any_job(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    clips = tmp_path / "clips"
    ok = make_video(clips / "ok.mp4", duration=0.3)
    brace = clips / "clip {x}.mp4"
    shutil.copy(ok, brace)
    fifo = clips / "fifo.mp4"
    os.mkfifo(fifo)
    rows = [
        {"video_id": "a", "path": "clips/ok.mp4", "label": "happy", "split": "train"},
        {"video_id": "a", "path": "clips/ok.mp4", "label": "sad", "split": "train"},
        {"video_id": "A", "path": "clips/ok.mp4", "label": "sad", "split": "train"},
        {"video_id": "x;touch pwned_id", "path": "clips/ok.mp4", "label": "sad", "split": "val"},
        {"video_id": "$(touch pwned_id2)", "path": "clips/ok.mp4", "label": "sad", "split": "val"},
        {"video_id": "é", "path": "clips/ok.mp4", "label": "sad", "split": "val"},
        {"video_id": "b", "path": "clips/ok.mp4", "label": "joy", "split": "test"},
        {"video_id": "c", "path": "clips/nope.mp4", "label": "sad", "split": "test"},
        {"video_id": "d", "path": "clips/clip {x}.mp4", "label": "sad", "split": "test"},
        {"video_id": "e", "path": "clips/fifo.mp4", "label": "sad", "split": "test"},
    ]
    manifest = write_csv(tmp_path / "manifest.csv", rows)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump({"outdir": "results/m", "dataset": {"source": "manifest", "manifest": str(manifest)}})
    )
    proc = snakemake(wf, tmp_path / "work", "-n", "--configfile", str(cfg), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text
    assert f"{manifest}: 9 problem(s) in the manifest:" in text
    for expected in [
        "line 3 (video_id 'a'): duplicate video_id (first on line 2)",
        "line 4 (video_id 'A'): video_id collides with 'a' (line 2) on case-insensitive file systems",
        "line 5 (video_id 'x;touch pwned_id'): video_id 'x;touch pwned_id' is unsafe as a file name",
        "line 6 (video_id '$(touch pwned_id2)'): video_id '$(touch pwned_id2)' is unsafe as a file name",
        "line 7 (video_id 'é'): video_id 'é' is unsafe as a file name",
        "line 8 (video_id 'b'): label 'joy' is not in the configured class set (happy, sad, surprise)",
        f"line 9 (video_id 'c'): file not found: '{clips / 'nope.mp4'}'",
        "line 10 (video_id 'd'): path 'clips/clip {x}.mp4' contains '{' or '}'",
        f"line 11 (video_id 'e'): path '{fifo}' is not a regular file",
    ]:
        assert expected in text, expected
    assert job_counts(proc.stdout) == {} and not (tmp_path / "work" / "results").exists()
    assert _pwned(tmp_path) == []
    with pytest.raises(ManifestError):  # the library says the same
        validate_manifest(manifest, ["happy", "sad", "surprise"])


# --------------------------------------------------------------------------- stage level


@pytest.fixture(scope="module")
def cfg():
    return json.loads(json.dumps(load_config([REPO / "config.yaml"])))


def test_long_video_is_streamed(tmp_path, cfg):
    """10 minutes (small frames, a tone): every sampled frame stored, in bounded row
    groups; the whole audio extracted.  Peak memory per stage: bench/bad_inputs.py."""
    path = tmp_path / "long.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=5:duration=600",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=8000:duration=600",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-b:a",
        "16k",
        str(path),
    )
    from emoflow.dataset.sheet import write_sheet

    sheet = tmp_path / "sheet.parquet"
    write_sheet(pd.DataFrame({"video_id": ["long"], "path": [str(path)]}), str(sheet))
    p = {k: str(tmp_path / f"{k}.parquet") for k in ("probe", "ps", "frames", "fs", "audio", "as")}
    probe.run(str(sheet), p["probe"], p["ps"], cfg)
    row = read_table(p["probe"]).to_pylist()[0]
    assert row["ok"] and row["duration_s"] == pytest.approx(600, abs=0.5)
    frames.run(str(sheet), p["probe"], p["frames"], p["fs"], cfg)
    reader = frames.FrameReader(p["frames"])
    assert read_table(p["fs"]).num_rows == 0
    assert len(reader.table("long")) == 600 * cfg["frames"]["fps"]
    groups = [reader.file.metadata.row_group(g).num_rows for g in range(reader.file.num_row_groups)]
    assert (
        max(groups) <= cfg["frames"]["rows_per_group"]
        and len(groups) >= 600 * cfg["frames"]["fps"] / cfg["frames"]["rows_per_group"]
    )
    audio.run(str(sheet), p["probe"], p["audio"], str(tmp_path / "wavs"), p["as"], cfg)
    arow = read_table(p["audio"]).to_pylist()[0]
    assert arow["has_audio"] and arow["duration_s"] == pytest.approx(600, abs=0.5) and read_table(p["as"]).num_rows == 0


def test_hung_decoder_is_killed_at_its_time_limit():
    """A decoder that hangs without writing (a stalled network mount, a pipe) is killed by
    the watchdog even while the stage is blocked reading its output."""
    with Process(["sleep", "30"], timeout=0.5) as proc:
        assert proc.proc.stdout.read(100) == b""  # returns when the watchdog kills it
        rc, _ = proc.finish()
    assert proc.timed_out and rc == -9


def test_class_absent_from_every_split_is_allowed(tmp_path):
    """A label space wider than the corpus (EmotiW's 7 classes on a corpus without
    'disgust') is fine: the partition is written and the class gets probability 0."""
    import logging

    import pyarrow as pa

    from emoflow.classify import stage as classify_stage
    from emoflow.dataset import splits
    from emoflow.storage import write_table
    from emoflow.tables import SPLITS, features

    classes = ["happy", "sad", "surprise"]
    rng = np.random.default_rng(0)
    split = {6: "val", 7: "test"}
    m = pd.DataFrame(
        [
            {
                "video_id": f"v{s}_{j}",
                "path": "x.mp4",
                "label": classes[j % 2],
                "split": split.get(s, "train"),
                "speaker": f"s{s}",
            }
            for s in range(8)
            for j in range(4)
        ]
    )
    part = splits.partition(m, "main", {"scheme": "fixed"})
    assert set(part["label"]) == {"happy", "sad"}
    write_table(pa.Table.from_pandas(part, preserve_index=False), tmp_path / "splits.parquet", SPLITS)
    rows = [
        {
            "video_id": r.video_id,
            "missing": False,
            "x": (np.eye(3)[classes.index(r.label)] * 3 + rng.normal(0, 0.5, 3)).tolist(),
        }
        for r in part.itertuples()
    ]
    write_table(pa.Table.from_pylist(rows), tmp_path / "f.parquet", features(3, "video"))
    cfg = {
        "classes": classes,
        "classifier": {"type": "logistic", "grid": {"C": [1.0]}},
        "evaluation": {"metric": "accuracy", "seed": 0, "cv_folds": 3},
        "feature": "toy",
        "encoding": None,
        "modality": "audio",
    }
    cols, report, _ = classify_stage.run(
        "toy", str(tmp_path / "splits.parquet"), [str(tmp_path / "f.parquet")], cfg, 1, logging.getLogger("t")
    )
    probs = np.column_stack([cols[f"p_{c}"] for c in classes])
    assert (probs[:, 2] == 0).all() and np.allclose(probs.sum(1), 1) and report["scores"]["test"]["accuracy"] == 1.0


def test_long_video_faces_are_decoded_on_demand_with_the_same_results(tmp_path, cfg):
    """A video whose decoded frames exceed ``faces.group_megapixels`` is read frame by frame
    (``LazyFrames``): same faces, crops and coverage as decoding it whole, rescue pass
    (a faceless video) included.  Peak memory on a 10-minute video: bench/bad_inputs.py."""
    from emoflow.dataset.sheet import write_sheet
    from emoflow.faces import stage
    from emoflow.media.frames import FrameReader, LazyFrames

    png = face_png(tmp_path / "face.png")
    face_video(tmp_path / "face.mp4", png, duration=2.4, audio=None, scale="256:256,rotate=0.2*t")
    make_video(tmp_path / "noface.mp4", duration=1.0, size=(128, 96), fps=10, audio=False, pattern="testsrc")
    sheet = tmp_path / "sheet.parquet"
    write_sheet(
        pd.DataFrame(
            {"video_id": ["face", "noface"], "path": [str(tmp_path / "face.mp4"), str(tmp_path / "noface.mp4")]}
        ),
        str(sheet),
    )
    cfg = json.loads(json.dumps(cfg))
    cfg["faces"].update(device="cpu", detect_every=3)
    p = {k: str(tmp_path / f"{k}.parquet") for k in ("probe", "ps", "frames", "fs")}
    probe.run(str(sheet), p["probe"], p["ps"], cfg)
    frames.run(str(sheet), p["probe"], p["frames"], p["fs"], cfg)
    _, lazy = FrameReader(p["frames"]).frames("face", max_decoded_bytes=1)
    _, eager = FrameReader(p["frames"]).frames("face")
    assert isinstance(lazy, LazyFrames) and len(lazy) == len(eager) == 12
    assert all((a == b).all() for a, b in zip(lazy[2:5], eager[2:5])) and (lazy[-1] == eager[-1]).all()
    out = {}
    for mode, bound in (("whole", 1e9), ("on_demand", 1e-6)):
        c = json.loads(json.dumps(cfg))
        c["faces"]["group_megapixels"] = bound
        q = {k: str(tmp_path / f"{mode}_{k}.parquet") for k in ("faces", "videos", "crops", "skips")}
        stage.run(str(sheet), p["probe"], p["frames"], q["faces"], q["videos"], q["crops"], q["skips"], c)
        out[mode] = {k: read_table(v) for k, v in q.items()}
    for name, table in out["whole"].items():
        assert table.equals(out["on_demand"][name]), name
    assert out["whole"]["crops"].num_rows == 12 and out["whole"]["skips"].to_pylist()[0]["video_id"] == "noface"
