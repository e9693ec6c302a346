"""Test figures as a user would get them: the same fitted run, deployed three ways.

Speaker normalisation standardises each speaker's features over that speaker's clips.  The
workflow's test figures normalise each test speaker over *all* of its test clips (a balanced
set in paired_av); a user who scores one clip gets the run's population statistics instead.
This benchmark scores a finished run's test split under each way of deploying:

``clip_alone``     every clip on its own (``emoflow predict clip.mp4``): population statistics
``speaker_batch``  a speaker's clips together (``emoflow predict --speaker S clips...`` or a
                   manifest with a speaker column): what the workflow reports
``enrolment``      a speaker enrolled once with unlabelled clips (``--enrol``), then each later
                   clip alone: each test speaker's clips split in two halves (seeded); each half
                   is scored with the other half as the enrolment (2-fold), so no clip ever
                   normalises itself

for the fused system of every fusion group and every experiment, with the run's own fitted
classifiers, encoders and fusion choices (the code path of ``emoflow predict``:
:func:`emoflow.predict.apply.score`) on the run's feature tables.  It checks first that the
``speaker_batch`` deployment reproduces the workflow's stored test predictions.  The best
face-only and audio-only systems are the report's choice: best validation accuracy.

  python bench/deployments.py [--results results/paired_av] [--out bench/out/deployments.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.evaluate.metrics import scores  # noqa: E402
from emoflow.fusion.choose import apply as fuse_choice  # noqa: E402
from emoflow.predict.apply import experiment_probs  # noqa: E402
from emoflow.predict.bundle import Bundle, training_prior  # noqa: E402
from emoflow.storage import read_table  # noqa: E402

DEPLOYMENTS = ("clip_alone", "speaker_batch", "enrolment")


def run_as_bundle(results: Path, part: str, classes: list[str]) -> Bundle:
    """The run's fitted experiments of partition ``part`` seen through the bundle interface
    (paths relative to the results folder), so the predictor's own code scores them."""
    experiments = {}
    for rep_path in sorted((results / "models" / "classify" / part).glob("*.json")):
        rep = json.loads(rep_path.read_text())
        name = rep_path.stem
        e = {
            "feature": rep["feature"], "encoding": rep.get("encoding"), "modality": rep["modality"],
            "classifier": rep["classifier"], "model_format": rep.get("model_format", "skops"),
            "normalize": (rep.get("normalize") or {}).get("by", "none"),
            "model": f"models/classify/{part}/{name}.model", "report": f"models/classify/{part}/{name}.json",
            "prior": training_prior(str(results / "predictions" / part / f"{name}.parquet"), classes),
        }  # fmt: skip
        if rep.get("encoding"):
            e["encoder"] = f"models/encode/{part}/{rep['feature']}.{rep['encoding']}.npz"
        experiments[name] = e
    return Bundle(results, {"classes": classes, "experiments": experiments, "features": {}})


def halves(ids: list[str], speakers: np.ndarray, seed: int = 0) -> np.ndarray:
    """0/1 per clip: each speaker's clips dealt into two halves at random (seeded)."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(ids), int)
    for s in sorted(set(speakers.tolist())):
        idx = np.flatnonzero(speakers == s)
        idx = idx[np.argsort(np.asarray(ids, object)[idx], kind="stable")]
        half[rng.permutation(idx)[: len(idx) // 2]] = 1
    return half


def experiment_deployments(run: Bundle, name: str, tables: dict, ids: list[str], speakers: np.ndarray, half: np.ndarray) -> dict:
    """Deployment -> (probabilities (n, C), present (n,))."""
    out = {}
    own = np.array([f"video:{v}" for v in ids], object)
    out["clip_alone"] = experiment_probs(run, name, tables, ids, own)[:2]
    out["speaker_batch"] = experiment_probs(run, name, tables, ids, speakers)[:2]
    if run.experiments[name]["normalize"] != "speaker":
        out["enrolment"] = out["speaker_batch"]
        return out
    probs, present = np.zeros_like(out["speaker_batch"][0]), np.zeros(len(ids), bool)
    for h in (0, 1):  # score half h with the other half as the enrolment
        p, pr, _ = experiment_probs(run, name, tables, ids, speakers, reference=half != h)
        probs[half == h], present[half == h] = p[half == h], pr[half == h]
    out["enrolment"] = (probs, present)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results/paired_av")
    ap.add_argument("--part", default="main")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "deployments.json"))
    args = ap.parse_args(argv)
    results = Path(args.results).resolve()
    summary = pd.read_csv(results / "report" / "summary.csv")
    fusions = {p.stem: json.loads(p.read_text()) for p in sorted((results / "fusion" / args.part).glob("*.json"))}
    sp = read_table(results / "splits" / f"{args.part}.parquet").to_pandas()
    first = next(iter(fusions.values()))
    pred0 = read_table(results / "predictions" / args.part / f"{first['models'][0]}.parquet").to_pandas()
    classes = [c[2:] for c in pred0.columns if c.startswith("p_")]
    sp = sp[sp["split"] == args.split].sort_values("video_id")
    ids = sp["video_id"].tolist()
    speakers = sp["speaker"].to_numpy(object)
    y = np.array([classes.index(lab) for lab in sp["label"]])
    half = halves(ids, speakers, args.seed)
    run = run_as_bundle(results, args.part, classes)
    tables = {}
    for e in run.experiments.values():
        tables.setdefault(e["feature"], sorted(str(p) for p in (results / "features" / e["feature"]).glob("*.parquet")))

    per_exp, max_diff = {}, 0.0
    for name in run.experiments:
        per_exp[name] = experiment_deployments(run, name, tables, ids, speakers, half)
        stored = read_table(results / "predictions" / args.part / f"{name}.parquet").to_pandas().set_index("video_id").loc[ids]
        diff = float(np.abs(per_exp[name]["speaker_batch"][0] - stored[[f"p_{c}" for c in classes]].to_numpy()).max())
        max_diff = max(max_diff, diff)
    print(f"speaker_batch reproduces the workflow's {args.split} predictions of {len(per_exp)} experiments: max |diff| {max_diff:.2e}")

    systems = {}
    for name in per_exp:
        systems[name] = {"kind": "experiment", "modality": run.experiments[name]["modality"],
                         "normalize": run.experiments[name]["normalize"]}  # fmt: skip
        for d in DEPLOYMENTS:
            systems[name][d] = scores(y, per_exp[name][d][0].argmax(1), len(classes))
    for group, choice in fusions.items():
        mods = sorted({run.experiments[n]["modality"] for n in choice["models"]})
        systems[f"fusion:{group}"] = {"kind": "fusion", "modality": "+".join(mods), "method": choice["method"]}
        for d in DEPLOYMENTS:
            probs = {n: per_exp[n][d][0] for n in choice["models"]}
            present = {n: per_exp[n][d][1] for n in choice["models"]}
            systems[f"fusion:{group}"][d] = scores(y, fuse_choice(choice, probs, present).argmax(1), len(classes))
        stored = read_table(results / "fusion" / args.part / f"{group}.parquet").to_pandas().set_index("video_id").loc[ids]
        fused_batch = fuse_choice(choice, {n: per_exp[n]["speaker_batch"][0] for n in choice["models"]},
                                  {n: per_exp[n]["speaker_batch"][1] for n in choice["models"]})  # fmt: skip
        max_diff = max(max_diff, float(np.abs(fused_batch - stored[[f"p_{c}" for c in classes]].to_numpy()).max()))

    # the report's choice: best validation accuracy per modality (single modality) and overall
    val = summary.set_index("system")["val_accuracy"]

    def best(pred) -> str:
        cands = [s for s in systems if pred(systems[s]) and s in val.index]
        return max(cands, key=lambda s: (val[s], s))

    chosen = {
        "best_face_only": best(lambda r: r["modality"] == "face"),
        "best_audio_only": best(lambda r: r["modality"] == "audio"),
        "best_fused": best(lambda r: r["kind"] == "fusion" and "+" in r["modality"]),
    }
    out = {
        "results": str(results),
        "split": args.split,
        "n": len(ids),
        "speakers": int(len(set(speakers.tolist()))),
        "enrolment": "each test speaker's clips in two seeded halves; each half scored with the other as the enrolment",
        "speaker_batch_reproduces_workflow_max_abs_diff": max_diff,
        "chosen_by_validation": chosen,
        "headline": {k: {d: systems[s][d] for d in DEPLOYMENTS} | {"system": s} for k, s in chosen.items()},
        "systems": systems,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for k, s in chosen.items():
        row = "  ".join(f"{d} {systems[s][d]['accuracy']:.3f}/{systems[s][d]['uar']:.3f}" for d in DEPLOYMENTS)
        print(f"{k:16s} {s:40s} {row}")
    return 0 if max_diff <= 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
