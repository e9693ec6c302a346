"""Throughput and output size of every visual extractor on one shard of a workflow run
(default: paired_av shard s000, ~130 clips, ~2100 face frames).

  python bench/visual.py [--results results/paired_av] [--shard s000] [--threads 2]

Each extractor runs through the workflow's own per-shard entry point
(``emoflow.features.base.run``); model loading is timed apart (a second construction).
Fitted extractors (frame CNN, C3D) use the run's trained models and are left out when
those are absent.  Writes bench/out/visual.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import load_config  # noqa: E402
from emoflow.features import base, registry  # noqa: E402
from emoflow.storage import read_table  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(REPO / "results" / "paired_av"))
    ap.add_argument(
        "--config", nargs="+", default=[str(REPO / "config.yaml"), str(REPO / "configs" / "paired_av.yaml")]
    )
    ap.add_argument("--shard", default="s000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="extractor entries to run (default: every visual one)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "visual.json"))
    args = ap.parse_args(argv)
    cfg = load_config([Path(p) for p in args.config])
    res, s = Path(args.results), args.shard
    inputs = [
        str(res / f"shards/{s}.parquet"),
        str(res / f"faces/{s}.videos.parquet"),
        str(res / f"crops/{s}.parquet"),
        str(res / f"faces/{s}.parquet"),
    ]
    n_crops = read_table(inputs[2], columns=["video_id"]).num_rows
    n_videos = read_table(inputs[0], columns=["video_id"]).num_rows
    crops_cfg = {k: cfg["faces"][k] for k in ("color_size", "grey_size", "margin")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in sorted(cfg["features"].items()):
            if params is None or (args.only and name not in args.only):
                continue
            ent = registry.entry(params["extractor"])
            if ent.input != "crops":
                continue
            params = dict(params)
            if ent.fitted:
                model = res / "models" / params["extractor"] / f"{name}.json"
                if not model.is_file():
                    print(f"{name}: no trained model at {model}: left out", file=sys.stderr)
                    continue
                params["model"] = str(model)
            run_cfg = {"features": {name: params}, "feature_inputs": cfg["feature_inputs"], "crops": crops_cfg}
            t0 = time.perf_counter()
            registry.load(params["extractor"])(params, args.threads)
            load_s = time.perf_counter() - t0
            out = Path(tmp, f"{name}.parquet")
            t0 = time.perf_counter()
            base.run(name, run_cfg, inputs, str(out), str(Path(tmp, f"{name}.skips.parquet")), args.threads)
            total = time.perf_counter() - t0
            t = read_table(out)
            extract_s = max(1e-9, total - load_s)
            rows.append(
                {
                    "name": name,
                    "extractor": params["extractor"],
                    "level": t.schema.metadata[b"level"].decode(),
                    "dim": int(t.schema.metadata[b"dim"]),
                    "rows": t.num_rows,
                    "missing": int(sum(t["missing"].to_pylist())),
                    "frames": n_crops,
                    "videos": n_videos,
                    "load_s": round(load_s, 2),
                    "extract_s": round(extract_s, 2),
                    "frames_per_s": round(n_crops / extract_s, 1),
                    "bytes": out.stat().st_size,
                }
            )
            print(f"{name}: {rows[-1]['frames_per_s']} frames/s", file=sys.stderr)
    result = {
        "shard": s,
        "results": str(res),
        "threads": args.threads,
        "frames": n_crops,
        "videos": n_videos,
        "extractors": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"| extractor | level | dim | frames/s | load (s) | output (MB per {n_videos} clips) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['level']} | {r['dim']} | {r['frames_per_s']} | {r['load_s']} | {r['bytes'] / 1e6:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
