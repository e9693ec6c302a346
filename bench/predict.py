"""Benchmark and check of ``emoflow predict`` on a finished run: the run's own test clips
(by default the paired_av preset's 156), predicted from the run's bundle, must reproduce the
workflow's test predictions (the fusion and every experiment it uses) within 1e-6.

  python bench/predict.py [--results results/paired_av] [--manifest CSV] [--split test]
                          [--timeline-clips 0] [--out bench/out/predict.json]

It writes the inputs' manifest (video_id, path, label, split, speaker) from the run's
partition table and the dataset manifest, runs ``emoflow predict --manifest ... --no-timeline``
under ``/usr/bin/time -v`` (wall time, peak RSS), then compares ``predictions.csv`` and
``experiments.parquet`` with ``fusion/<part>/<group>.parquet`` and
``predictions/<part>/<experiment>.parquet``.  ``--timeline-clips N`` also times the
per-second timeline on the first N clips.  Writes JSON; exit status 1 if the predictions
do not reproduce.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results/paired_av", help="a finished run's results folder (holding bundle/)")
    ap.add_argument("--manifest", help="the run's dataset manifest (default: the paired_av preset's)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--timeline-clips", type=int, default=0, help="also time the timeline on this many clips")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "predict.json"))
    args = ap.parse_args(argv)

    results = Path(args.results).resolve()
    bundle = Bundle.load(results)
    part, group, classes = bundle.meta["part"], bundle.meta["group"], bundle.classes
    manifest = args.manifest or load_config([REPO / "config.yaml", REPO / "configs" / "paired_av.yaml"])["dataset"]["manifest"]
    sp = pd.read_parquet(results / "splits" / f"{part}.parquet")
    man = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    base = Path(manifest).resolve().parent
    man["path"] = [p if os.path.isabs(p) else str(base / p) for p in man["path"]]
    rows = sp[sp["split"] == args.split].merge(man[["video_id", "path"]], on="video_id")
    rows = rows[["video_id", "path", "label", "split", "speaker"]]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO / "src")
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
              "results": str(results), "part": part, "group": group, "fusion_method": bundle.meta["fusion_method"],
              "experiments": sorted(bundle.experiments), "clips": len(rows)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="emoflow-bench-predict-") as tmp:
        tmp = Path(tmp)
        rows.to_csv(tmp / "inputs.csv", index=False)
        out = tmp / "out"
        cmd = [sys.executable, "-m", "emoflow", "predict", "--manifest", str(tmp / "inputs.csv"), "--bundle", str(results),
               "--out", str(out), "--no-timeline"]  # fmt: skip
        wall, rss, proc = timed(cmd, env)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 2
        cols = [f"p_{c}" for c in classes]
        got = pd.read_csv(out / "predictions.csv").set_index("video_id").loc[rows["video_id"]]
        fused = pd.read_parquet(results / "fusion" / part / f"{group}.parquet").set_index("video_id").loc[rows["video_id"]]
        diff_fused = float(np.abs(got[cols].to_numpy() - fused[cols].to_numpy()).max())
        same_labels = bool((got["label_pred"].to_numpy() == np.array(classes)[fused[cols].to_numpy().argmax(1)]).all())
        exp = pd.read_parquet(out / "experiments.parquet")
        diff_exp = {}
        for name, e in exp.groupby("experiment"):
            ref = pd.read_parquet(results / "predictions" / part / f"{name}.parquet").set_index("video_id").loc[rows["video_id"]]
            e = e.set_index("video_id").loc[rows["video_id"]]
            diff_exp[name] = float(np.abs(e[cols].to_numpy() - ref[cols].to_numpy()).max())
        y = rows["label"].to_numpy()
        report["predict"] = {
            "wall_s": round(wall, 1), "s_per_clip": round(wall / len(rows), 3), "peak_rss_mb": rss and round(rss),
            "max_abs_diff_fused": diff_fused, "max_abs_diff_experiments": diff_exp, "same_labels": same_labels,
            "accuracy": float((got["label_pred"].to_numpy() == y).mean()),
            "modalities_used": got["modalities_used"].value_counts().to_dict(),
        }  # fmt: skip
        if args.timeline_clips:
            sub = rows.head(args.timeline_clips)
            sub.to_csv(tmp / "timeline.csv", index=False)
            cmd_t = [sys.executable, "-m", "emoflow", "predict", "--manifest", str(tmp / "timeline.csv"), "--bundle",
                     str(results), "--out", str(tmp / "out_t")]  # fmt: skip
            wall_t, rss_t, proc_t = timed(cmd_t, env)
            if proc_t.returncode != 0:
                print(proc_t.stderr[-4000:], file=sys.stderr)
                return 2
            n_win = len(pd.read_parquet(tmp / "out_t" / "timeline.parquet"))
            report["timeline"] = {"clips": len(sub), "windows": n_win, "wall_s": round(wall_t, 1),
                                  "s_per_clip": round(wall_t / len(sub), 3), "peak_rss_mb": rss_t and round(rss_t)}  # fmt: skip
    ok = diff_fused < 1e-6 and max(diff_exp.values()) < 1e-6 and same_labels
    report["reproduces"] = ok
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    p = report["predict"]
    print(f"{len(rows)} clips: {p['wall_s']} s ({p['s_per_clip']} s a clip, peak RSS {p['peak_rss_mb']} MB); "
          f"fused max |diff| {diff_fused:.2e}, experiments {max(diff_exp.values()):.2e}; reproduces: {ok}")  # fmt: skip
    if "timeline" in report:
        t = report["timeline"]
        print(f"with the timeline: {t['clips']} clips, {t['windows']} windows, {t['wall_s']} s ({t['s_per_clip']} s a clip)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
