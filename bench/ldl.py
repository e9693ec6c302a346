"""Label-distribution learning for the frame CNN under label noise and occlusion (issue 20).

  python bench/ldl.py [--quick] [--threads 2] [--workdir DIR] [--headline EPOCHS]

The grid: one frame CNN per training target kind (``hard`` labels, FER+ ``votes``,
``uncertainty``-aware label distributions; :mod:`emoflow.nets.ldl`) and per label-noise
rate (0 / 10 / 20 / 30% of the training labels flipped uniformly to another class, fixed
seed; :mod:`emoflow.robustness.noise`), each trained by the workflow's own code
(:func:`emoflow.robustness.stage.fit_one` -> :func:`emoflow.features.frame_cnn.fit`, epochs
chosen on a held-out part of FER2013 *train*, never public_test), then scored on FER2013
public_test (clean labels): accuracy, UAR, against the FER+ majority, and against the FER+
vote distributions (KL, Chebyshev, cosine, intersection); the learned λ's AUROC for
flipped vs clean labels; accuracy under four occluders (noise-free models;
:mod:`emoflow.robustness.occlude`).  Settings are the config's ``robustness`` section
(config.yaml: one owner), which is sized for the budget:

Budget (2 CPU cores, at most 90 minutes for the grid): one FER2013 epoch of the default VGG
(4 stages of 2 convs, fc 256) costs about 2 minutes (~215 images/s), so the grid uses a
smaller VGG (widths 32/64/128, one conv per stage, fc 128; about 1.9x faster), a fixed
stratified subset of 8000 training faces (1000 held out to choose the epoch) and 10 epochs
(the uncertainty targets: 2 warm-up epochs on hard labels, then 8 on label distributions):
12 fits of 80k training images each, plus the uncertainty runs' per-epoch cache pass
(8 x 8000 forward passes) and the scoring (about a minute per fit).  Expected: about 50
minutes at the reference speed above; about 75 minutes on cores shared with another job
(the small net measured ~250 images/s then).  The uncertainty objective caches neighbours'
predictions and features once per epoch instead of forwarding K neighbours every step.

``--headline EPOCHS`` adds one full-size run per target kind (the config's default frame CNN
VGG on all FER2013 training faces, no noise): up to about 2 minutes per epoch each (77 s
measured on free cores), so ``--headline 10`` adds 40-70 minutes; its figures land under
``headline``.

``--quick``: a smoke run of the same code path (a 16/32/64 VGG, 600 training faces,
3 epochs of which 1 warm-up for the uncertainty targets, 600 public_test faces) in a few
minutes; writes ``bench/out/ldl_quick.json``.

``--workdir`` keeps every fitted model and its scores; a rerun with the same folder skips
finished cells.  Writes bench/out/ldl.json (+ .csv, .md and two PNGs beside it).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import resolve_data_root  # noqa: E402
from emoflow.dataset.labels import label_map  # noqa: E402

QUICK = {
    "net": {"widths": [16, 32, 64], "convs": 1, "fc": 64},
    "max_train": 600,
    "max_val": 200,
    "epochs": 3,
    "warmup_epochs": 1,
    "test_limit": 600,
}
HEADLINE_NET = {"arch": "vgg", "net": {}}  # the frame CNN's defaults (emoflow.nets.frame.VGG)


def grid_settings(quick: bool, root: Path) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    rob = json.loads(json.dumps(cfg["robustness"]))
    net = rob["net"]
    net["train"] = {**net["train"], "path": net["train"]["path"].replace("{data_root}", str(root))}
    rob["votes"] = rob["votes"].replace("{data_root}", str(root))
    rob["label_map"] = label_map(cfg, "ferplus8", "fer2013")
    rob["test_limit"] = None
    if quick:
        net["net"], net["epochs"] = QUICK["net"], QUICK["epochs"]
        training = net.get("training") or {}
        net["training"] = {
            **training,
            "uncertainty": {**(training.get("uncertainty") or {}), "warmup_epochs": QUICK["warmup_epochs"]},
        }
        net["train"] = {**net["train"], "max_train": QUICK["max_train"], "max_val": QUICK["max_val"]}
        rob["test_limit"] = QUICK["test_limit"]
    return rob


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny subset and net: a smoke run of a few minutes")
    ap.add_argument("--data-root", help="shared data root (default: as the workflow resolves it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", help="keep fitted models and per-cell scores here (reruns skip finished cells)")
    ap.add_argument(
        "--headline", type=int, default=0, metavar="EPOCHS", help="also full-size clean runs per target kind"
    )
    ap.add_argument("--out", help="default bench/out/ldl.json (--quick: ldl_quick.json)")
    ap.add_argument(
        "--uncertainty",
        default="{}",
        help="JSON: training.uncertainty settings of the uncertainty cells (emoflow.nets.ldl.UNCERTAINTY_DEFAULTS), "
        'e.g. another auxiliary space: \'{"aux": "features", "aux_model": "run/models/frame_cnn/votes.json"}\'',
    )
    args = ap.parse_args(argv)

    from emoflow.nets.common import bf16_supported, pick_device, setup_torch
    from emoflow.robustness import report, stage

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("bench.ldl")
    root = Path(args.data_root) if args.data_root else resolve_data_root({})
    out = Path(args.out or REPO / "bench" / "out" / ("ldl_quick.json" if args.quick else "ldl.json"))
    rob = grid_settings(args.quick, root)
    extra = json.loads(args.uncertainty)
    if extra:  # only the uncertainty cells read training.uncertainty
        training = rob["net"].get("training") or {}
        rob["net"]["training"] = {**training, "uncertainty": {**(training.get("uncertainty") or {}), **extra}}
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ldl_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    setup_torch(args.threads, seed=None)
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

    t_all = time.time()
    test = stage.load_public_test(rob["net"]["train"]["path"], rob["votes"], rob["label_map"], rob["test_limit"])
    log.info("public_test: %d faces (%d with FER+ votes)", len(test.y), int(test.has_votes.sum()))

    def cell(name: str, target: str, noise: int, cfg: dict, occluders) -> dict:
        done = work / f"{name}.score.json"
        if done.exists():
            return json.loads(done.read_text())
        t0 = time.time()
        meta = stage.fit_one(
            target,
            noise,
            str(work / f"{name}.json"),
            str(work / f"{name}.faces.parquet"),
            cfg,
            classes,
            args.threads,
            log,
        )
        t1 = time.time()
        res = stage.score_model(str(work / f"{name}.json"), test, occluders, str(work / f"{name}.faces.parquet"))
        res.update(
            {
                "fit_seconds": round(t1 - t0, 1),
                "score_seconds": round(time.time() - t1, 1),
                "train_seconds": meta["train_seconds"],
                "counts": meta["counts"],
            }
        )
        done.write_text(json.dumps(res, indent=1) + "\n")
        log.info("%s: accuracy %.4f (fit %.0f s)", name, res["public_test"]["accuracy"], t1 - t0)
        return res

    scores = {}
    for target in rob["targets"]:
        for noise in rob["noise"]:
            occ = rob["occluders"] if noise == 0 else ()
            scores[(target, noise)] = cell(f"{target}_n{noise}", target, noise, rob, occ)

    keys = (
        "accuracy",
        "uar",
        "accuracy_ferplus",
        "uar_ferplus",
        "kl_ferplus",
        "chebyshev_ferplus",
        "cosine_ferplus",
        "intersection_ferplus",
    )
    result = {
        "public_test": {
            t: {
                str(n): {
                    **{k: s["public_test"][k] for k in keys},
                    "best_epoch": s["best_epoch"],
                    "val_accuracy": s["val_accuracy"],
                    "fit_seconds": s["fit_seconds"],
                }
                for (t2, n), s in scores.items()
                if t2 == t
            }
            for t in rob["targets"]
        },
        "lambda_auroc": {
            str(n): scores[("uncertainty", n)]["lambda_auroc"] for n in rob["noise"] if ("uncertainty", n) in scores
        },
        "occlusion": {
            t: {
                "none": scores[(t, 0)]["public_test"]["accuracy"],
                **{k: v["accuracy"] for k, v in scores[(t, 0)]["occlusion"].items()},
            }
            for t in rob["targets"]
            if (t, 0) in scores
        },
    }
    pt = result["public_test"]
    if {"hard", "uncertainty"} <= set(pt) and {"0", "30"} <= set(pt["hard"]):
        drop = {t: pt[t]["0"]["accuracy"] - pt[t]["30"]["accuracy"] for t in pt if "30" in pt[t]}
        result["goal"] = {
            "accuracy_drop_0_to_30": drop,
            "uncertainty_drop_at_most_half_of_hard": drop["uncertainty"] <= 0.5 * drop["hard"],
            "uncertainty_not_worse_than_hard_at_0": pt["uncertainty"]["0"]["accuracy"] >= pt["hard"]["0"]["accuracy"],
            "votes_lower_kl_than_hard_at_0": ("votes" in pt)
            and pt["votes"]["0"]["kl_ferplus"] < pt["hard"]["0"]["kl_ferplus"],
        }

    if args.headline:
        head = {
            **rob,
            "net": {
                **rob["net"],
                **HEADLINE_NET,
                "epochs": args.headline,
                "train": {k: v for k, v in rob["net"]["train"].items() if k not in ("max_train", "max_val")},
            },
        }
        result["headline"] = {}
        for target in rob["targets"]:
            s = cell(f"headline_{target}", target, 0, head, rob["occluders"])
            result["headline"][target] = {
                **{k: s["public_test"][k] for k in keys},
                "best_epoch": s["best_epoch"],
                "fit_seconds": s["fit_seconds"],
                "occlusion": {k: v["accuracy"] for k, v in s["occlusion"].items()},
            }

    dev = pick_device("auto")
    result["settings"] = {
        "quick": args.quick,
        "net": {k: rob["net"][k] for k in ("arch", "net", "epochs")},
        "train": {k: v for k, v in rob["net"]["train"].items() if k != "path"},
        "targets": rob["targets"],
        "noise_percent": rob["noise"],
        "occluders": rob["occluders"],
        "flip_seed": rob["seed"],
        "public_test_faces": int(len(test.y)),
        "device": str(dev),
        "precision": "bf16" if bf16_supported(dev) else "fp32",
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "budget": "grid sized for <= 90 min on 2 CPU cores: small VGG, fixed stratified training subset, few epochs; "
        "epochs chosen on held-out FER2013 train faces; occlusion scored on noise-free models only",
        "uncertainty": "aux space: pseudo valence/arousal from FER+ votes (emoflow.nets.ldl.CIRCUMPLEX), K=8, "
        "neighbour predictions/features cached once per epoch"
        if not extra
        else extra,
        "occluder_landmarks": "FER2013 mean-shape template (emoflow.robustness.occlude.FER2013_LANDMARKS_48)",
    }
    result["seconds_total"] = round(time.time() - t_all, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    from emoflow.storage import write_text

    write_text(out, json.dumps(result, indent=1) + "\n")
    stem = out.with_suffix("")
    df = report.write(
        [report.row(s) for s in scores.values()],
        f"{stem}.csv",
        f"{stem}.md",
        f"{stem}_noise.png",
        f"{stem}_occlusion.png",
    )
    print(report.markdown(df))
    print(f"wrote {out} ({result['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
