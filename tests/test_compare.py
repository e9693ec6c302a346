"""tools.compare: results-directory comparison on real tiny tables (Parquet, CSV, JSON, NPZ)."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.compare import compare_dirs, list_files, main


def write_run(work, *, x_delta=0.0, p_delta=0.0, seconds=1.5, uar=0.75, jpeg=b"\xff\xd8abc"):
    """A miniature results directory at ``work/results/demo`` with every compared file type."""
    root = work / "results" / "demo"
    for d in (
        "shards",
        "features/mfcc",
        "predictions/main",
        "models/classify/main",
        "report",
        "models/encode/main",
        "frames",
        "logs/features",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    ids = ["v0", "v1", "v2"]
    pq.write_table(
        pa.table({"video_id": ids, "path": [str(root / "demo" / "clips" / f"{v}.mp4") for v in ids]}),
        root / "shards" / "s000.parquet",
    )
    x = np.arange(12, dtype=np.float32).reshape(6, 2) / 7
    x[4, 1] += x_delta
    feats = pa.table(
        {
            "video_id": ["v0", "v0", "v1", "v1", "v2", "v2"],
            "frame": pa.array([0, 1, 0, 1, 0, 1], pa.int32()),
            "missing": [False] * 6,
            "x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 2),
        }
    ).replace_schema_metadata({"level": "frame", "dim": "2"})
    pq.write_table(feats, root / "features" / "mfcc" / "s000.parquet")
    p = np.array([0.1, 0.7, np.nan]) + np.array([0.0, p_delta, 0.0])
    pq.write_table(
        pa.table({"video_id": ids, "label": ["a", "b", None], "p_a": p}),
        root / "predictions" / "main" / "exp.parquet",
    )
    pq.write_table(
        pa.table({"video_id": ["v0"], "jpeg": pa.array([jpeg], pa.binary())}),
        root / "frames" / "s000.parquet",
    )
    sidecar = {
        "experiment": "exp",
        "fit_seconds": seconds,
        "sha256": f"{int(seconds * 4):064x}",
        "scores": {"val": {"uar": uar, "n": 3}},
        "history": [{"epoch": 1, "seconds": seconds, "loss": 0.5}],
    }
    (root / "models" / "classify" / "main" / "exp.json").write_text(json.dumps(sidecar))
    (root / "models" / "classify" / "main" / "exp.model").write_bytes(b"binary model " + bytes([int(seconds)]))
    (root / "report" / "summary.csv").write_text(f"system,val_uar\nexp,{uar:.4f}\n")
    mean = np.float32([5.0, 6.0]) / 7
    np.savez(root / "models" / "encode" / "main" / "mfcc.mean.npz", mean=mean, k=np.array([2]))
    (root / "logs" / "features" / "s000.log").write_text(f"took {seconds} s\n")
    return root


def test_identical_runs_in_different_directories_are_equal_even_exactly(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", seconds=7.25)  # other timings, logs, binary model bytes
    assert compare_dirs(a, b) == []
    assert compare_dirs(a, b, atol=0) == []
    assert "logs/features/s000.log" not in list_files(a)


def test_float_differences_within_and_beyond_tolerance(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", x_delta=1e-5, p_delta=1e-7)
    diffs = compare_dirs(a, b, atol=1e-6)
    assert len(diffs) == 1
    assert diffs[0].startswith("features/mfcc/s000.parquet: column 'x': 1 of 6 rows differ")
    assert "v2" in diffs[0] and "frame=0" in diffs[0]
    exact = compare_dirs(a, b, atol=0)
    assert len(exact) == 2
    assert exact[1].startswith("predictions/main/exp.parquet: column 'p_a': 1 of 3 rows differ")
    assert compare_dirs(a, b, atol=1e-4) == []
    assert compare_dirs(a, b, atol=0, rtol=1e-3) == []


def test_json_csv_npz_and_binary_differences_are_named(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", uar=0.8, jpeg=b"\xff\xd8abd")
    diffs = compare_dirs(a, b)
    joined = "\n".join(diffs)
    assert "models/classify/main/exp.json: $.scores.val.uar: 0.75 != 0.8" in joined
    assert "report/summary.csv: line 2 (exp), column 'val_uar': '0.7500' != '0.8000'" in joined
    assert "frames/s000.parquet: column 'jpeg': 1 of 1 rows differ" in joined
    assert len(diffs) == 3


def test_npz_values_and_missing_or_extra_files(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b")
    np.savez(b / "models" / "encode" / "main" / "mfcc.mean.npz", mean=np.float32([1, 2]), k=np.array([2]))
    (a / "report" / "scores.png").write_bytes(b"png")
    shutil.copy(a / "report" / "summary.csv", b / "report" / "extra.csv")
    diffs = compare_dirs(a, b)
    assert len(diffs) == 3
    assert diffs[2].startswith("models/encode/main/mfcc.mean.npz: array 'mean': 2 of 2 values differ")
    assert any(d.startswith("report/scores.png: only in A") for d in diffs)
    assert any(d.startswith("report/extra.csv: only in B") for d in diffs)


def test_schema_nulls_and_row_count(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b")
    f = b / "predictions" / "main" / "exp.parquet"
    t = pq.read_table(f)
    pq.write_table(t.set_column(1, "label", pa.array(["a", None, None])), f)  # a value became null
    g = b / "shards" / "s000.parquet"
    pq.write_table(pq.read_table(g).slice(0, 2), g)
    h = b / "features" / "mfcc" / "s000.parquet"
    pq.write_table(pq.read_table(h).drop_columns(["missing"]), h)
    diffs = "\n".join(compare_dirs(a, b))
    assert "predictions/main/exp.parquet: column 'label': 1 of 3 rows differ" in diffs
    assert "shards/s000.parquet: 3 rows != 2 rows" in diffs
    assert "features/mfcc/s000.parquet: schema" in diffs


def test_foreign_absolute_path_is_a_difference(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b")
    # b's shard sheet points into another run's directory: not the same relative file
    other = [str(tmp_path / "c" / "results" / "demo" / "demo" / "clips" / f"{v}.mp4") for v in ("v0", "v1", "v2")]
    pq.write_table(pa.table({"video_id": ["v0", "v1", "v2"], "path": other}), b / "shards" / "s000.parquet")
    diffs = compare_dirs(a, b)
    assert len(diffs) == 1 and diffs[0].startswith("shards/s000.parquet: column 'path'")


def test_unreadable_table_is_reported_not_raised(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b")
    (b / "predictions" / "main" / "exp.parquet").write_bytes(b"not parquet")
    diffs = compare_dirs(a, b)
    assert len(diffs) == 1 and "predictions/main/exp.parquet: cannot compare:" in diffs[0]


def test_cli_exit_codes(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", p_delta=1e-7)
    assert main([str(a), str(b)]) == 0
    assert "EQUAL" in capsys.readouterr().out
    assert main([str(a), str(b), "--atol", "0"]) == 1
    out = capsys.readouterr().out
    assert "column 'p_a'" in out and "DIFFERENT: 1 difference(s)" in out
    assert main([str(a), str(tmp_path / "nope")]) == 2
    assert "nope: not a directory" in capsys.readouterr().err


def test_missing_directory_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        compare_dirs(tmp_path, tmp_path / "nope")
