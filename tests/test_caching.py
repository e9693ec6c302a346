"""'Only changed stages rerun', proven on a private copy of the workflow and tiny videos.

A second run has nothing to do, also after every input was re-copied with a fresh
modification time (a re-mounted data folder); adding one video reruns only its shard; changing the
frames settings reruns frames and the faces that read them, but not audio; editing the
audio stage's code reruns audio (and the audio features that read it) only.
"""

import os
import time

import pytest
import yaml

from conftest import REPO, copy_workflow, job_counts, make_video, snakemake, write_manifest
from emoflow.config import load_config
from emoflow.dataset.shards import assign

pytestmark = pytest.mark.workflow
N_SHARDS = 4


def test_only_changed_stages_rerun(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    work = tmp_path / "work"
    data = tmp_path / "data"
    rows = []
    # clip0 lies above Snakemake's default checksum limit (1 MB): lossless noise, 2.6 MB
    noisy = {
        "size": (640, 480),
        "pattern": "nullsrc",
        "extra": ("-vf", "geq=lum='random(1)*255':cb=128:cr=128", "-crf", "0"),
    }
    for i in range(6):
        vid = f"clip{i}"
        make_video(data / f"{vid}.mp4", duration=0.6, fps=10, audio=i != 5, **(noisy if i == 0 else {"size": (48, 32)}))
        rows.append({"video_id": vid, "path": f"{vid}.mp4", "label": "happy", "split": "train"})
    assert (data / "clip0.mp4").stat().st_size > 2_000_000
    manifest = write_manifest(data / "manifest.csv", rows)
    cfg = {
        "outdir": "results/t",
        "dataset": {"source": "manifest", "manifest": str(manifest)},
        "sharding": {"n_shards": N_SHARDS},
        "frames": {"fps": 5, "max_side": 32},
        # one audio extractor is enough here; null drops the others config.yaml defines
        "features": {
            **{name: None for name in load_config([REPO / "config.yaml"])["features"]},
            "egemaps": {"extractor": "opensmile", "feature_set": "eGeMAPSv02"},
        },
        "asr": {"enabled": False},
        # no experiments: this test is about the per-video stages
        "experiments": {name: None for name in load_config([REPO / "config.yaml"])["experiments"]},
    }
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    args = ("--configfile", str(cfg_file))
    shards = sorted(set(assign([r["video_id"] for r in rows], N_SHARDS)))

    first = snakemake(wf, work, *args)
    counts = job_counts(first.stdout + first.stderr)
    assert counts["probe"] == counts["frames"] == counts["audio"] == len(shards)
    assert (work / "results/t/report/media_summary.json").is_file()

    # 1. nothing changed: nothing to do
    again = snakemake(wf, work, *args, "-n")
    assert job_counts(again.stdout + again.stderr) == {}
    assert "Nothing to be done" in again.stdout + again.stderr

    # 1b. the data folder re-copied (same bytes, fresh modification times): still nothing to
    #     do, the large clip included (profiles/default: max-checksum-file-size)
    time.sleep(1)  # newer than every output (a time in the future would be clock skew)
    for f in data.iterdir():
        os.utime(f)
    again = snakemake(wf, work, *args, "-n")
    assert job_counts(again.stdout + again.stderr) == {}, again.stdout[-2000:]
    # ... which Snakemake's default limit would not give: clip0's shard reruns
    default = snakemake(wf, work, *args, "-n", "--max-checksum-file-size", "1MB")
    assert job_counts(default.stdout + default.stderr).get("probe") == 1

    # 2. one more video: one shard reruns (sheet, probe, frames, audio) + the summary
    new = "zz-new-clip"
    make_video(data / f"{new}.mp4", duration=0.6, size=(48, 32), fps=10)
    write_manifest(manifest, rows + [{"video_id": new, "path": f"{new}.mp4", "label": "sad", "split": "val"}])
    dry = snakemake(wf, work, *args, "-n")
    out = dry.stdout + dry.stderr
    assert job_counts(out) == {
        "shard_sheet": 1,
        "probe": 1,
        "frames": 1,
        "audio": 1,
        "faces": 1,
        "features": 1,
        "media_summary": 1,
        "faces_summary": 1,
        "all": 1,
    }
    new_shard = assign([new], N_SHARDS)[0]
    assert f"shard={new_shard}" in out
    snakemake(wf, work, *args)

    # 3. frames settings changed: frames (and the faces that read them) of every shard rerun,
    #    audio and probe do not
    cfg["frames"]["fps"] = 4
    cfg_file.write_text(yaml.safe_dump(cfg))
    dry = snakemake(wf, work, *args, "-n")
    n_shards = len(set(assign([r["video_id"] for r in rows] + [new], N_SHARDS)))
    assert job_counts(dry.stdout + dry.stderr) == {
        "frames": n_shards,
        "faces": n_shards,
        "media_summary": 1,
        "faces_summary": 1,
        "all": 1,
    }
    snakemake(wf, work, *args)

    # 4. the audio stage's code edited: audio (and the audio features) rerun, nothing else
    audio_py = wf / "src/emoflow/media/audio.py"
    audio_py.write_text(audio_py.read_text() + "\n# an edit\n")
    dry = snakemake(wf, work, *args, "-n")
    assert job_counts(dry.stdout + dry.stderr) == {
        "audio": n_shards,
        "features": n_shards,
        "media_summary": 1,
        "all": 1,
    }
    snakemake(wf, work, *args)
    assert job_counts(snakemake(wf, work, *args, "-n").stdout) == {}
