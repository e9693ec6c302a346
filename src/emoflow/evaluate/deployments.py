"""Test figures as a user will see them: one fitted run, deployed three ways.

Speaker normalisation (:mod:`emoflow.classify.speaker_norm`) standardises each speaker's
features over that speaker's clips.  The workflow scores each test speaker normalised over
*all* of its test clips; a user who scores one clip gets the run's population statistics.
This stage scores a partition's test (and val) split under each way of deploying:

``clip_alone``     every clip on its own (``emoflow predict clip.mp4``): population statistics
``speaker_batch``  a speaker's clips together (``emoflow predict --speaker S clips...``, or a
                   manifest with a speaker column): what the workflow's own figures assume
``enrolment``      a speaker enrolled once with unlabelled clips (``--enrol``), then each later
                   clip scored alone: each speaker's clips are dealt into two seeded halves and
                   each half is scored with the other half as its enrolment, so no clip ever
                   normalises itself

for every experiment and every fusion group, with the run's own fitted classifiers,
encoders and fusion choices, through the predictor's code (:func:`emoflow.predict.apply.experiment_probs`,
:func:`emoflow.fusion.choose.apply`).  ``speaker_batch`` must reproduce the workflow's stored
predictions (the largest difference is recorded).  Experiments without speaker
normalisation score the same under all three.

``python -m emoflow.evaluate.deployments OUT.json OUT.md --splits S --experiments REPORTS...
--models MODELS... --predictions PREDS... --encoders NPZ... --features TABLES... --fusion CHOICES...
--fused FUSED... [--split test] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from emoflow import logs
from emoflow.evaluate.metrics import scores
from emoflow.storage import read_table, write_text

DEPLOYMENTS = ("clip_alone", "speaker_batch", "enrolment")
WORDS = {
    "clip_alone": "each clip alone",
    "speaker_batch": "a speaker's clips together",
    "enrolment": "enrolled speaker, one clip at a time",
}


def halves(ids: list[str], speakers: np.ndarray, seed: int = 0) -> np.ndarray:
    """0/1 per clip: each speaker's clips (in id order) dealt into two halves at random."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(ids), int)
    ids_arr = np.asarray(ids, object)
    for s in sorted(set(np.asarray(speakers).tolist())):
        idx = np.flatnonzero(np.asarray(speakers) == s)
        idx = idx[np.argsort(ids_arr[idx], kind="stable")]
        half[rng.permutation(idx)[: len(idx) // 2]] = 1
    return half


def fitted_experiments(
    reports: list[str], models: list[str], predictions: list[str], encoders: list[str], classes: list[str]
):
    """The run's fitted experiments behind the bundle interface the predictor scores with
    (absolute paths; :class:`emoflow.predict.bundle.Bundle` rooted at ``/``)."""
    from emoflow.predict.bundle import Bundle, training_prior

    by_stem = lambda paths: {Path(p).stem: p for p in paths}  # noqa: E731
    model_of, pred_of = by_stem(models), by_stem(predictions)
    enc_of = {Path(p).name.removesuffix(".npz"): p for p in encoders}
    experiments = {}
    for rep_path in reports:
        rep = json.loads(Path(rep_path).read_text())
        name = Path(rep_path).stem
        e = {
            "feature": rep["feature"],
            "encoding": rep.get("encoding"),
            "modality": rep["modality"],
            "classifier": rep["classifier"],
            "model_format": rep.get("model_format", "skops"),
            "normalize": (rep.get("normalize") or {}).get("by", "none"),
            "model": str(Path(model_of[name]).resolve()),
            "report": str(Path(rep_path).resolve()),
            "prior": training_prior(pred_of[name], classes),
        }
        if rep.get("encoding"):
            e["encoder"] = str(Path(enc_of[f"{rep['feature']}.{rep['encoding']}"]).resolve())
        experiments[name] = e
    return Bundle(Path("/"), {"classes": classes, "experiments": experiments, "features": {}})


def experiment_deployments(
    run, name: str, tables: dict, ids: list[str], speakers: np.ndarray, half: np.ndarray
) -> dict:
    """Deployment -> (probabilities (n, C), present (n,)) of one experiment."""
    from emoflow.predict.apply import experiment_probs

    own = np.array([f"video:{v}" for v in ids], object)
    out = {
        "clip_alone": experiment_probs(run, name, tables, ids, own)[:2],
        "speaker_batch": experiment_probs(run, name, tables, ids, speakers)[:2],
    }
    if run.experiments[name]["normalize"] != "speaker":
        out["enrolment"] = out["speaker_batch"]
        return out
    probs, present = np.zeros_like(out["speaker_batch"][0]), np.zeros(len(ids), bool)
    for h in (0, 1):  # half h scored with the other half as the speaker's enrolment
        p, pr, _ = experiment_probs(run, name, tables, ids, speakers, reference=half != h)
        probs[half == h], present[half == h] = p[half == h], pr[half == h]
    out["enrolment"] = (probs, present)
    return out


def evaluate(
    splits: str,
    reports: list[str],
    models: list[str],
    predictions: list[str],
    encoders: list[str],
    features: list[str],
    fusion: list[str],
    fused: list[str],
    split: str = "test",
    seed: int = 0,
    log=None,
) -> dict:
    """Every experiment's and fusion group's scores on ``split`` under each deployment."""
    from emoflow.fusion.choose import apply as fuse_choice

    log = log or logs.setup("emoflow.deployments")
    pred_of = {Path(p).stem: p for p in predictions}
    first = read_table(predictions[0]).to_pandas()
    classes = [c[2:] for c in first.columns if c.startswith("p_")]
    sp = read_table(splits).to_pandas()
    sp = sp[(sp["split"] == split) & sp["label"].isin(classes)].sort_values("video_id")
    ids, speakers = sp["video_id"].tolist(), sp["speaker"].to_numpy(object)
    y = np.array([classes.index(lab) for lab in sp["label"]])
    half = halves(ids, speakers, seed)
    run = fitted_experiments(reports, models, predictions, encoders, classes)
    tables: dict[str, list[str]] = {}
    for p in sorted(features):
        tables.setdefault(Path(p).parent.name, []).append(p)
    cols = [f"p_{c}" for c in classes]
    per_exp, max_diff, systems = {}, 0.0, {}
    for name, e in run.experiments.items():
        per_exp[name] = experiment_deployments(run, name, tables, ids, speakers, half)
        stored = read_table(pred_of[name]).to_pandas().set_index("video_id").loc[ids, cols].to_numpy()
        max_diff = max(max_diff, float(np.abs(per_exp[name]["speaker_batch"][0] - stored).max()))
        systems[name] = {"kind": "experiment", "modality": e["modality"], "normalize": e["normalize"]}
        systems[name] |= {d: scores(y, per_exp[name][d][0].argmax(1), len(classes)) for d in DEPLOYMENTS}
        log.info("%s: %s", name, "  ".join(f"{d} {systems[name][d]['accuracy']:.3f}" for d in DEPLOYMENTS))
    fused_of = {Path(p).stem: p for p in fused}
    for path in fusion:
        group, choice = Path(path).stem, json.loads(Path(path).read_text())
        mods = sorted(
            {m for n in choice["models"] for m in run.experiments[n]["modality"].split("+")}
        )  # e2e: "audio+face"
        key = f"fusion:{group}"
        systems[key] = {"kind": "fusion", "modality": "+".join(mods), "method": choice["method"]}
        for d in DEPLOYMENTS:
            fusedp = fuse_choice(
                choice, {n: per_exp[n][d][0] for n in choice["models"]}, {n: per_exp[n][d][1] for n in choice["models"]}
            )
            systems[key][d] = scores(y, fusedp.argmax(1), len(classes))
            if d == "speaker_batch" and group in fused_of:
                stored = read_table(fused_of[group]).to_pandas().set_index("video_id").loc[ids, cols].to_numpy()
                max_diff = max(max_diff, float(np.abs(fusedp - stored).max()))
        log.info("%s: %s", key, "  ".join(f"{d} {systems[key][d]['accuracy']:.3f}" for d in DEPLOYMENTS))
    return {
        "split": split,
        "n": len(ids),
        "speakers": int(len(set(speakers.tolist()))),
        "seed": seed,
        "deployments": {d: WORDS[d] for d in DEPLOYMENTS},
        "enrolment_protocol": "each speaker's clips in two seeded halves; each half scored with the other as the enrolment",
        "speaker_batch_reproduces_workflow_max_abs_diff": max_diff,
        "systems": systems,
    }


def headline(result: dict, val_accuracy: dict[str, float]) -> dict:
    """The best face-only, audio-only and multimodal systems (the report's choice: best
    validation accuracy, as the workflow scores validation) under each deployment."""
    systems = result["systems"]

    def best(pred):
        cands = [s for s in systems if pred(systems[s]) and s in val_accuracy]
        return max(sorted(cands), key=lambda s: val_accuracy[s]) if cands else None  # ties: the first by name

    chosen = {
        "best_face_only": best(lambda r: r["modality"] == "face"),
        "best_audio_only": best(lambda r: r["modality"] == "audio"),
        # multimodal: a fusion of face with another modality (audio, text)
        "best_fused": best(
            lambda r: r["kind"] == "fusion" and "face" in r["modality"].split("+") and "+" in r["modality"]
        ),
    }
    return {k: ({"system": s, **{d: systems[s][d] for d in DEPLOYMENTS}} if s else None) for k, s in chosen.items()}


def markdown(result: dict, heads: dict) -> str:
    lines = [
        f"# Test figures by deployment ({result['split']}, {result['n']} clips, {result['speakers']} speakers)",
        "",
        "accuracy / UAR (%) of the same fitted systems, deployed three ways:",
        "",
    ]
    lines += [f"- **{d}**: {w}" for d, w in result["deployments"].items()]
    lines += ["", f"Enrolment: {result['enrolment_protocol']}.", ""]
    lines += [
        "| system | chosen as | " + " | ".join(result["deployments"].values()) + " |",
        "|---|---|" + "---|" * len(result["deployments"]),
    ]
    for k, h in heads.items():
        if h:
            cells = [f"{100 * h[d]['accuracy']:.1f} / {100 * h[d]['uar']:.1f}" for d in result["deployments"]]
            lines.append(f"| {h['system']} | {k.replace('_', ' ')} (by validation) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "All systems:",
        "",
        "| system | modality | speaker-normalised | " + " | ".join(result["deployments"]) + " |",
        "|---|---|---|" + "---|" * len(result["deployments"]),
    ]
    for name, s in sorted(result["systems"].items(), key=lambda kv: (kv[1]["kind"], kv[0])):
        cells = [f"{100 * s[d]['accuracy']:.1f} / {100 * s[d]['uar']:.1f}" for d in result["deployments"]]
        lines.append(f"| {name} | {s['modality']} | {s.get('normalize', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow deployments", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_json")
    ap.add_argument("out_md")
    for name in ("experiments", "models", "predictions", "features", "fusion", "fused"):
        ap.add_argument(f"--{name}", nargs="*", default=[])
    ap.add_argument("--encoders", nargs="*", default=[])
    ap.add_argument("--splits", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.deployments")
    result = evaluate(
        args.splits,
        args.experiments,
        args.models,
        args.predictions,
        args.encoders,
        args.features,
        args.fusion,
        args.fused,
        args.split,
        args.seed,
        log,
    )
    val = {}
    for p in args.experiments:
        r = json.loads(Path(p).read_text())
        val[Path(p).stem] = ((r.get("scores") or {}).get("val") or {}).get("accuracy", float("-inf"))
    for p in args.fusion:
        c = json.loads(Path(p).read_text())
        val[f"fusion:{Path(p).stem}"] = ((c.get("scores") or {}).get("val") or {}).get("accuracy", float("-inf"))
    result["headline"] = heads = headline(result, val)
    write_text(args.out_json, json.dumps(result, indent=1) + "\n")
    write_text(args.out_md, markdown(result, heads))
    if result["speaker_batch_reproduces_workflow_max_abs_diff"] > 1e-6:
        log.error(
            "speaker_batch differs from the workflow's predictions by %.2e",
            result["speaker_batch_reproduces_workflow_max_abs_diff"],
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
