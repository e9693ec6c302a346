"""Interruption and determinism, proven with one extra demo run.

The demo workflow runs on a private copy of the workflow and is killed with SIGKILL twice
(Snakemake and every job it started: the whole process group), each time in the middle
of a stage:

1. while a face-stage job is writing its tables (its temporary file exists beside the
   target), and
2. while the frame CNN trains, after its first per-epoch resume checkpoint.

Each time the run is unlocked and started again (``rerun-incomplete`` comes from
``profiles/default``).  It must complete, leave no temporary file behind, resume the
frame CNN from its checkpoint, and end with results identical, bit for bit, to the CI's
uninterrupted demo run (``demo_run``; ``tools.compare`` with ``atol=0``).  The two are
full runs of the same config, so this is the determinism test too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import copy_workflow, job_counts, snakemake
from tools.compare import compare_dirs
from emoflow.storage import AtomicParquetWriter, read_table, write_rows

pytestmark = pytest.mark.workflow

FACES_TMP = re.compile(r"\.(s\d+)\.parquet\.[a-z0-9_]{8}\.tmp")
#: Differences that are the point of the exercise, not a defect: the frame CNN's
#: metadata (and its copy in the model bundle) says which epoch it resumed from.
RESUMED = re.compile(r"(models/frame_cnn|bundle/extractors)/[^/]+\.json: \$\.resumed_from_epoch: 0 != [1-9]\d*")
#: The bundle's manifest lists a SHA-256 of every file it holds; binary models (zip
#: timestamps, temporary file names inside torch archives) and JSON reports with wall-clock
#: timings differ in bytes between any two runs, so those digests are compared apart.
BUNDLE = "bundle/bundle.json"


def _bundle_without_digests(results: Path) -> dict:
    doc = json.loads((results / BUNDLE).read_text())
    doc["files"] = sorted(doc["files"])
    return doc


def _start(wf: Path, work: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(wf / "Snakefile"), "--directory", str(work), "--cores", "2"]
    # its own session: one killpg reaches Snakemake and every job shell and Python under it
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _kill_when(proc: subprocess.Popen, found, what: str, limit_s: float = 3600):
    """SIGKILL the run's process group as soon as ``found()`` returns something; return it."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        hit = found()
        if hit:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return hit
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"no {what} within {limit_s:g} s")


def _temporaries(results: Path) -> list[Path]:
    return [p for p in results.rglob("*") if ".tmp" in p.name]


def test_killed_twice_then_rerun_gives_the_uninterrupted_results(demo_run, tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    work = tmp_path / "work"
    results = work / "results" / "demo"

    # 1. killed while a face-stage job writes its tables
    def faces_writing():
        d = results / "faces"
        return next((p for p in d.iterdir() if FACES_TMP.fullmatch(p.name)), None) if d.is_dir() else None

    proc = _start(wf, work, tmp_path / "run1.log")
    partial = _kill_when(proc, faces_writing, "a face-stage job writing")
    killed_at = time.time()
    shard = FACES_TMP.fullmatch(partial.name).group(1)
    assert (
        partial.exists() and not (results / "faces" / f"{shard}.parquet").exists()
    )  # unfinished, and not taken as done
    assert any((work / ".snakemake" / "incomplete").iterdir())
    snakemake(wf, work, "--unlock")

    # 2. killed while the frame CNN trains, after its first epoch's resume checkpoint
    checkpoint = results / "models" / "frame_cnn" / "frame_cnn.resume" / "resume.pt"
    proc = _start(wf, work, tmp_path / "run2.log")
    _kill_when(proc, lambda: checkpoint if checkpoint.exists() else None, "a frame CNN checkpoint")
    redone = (results / "faces" / f"{shard}.parquet").stat().st_mtime
    assert redone > killed_at and not partial.exists()  # the interrupted job ran again; its debris is gone
    assert not (results / "models" / "frame_cnn" / "frame_cnn.pt").exists()
    snakemake(wf, work, "--unlock")

    # 3. to the end
    final = snakemake(wf, work)
    assert job_counts(final.stdout + final.stderr).get("fit_frame_cnn") == 1
    assert "resuming after epoch" in (results / "logs" / "fit_frame_cnn" / "frame_cnn.log").read_text()
    assert _temporaries(results) == []
    assert job_counts(snakemake(wf, work, "-n").stdout) == {}  # complete: nothing left to do

    diffs = compare_dirs(demo_run, results, atol=0)
    unexpected = [d for d in diffs if not (RESUMED.fullmatch(d) or d.startswith(f"{BUNDLE}: "))]
    assert unexpected == [], "\n".join(unexpected[:40])
    if (demo_run / BUNDLE).exists():  # everything but the byte digests: identical
        assert _bundle_without_digests(demo_run) == _bundle_without_digests(results)


def test_a_killed_writer_leaves_no_file_that_looks_finished(tmp_path):
    """A streaming Parquet writer killed mid-write leaves only its hidden temporary; the
    target never appears; the next write of the target removes the debris."""
    target = tmp_path / "t.parquet"
    child = (
        "import sys, time, pyarrow as pa\n"
        "from emoflow.storage import AtomicParquetWriter\n"
        "w = AtomicParquetWriter(sys.argv[1], pa.schema([('a', pa.int64())]))\n"
        "w.write_rows([{'a': i} for i in range(1000)])\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen([sys.executable, "-c", child, str(target)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    debris = [p for p in tmp_path.iterdir() if p.name.startswith(".t.parquet.")]
    assert len(debris) == 1 and debris[0].stat().st_size > 0 and not target.exists()
    schema = pa.schema([("a", pa.int64())])
    write_rows([{"a": 1}], target, schema)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
    assert read_table(target).to_pylist() == [{"a": 1}]
    with pytest.raises(RuntimeError):  # a write that fails leaves the old file as it was, and no debris
        with AtomicParquetWriter(target, schema) as w:
            w.write_rows([{"a": 2}])
            raise RuntimeError("boom")
    assert read_table(target).to_pylist() == [{"a": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
