"""Shared fixtures: tiny media made with ffmpeg, the shared data root, a copy of the
workflow to run Snakemake on, and the demo run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import resolve_data_root  # noqa: E402
from emoflow.media.ffmpeg import command  # noqa: E402


class Interrupted(Exception):
    """Raised by :func:`stop_training_in_epoch` (a stand-in for a kill)."""


def stop_training_in_epoch(monkeypatch, epoch: int):
    """The frame CNN trainer (emoflow.nets.train) raises :class:`Interrupted` when it logs
    epoch ``epoch``: that epoch is trained but not checkpointed, as a kill would leave it.
    Returns the real ``log.info`` (to put back before resuming)."""
    from emoflow.nets import train as trainer

    real_info = trainer.log.info

    def info(msg, *args):
        real_info(msg, *args)
        if msg.startswith("epoch") and args[0] == epoch:
            raise Interrupted

    monkeypatch.setattr(trainer.log, "info", info)
    return real_info


def make_video(path, duration=1.0, size=(64, 48), fps=10, audio=True, tone=440, pattern="testsrc2", extra=()):
    """A real H.264(+AAC) file from ffmpeg's test sources."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = command("-f", "lavfi", "-i", f"{pattern}=size={size[0]}x{size[1]}:rate={fps}:duration={duration}")
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=22050:duration={duration}"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-threads", "1", *extra]
    if audio:
        cmd += ["-c:a", "aac", "-shortest"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


def write_manifest(path, rows, sep=","):
    path = Path(path)
    cols = list(rows[0].keys())
    lines = [sep.join(cols)] + [sep.join(str(r.get(c, "")) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny_videos(tmp_path):
    """Four tiny labelled videos (one without audio) and their manifest."""
    data = tmp_path / "data"
    rows = []
    specs = [
        ("v1", "happy", "train", True),
        ("v2", "sad", "train", True),
        ("v3", "surprise", "val", True),
        ("v4", "happy", "test", False),
    ]
    for i, (vid, label, split, audio) in enumerate(specs):
        make_video(data / "clips" / f"{vid}.mp4", duration=1.0, audio=audio, tone=300 + 100 * i)
        rows.append({"video_id": vid, "path": f"clips/{vid}.mp4", "label": label, "split": split, "speaker": f"p{i}"})
    return write_manifest(data / "manifest.csv", rows), rows


@pytest.fixture(scope="session")
def data_root():
    root = resolve_data_root({})
    if not root.is_dir():
        pytest.skip(f"shared data root {root} not found (set EMOFLOW_DATA_ROOT)")
    return root


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow and its code (tests may edit it)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("rules", "envs", "profiles", "src"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def snakemake(workflow: Path, workdir: Path, *args, check=True):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(workflow / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        # Snakemake's own 1 s re-scheduling: profiles/default's 10 s window (less scheduler CPU
        # on long runs) keeps a process alive up to 10 s after its last job, in every short run
        "--max-jobs-per-timespan",
        "100/1s",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Per-rule job counts from a (dry-)run's 'Job stats' table ({} if nothing to do)."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside, counts = True, {}
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    inside = False
                else:
                    counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """Results of a full demo run: $EMOFLOW_DEMO_RESULTS (scripts/test.sh runs the demo
    once and points here), else a fresh run into a temporary folder."""
    given = os.environ.get("EMOFLOW_DEMO_RESULTS")
    if given:
        path = Path(given)
        assert (path / "report" / "media_summary.json").is_file(), f"{path} holds no finished demo run"
        return path
    work = tmp_path_factory.mktemp("demo")
    snakemake(REPO, work)
    return work / "results" / "demo"
