"""Benchmark and check of the predictor on finished runs (by default the demo's and the
paired_av preset's), written to ``bench/out/predict.json``:

- **reproduction**: the run's own test clips (all of them, with their speakers), predicted
  from its bundle by ``emoflow predict --manifest ... --no-timeline`` (the warm path: one
  process, each model loaded once), must give the workflow's test predictions (the fusion and
  every experiment it uses) within 1e-6 (``max_abs_diff``); ``--isolated-too`` also times the
  per-stage-subprocess path (``--isolated``) on the same clips;
- **one clip at a time**: a fresh process makes a :class:`emoflow.Recognizer`, recognises
  one clip (``cold_first_clip_s``: from process start, imports and model loading included),
  then ``--clips`` more, one ``recognize`` call each, timeline off (``warm_per_clip_s``: their
  median; each clip alone, as a user scoring a folder clip by clip); ``peak_rss_mb``: that
  process's peak resident memory, holding every model of the bundle.

  python bench/predict.py [--run demo=RESULTS[=MANIFEST]] [--run paired_av=results/paired_av]
                          [--clips 8] [--split test] [--isolated-too] [--out bench/out/predict.json]

A run's manifest defaults to its dataset's (``RESULTS/demo/manifest.csv`` for the demo, the
preset's ``dataset.manifest`` otherwise).  Exit status 1 if a run's predictions do not reproduce.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import load_config  # noqa: E402
from emoflow.predict.bundle import Bundle  # noqa: E402


def timed(cmd: list[str], env: dict) -> tuple[float, float | None, subprocess.CompletedProcess]:
    """(wall s, peak RSS MB, process) of a command under /usr/bin/time -v when available."""
    wrap = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    proc = subprocess.run([*wrap, *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, (int(m.group(1)) / 1024 if m else None), proc


def run_manifest(name: str, results: Path, given: str | None) -> pd.DataFrame:
    """The run's clips (video_id, path absolute, label, split, speaker) from its split table."""
    bundle = Bundle.load(results)
    if given:
        manifest = given
    elif (results / "demo" / "manifest.csv").is_file():
        manifest = str(results / "demo" / "manifest.csv")
    else:
        preset = REPO / "configs" / f"{name}.yaml"
        manifest = load_config([REPO / "config.yaml", *([preset] if preset.is_file() else [])])["dataset"]["manifest"]
    sp = pd.read_parquet(results / "splits" / f"{bundle.meta['part']}.parquet")
    man = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    base = Path(manifest).resolve().parent
    man["path"] = [p if os.path.isabs(p) else str(base / p) for p in man["path"]]
    return sp.merge(man[["video_id", "path"]], on="video_id")[["video_id", "path", "label", "split", "speaker"]]


def reproduce(results: Path, rows: pd.DataFrame, env: dict, tmp: Path, isolated: bool) -> dict:
    """``emoflow predict`` on ``rows`` (with their speakers) against the run's own predictions."""
    bundle = Bundle.load(results)
    part, group, classes = bundle.meta["part"], bundle.meta["group"], bundle.classes
    rows.to_csv(tmp / "inputs.csv", index=False)
    out = tmp / ("out_isolated" if isolated else "out")
    cmd = [
        sys.executable,
        "-m",
        "emoflow",
        "predict",
        "--manifest",
        str(tmp / "inputs.csv"),
        "--bundle",
        str(results),
        "--out",
        str(out),
        "--no-timeline",
        *(["--isolated"] if isolated else []),
    ]
    wall, rss, proc = timed(cmd, env)
    if proc.returncode != 0:
        raise SystemExit(f"emoflow predict failed:\n{proc.stderr[-4000:]}")
    cols = [f"p_{c}" for c in classes]
    got = pd.read_csv(out / "predictions.csv").set_index("video_id").loc[rows["video_id"]]
    fused = pd.read_parquet(results / "fusion" / part / f"{group}.parquet").set_index("video_id").loc[rows["video_id"]]
    diff_fused = float(np.abs(got[cols].to_numpy() - fused[cols].to_numpy()).max())
    same_labels = bool((got["label_pred"].to_numpy() == np.array(classes)[fused[cols].to_numpy().argmax(1)]).all())
    exp = pd.read_parquet(out / "experiments.parquet")
    diff_exp = {}
    for name, e in exp.groupby("experiment"):
        ref = (
            pd.read_parquet(results / "predictions" / part / f"{name}.parquet")
            .set_index("video_id")
            .loc[rows["video_id"]]
        )
        e = e.set_index("video_id").loc[rows["video_id"]]
        diff_exp[name] = float(np.abs(e[cols].to_numpy() - ref[cols].to_numpy()).max())
    return {
        "clips": len(rows),
        "wall_s": round(wall, 1),
        "s_per_clip": round(wall / len(rows), 3),
        "peak_rss_mb": rss and round(rss),
        "max_abs_diff_fused": diff_fused,
        "max_abs_diff_experiments": diff_exp,
        "same_labels": same_labels,
        "accuracy": float((got["label_pred"].to_numpy() == rows["label"].to_numpy()).mean()),
        "modalities_used": got["modalities_used"].value_counts().to_dict(),
    }


def child(results: str, clips: list[str]) -> None:
    """(in a fresh process) a Recognizer, then one recognize() per clip; JSON on stdout."""
    import resource

    t = [time.time()]
    from emoflow import Recognizer

    rec = Recognizer(results)
    labels = []
    for c in clips:
        labels.append(rec.recognize(c)["label"])
        t.append(time.time())
    print(
        json.dumps(
            {
                "ends": t[1:],
                "labels": labels,
                "models": len(rec.models),
                "classifiers": len(rec.bundle.models),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def one_at_a_time(results: Path, clips: list[str], env: dict) -> dict:
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(results), *clips], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"the Recognizer failed:\n{proc.stderr[-4000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    ends = np.array(r["ends"])
    warm = np.diff(ends)
    return {
        "cold_first_clip_s": round(ends[0] - t0, 2),
        "warm_per_clip_s": round(float(np.median(warm)), 2),
        "warm_per_clip_s_each": [round(float(x), 2) for x in warm],
        "warm_clips": len(warm),
        "peak_rss_mb": round(r["peak_rss_mb"]),
        "models_held": {"stage_models": r["models"], "classifiers_encoders": r["classifiers"]},
        "timeline": False,
    }


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--run",
        action="append",
        metavar="NAME=RESULTS[=MANIFEST]",
        help="a finished run (default: demo=.ci-work/results/demo and paired_av=results/paired_av)",
    )
    ap.add_argument("--clips", type=int, default=8, help="clips recognised one at a time after the first (default 8)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--isolated-too", action="store_true", help="also time the per-stage-subprocess path")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "predict.json"))
    args = ap.parse_args(argv)
    runs = args.run or [f"demo={REPO / '.ci-work' / 'results' / 'demo'}", f"paired_av={REPO / 'results' / 'paired_av'}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO / "src")
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()}}
    ok = True
    for spec in runs:
        name, _, rest = spec.partition("=")
        results_s, _, manifest = rest.partition("=")
        results = Path(results_s).resolve()
        bundle = Bundle.load(results)
        rows = run_manifest(name, results, manifest or None)
        test = rows[rows["split"] == args.split].reset_index(drop=True)
        entry = {
            "results": str(results),
            "part": bundle.meta["part"],
            "group": bundle.meta["group"],
            "fusion_method": bundle.meta["fusion_method"],
            "experiments": sorted(bundle.experiments),
        }
        # one at a time first (cold caches of the files as a new user has them is not
        # something a benchmark can give; the batch run after it reads the same files)
        entry.update(one_at_a_time(results, test["path"].tolist()[: args.clips + 1], env))
        with tempfile.TemporaryDirectory(prefix="emoflow-bench-predict-") as tmp:
            entry["batch"] = reproduce(results, test, env, Path(tmp), False)
            if args.isolated_too:
                entry["batch_isolated"] = reproduce(results, test, env, Path(tmp), True)
        b = entry["batch"]
        entry["max_abs_diff"] = max([b["max_abs_diff_fused"], *b["max_abs_diff_experiments"].values()])
        entry["reproduces"] = entry["max_abs_diff"] < 1e-6 and b["same_labels"]
        ok &= entry["reproduces"]
        report[name] = entry
        print(
            f"{name}: first clip {entry['cold_first_clip_s']} s (cold), then {entry['warm_per_clip_s']} s a clip (warm, "
            f"median of {entry['warm_clips']}); peak RSS {entry['peak_rss_mb']} MB; {b['clips']} {args.split} clips together "
            f"{b['wall_s']} s, max |diff| {entry['max_abs_diff']:.2e}, reproduces: {entry['reproduces']}"
        )
        if "batch_isolated" in entry:
            print(f"  --isolated: {entry['batch_isolated']['wall_s']} s for the {b['clips']} clips")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
