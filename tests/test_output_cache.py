"""Between-workflow output cache (rules with ``cache: True``): a frame CNN trained on a
FER2013-style table reads none of the run's videos, so a second project with other
videos and another results folder reuses the first one's fit through
``$SNAKEMAKE_OUTPUT_CACHE``; changing the training table trains it again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

pytestmark = pytest.mark.workflow


def write_fer(path: Path, seed: int) -> None:
    """48x48 grey faces in FER2013's table layout: bright vs dark images, two classes."""
    g = np.random.default_rng(seed)
    y = np.arange(48) % 2
    x = (g.integers(0, 60, (48, 48, 48)) + 150 * y[:, None, None]).astype(np.uint8)
    split = ["train"] * 40 + ["public_test"] * 8
    pq.write_table(
        pa.table({"split": split, "label": [CLASSES[3 * v] for v in y], "pixels": [im.tobytes() for im in x]}), path
    )


def run_fit(project: Path, fer: Path, cache: Path, demo_seed: int) -> subprocess.CompletedProcess:
    project.mkdir(parents=True, exist_ok=True)
    cfg = project / "config.yaml"
    cfg.write_text(
        f"outdir: results/{project.name}\n"
        f"demo: {{seed: {demo_seed}}}\n"
        "features:\n"
        "  tiny_cnn:\n"
        "    extractor: frame_cnn\n"
        "    net: {widths: [8, 16], fc: 16}\n"
        f"    train: {{source: fer2013, path: {fer}, val_fraction: 0.25}}\n"
        "    epochs: 1\n"
    )
    target = f"results/{project.name}/models/frame_cnn/tiny_cnn.json"
    env = {**os.environ, "SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            target,
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(project),
            "--cores",
            "1",
            "--configfile",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        env=env,
    )


def test_a_fit_on_shared_data_is_reused_by_another_project(tmp_path):
    fer, cache = tmp_path / "fer.parquet", tmp_path / "cache"
    write_fer(fer, seed=0)
    cache.mkdir()
    a = run_fit(tmp_path / "a", fer, cache, demo_seed=1)
    assert a.returncode == 0, a.stderr[-3000:]
    fit_a = tmp_path / "a" / "results" / "a" / "models" / "frame_cnn"
    assert (fit_a / "tiny_cnn.json").is_file() and (
        tmp_path / "a" / "results/a/logs/fit_frame_cnn/tiny_cnn.log"
    ).is_file()
    assert len(list(cache.iterdir())) >= 2  # the JSON and the weights, under their provenance hash

    # another project (other demo videos, other results folder): the fit comes from the cache
    b = run_fit(tmp_path / "b", fer, cache, demo_seed=2)
    assert b.returncode == 0, b.stderr[-3000:]
    fit_b = tmp_path / "b" / "results" / "b" / "models" / "frame_cnn"
    log_b = tmp_path / "b" / "results/b/logs/fit_frame_cnn/tiny_cnn.log"
    assert not log_b.exists() or log_b.stat().st_size == 0  # it did not train (Snakemake may touch the log)
    assert "epoch" in (tmp_path / "a" / "results/a/logs/fit_frame_cnn/tiny_cnn.log").read_text()
    for name in ("tiny_cnn.json", "tiny_cnn.pt"):
        assert (fit_b / name).read_bytes() == (fit_a / name).read_bytes()
        assert (fit_b / name).resolve().parent == cache.resolve()  # Snakemake links the outputs to the cache entry

    # the training table changes: no cache entry fits, it trains again
    write_fer(fer, seed=3)
    c = run_fit(tmp_path / "c", fer, cache, demo_seed=1)
    assert c.returncode == 0, c.stderr[-3000:]
    assert "epoch" in (tmp_path / "c" / "results/c/logs/fit_frame_cnn/tiny_cnn.log").read_text()
    assert (tmp_path / "c" / "results/c/models/frame_cnn/tiny_cnn.pt").read_bytes() != (
        fit_a / "tiny_cnn.pt"
    ).read_bytes()
