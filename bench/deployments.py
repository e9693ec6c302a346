"""Test figures of a finished run by deployment: each clip alone, a speaker's clips together,
an enrolled speaker one clip at a time (:mod:`emoflow.evaluate.deployments`, which the
workflow's ``deployments`` rule runs too).  This wrapper finds a run's files and writes
``bench/out/deployments.json`` with the headline (best face-only, audio-only and fused
systems by validation accuracy) next to every system.

  python bench/deployments.py [--results results/paired_av] [--part main] [--out bench/out/deployments.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.evaluate import deployments  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results/paired_av")
    ap.add_argument("--part", default="main")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "deployments.json"))
    args = ap.parse_args(argv)
    r = Path(args.results).resolve()
    reports = sorted(str(p) for p in (r / "models" / "classify" / args.part).glob("*.json"))
    models = [p.removesuffix(".json") + ".model" for p in reports]
    preds = [str(r / "predictions" / args.part / (Path(p).stem + ".parquet")) for p in reports]
    encoders = sorted(str(p) for p in (r / "models" / "encode" / args.part).glob("*.npz"))
    docs = [json.loads(Path(p).read_text()) for p in reports]
    # an e2e network reads its branches' tables (and its face transform cache) instead of one feature
    feats = {d["feature"] for d in docs if d.get("model_format") != "e2e"}
    feats |= {t for d in docs if d.get("model_format") == "e2e" for k, t in d["features"].items() if t and k != "tta"}
    features = sorted(str(p) for f in feats for p in (r / "features" / f).glob("*.parquet"))
    features += sorted(
        str(p)
        for d in docs
        if d.get("model_format") == "e2e" and d["features"].get("tta")
        for p in (r / "e2e" / "tta" / d["features"]["tta"]).glob("*.parquet")
    )
    fusion = sorted(str(p) for p in (r / "fusion" / args.part).glob("*.json"))
    fused = [p.removesuffix(".json") + ".parquet" for p in fusion]
    out_json = Path(args.out)
    code = deployments.main(
        [
            str(out_json),
            str(out_json.with_suffix(".md")),
            "--splits",
            str(r / "splits" / f"{args.part}.parquet"),
            "--split",
            args.split,
            "--experiments",
            *reports,
            "--models",
            *models,
            "--predictions",
            *preds,
            "--encoders",
            *encoders,
            "--features",
            *features,
            "--fusion",
            *fusion,
            "--fused",
            *fused,
        ]
    )
    result = json.loads(out_json.read_text())
    result["results"] = str(r)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    for k, h in result["headline"].items():
        if h:
            cells = "  ".join(f"{d} {h[d]['accuracy']:.3f}/{h[d]['uar']:.3f}" for d in deployments.DEPLOYMENTS)
            print(f"{k:16s} {h['system']:36s} {cells}")
    print(
        f"speaker_batch vs the workflow's predictions: max |diff| {result['speaker_batch_reproduces_workflow_max_abs_diff']:.2e}"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
