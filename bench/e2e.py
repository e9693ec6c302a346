"""The end-to-end multimodal network (emoflow.e2e, issue 21) on a finished run: the seed
ensemble as configured, its ablations on VALIDATION, and its test figures beside the run's
late fusion, written to ``bench/out/e2e.json``.

Reads only the run's cached tables (nothing of the run is refitted or written): the
partition (``splits/{part}.parquet``), the audio feature (``features/<audio>/``), the face
transform cache (``e2e/tta/<face>_tta/``, made by the run's rule ``e2e_tta`` when an e2e
experiment is on; without it, ``--build-cache DIR`` computes it into DIR from the run's
crops and frame CNN fit, or the plain ``features/<face>/`` table is read and TTA is off),
and the fusion results ``fusion/{part}/{group}.json`` (``scores.test``).

Ablations are config diffs of the configured entry, each a full seed ensemble scored by
validation accuracy: no mixup, no CutMix, no SpecAugment, no label smoothing, no auxiliary
heads, audio only, face only; ``no_tta`` (the full ensemble predicted on the identity face
view) and ``one_seed`` (its first member alone: a one-seed fit is exactly that member) need
no training.  Variants train in ``--jobs`` processes of one thread each (the GPU when there
is one).  Timings: training seconds per variant, prediction seconds per clip (TTA included).

  python bench/e2e.py [--run results/paired_av] [--config configs/paired_av.yaml]
      [--experiment e2e] [--part main] [--jobs 2] [--set epochs=20 ...] [--out bench/out/e2e.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from pyarrow.parquet import read_schema

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.e2e import spec as e2e_spec  # noqa: E402
from emoflow.e2e.augment import IDENTITY  # noqa: E402
from emoflow.evaluate.metrics import scores  # noqa: E402
from emoflow.storage import read_table  # noqa: E402

#: Ablations trained as config diffs of the configured entry.
VARIANTS = {
    "no_mixup": {"mixup": 0.0},
    "no_cutmix": {"cutmix": 0.0},
    "no_specaugment": {"specaugment": None},
    "no_label_smoothing": {"label_smoothing": 0.0},
    "no_aux_heads": {"aux_weight": 0.0},
    "audio_only": {"face": None},
    "face_only": {"audio": None},
}

_STATE: dict = {}  # the loaded run, shared with the worker processes (fork)


def parse_set(items: list[str]) -> dict:
    """``key=value`` overrides (values as JSON, else strings)."""
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def entry_of(config: str | None, experiment: str) -> tuple[dict, dict]:
    """(the e2e entry of ``experiment`` in the config, or {}; the config's features)."""
    if not config:
        return {}, {}
    from emoflow.config import load_config

    cfg = load_config([REPO / "config.yaml", config], base_dir=REPO)
    return dict((cfg.get("e2e") or {}).get(experiment) or {}), cfg


def face_tables(run: Path, spec: dict, cfg: dict, build_cache: str | None, log) -> tuple[list[str], bool, str]:
    """The face branch's tables: (paths, transform cache?, where from)."""
    face = spec["face"]
    cache = sorted(str(p) for p in (run / "e2e" / "tta" / e2e_spec.tta_table(face)).glob("*.parquet"))
    if cache:
        return cache, True, "the run's transform cache"
    if build_cache and spec["tta"]:
        from emoflow.e2e import tta

        out = Path(build_cache) / e2e_spec.tta_table(face)
        out.mkdir(parents=True, exist_ok=True)
        params = dict(cfg["features"][face])
        params.pop("model_from", None)
        src = cfg["features"][face].get("model_from") or face
        params["model"] = str(run / "models" / cfg["features"][src]["extractor"] / f"{src}.json")
        tcfg = {
            "features": {e2e_spec.tta_table(face): params},
            "crops": {k: cfg["faces"][k] for k in ("color_size", "grey_size", "margin")},
        }
        paths = []
        for sheet in sorted((run / "shards").glob("s*.parquet")):
            shard = sheet.stem
            target = out / f"{shard}.parquet"
            if not target.is_file():
                t0 = time.time()
                tta.run(
                    e2e_spec.tta_table(face),
                    tcfg,
                    [
                        str(sheet),
                        str(run / "faces" / f"{shard}.videos.parquet"),
                        str(run / "crops" / f"{shard}.parquet"),
                        str(run / "faces" / f"{shard}.parquet"),
                    ],
                    str(target),
                )
                log(f"transform cache {target} ({time.time() - t0:.0f} s)")
            paths.append(str(target))
        return paths, True, f"built by the bench in {out}"
    plain = sorted(str(p) for p in (run / "features" / face).glob("*.parquet"))
    return plain, False, "the plain face feature (no transform cache: TTA off)"


def load_run(run: Path, part: str, spec: dict, cfg: dict, build_cache: str | None, log) -> dict:
    from emoflow.e2e import data as e2e_data

    sp = read_table(run / "splits" / f"{part}.parquet").to_pandas()
    first = next(iter(sorted((run / "predictions" / part).glob("*.parquet"))), None)
    if first is not None:  # the run's label space, in its column order
        classes = json.loads(read_schema(first).metadata[b"classes"])
    else:
        from emoflow.dataset import labels

        classes = labels.classes(cfg)
    sp = sp[sp["label"].isin(classes)].reset_index(drop=True)
    audio = sorted(str(p) for p in (run / "features" / spec["audio"]).glob("*.parquet")) if spec["audio"] else None
    face, cached, face_source = face_tables(run, spec, cfg, build_cache, log) if spec["face"] else (None, False, "none")
    t0 = time.time()
    data = e2e_data.load(audio, face, cached)
    log(f"loaded {len(sp)} clips' tables in {time.time() - t0:.0f} s (face: {face_source})")
    return {"splits": sp, "classes": classes, "data": data, "face_source": face_source, "cached": cached}


def _fit_variant(task: tuple[str, dict, int]) -> dict:
    """Train one variant's ensemble on the training rows; score val (and test for the full one)."""
    import torch

    from emoflow.e2e.data import Inputs
    from emoflow.e2e.fit import fit_ensemble, predict_proba

    name, spec, threads = task
    torch.set_num_threads(threads)
    st = _STATE
    sp, classes, full = st["splits"], st["classes"], st["data"]
    data = Inputs(
        audio=full.audio if spec["audio"] else {},
        face=full.face if spec["face"] else {},
        transforms=full.transforms,
        audio_dim=full.audio_dim if spec["audio"] else 0,
        face_dim=full.face_dim if spec["face"] else 0,
    )
    ids = sp["video_id"].tolist()
    y = np.array([classes.index(c) for c in sp["label"]])
    split, groups = sp["split"].to_numpy(), sp["speaker"].to_numpy(object)
    have = np.zeros(len(ids), bool)
    for p in data.present(ids).values():
        have |= p
    tr = (split == "train") & have
    t0 = time.time()
    members = fit_ensemble(data, [ids[i] for i in np.flatnonzero(tr)], y[tr], groups[tr], len(classes), spec, threads)
    train_seconds = time.time() - t0
    nets = [m for m, _ in members]
    prior = np.bincount(y[tr], minlength=len(classes)) / tr.sum()
    out = {
        "name": name,
        "train_seconds": round(train_seconds, 1),
        "threads": threads,
        "best_epochs": [r["best_epoch"] for _, r in members],
        "holdout_accuracy": [r["holdout_accuracy"] for _, r in members],
    }

    def probs_for(which, nets_, transforms):
        m = (split == which) if which != "all" else np.ones(len(ids), bool)
        p = np.tile(prior, (len(ids), 1))
        idx = np.flatnonzero(m & have)
        t1 = time.time()
        p[idx] = predict_proba(nets_, data, [ids[i] for i in idx], transforms)
        return p[m], y[m], (time.time() - t1) / max(1, len(idx))

    pv, yv, _ = probs_for("val", nets, spec["tta"])
    out["val"] = scores(yv, pv.argmax(1), len(classes))
    if name == "full":
        pt, yt, per_clip = probs_for("test", nets, spec["tta"])
        out["test"] = scores(yt, pt.argmax(1), len(classes))
        out["predict_seconds_per_clip"] = per_clip
        out["test_probs"] = {v: p.tolist() for v, p in zip(sp["video_id"][split == "test"], pt)}
        pv1, _, per_clip1 = probs_for("val", nets, [IDENTITY] if spec["face"] and st["cached"] else [])
        out["no_tta"] = {"val": scores(yv, pv1.argmax(1), len(classes)), "predict_seconds_per_clip": per_clip1}
        pv2, _, _ = probs_for("val", nets[:1], spec["tta"])
        out["one_seed"] = {"val": scores(yv, pv2.argmax(1), len(classes)), "seed": spec["seeds"][0]}
    return out


def fusion_result(run: Path, part: str, group: str) -> dict | None:
    p = run / "fusion" / part / f"{group}.json"
    if not p.is_file():
        return None
    c = json.loads(p.read_text())
    s = c.get("scores", {})
    return {
        "group": group,
        "method": c.get("method"),
        "experiments": c.get("models"),
        **{k: s.get("test", {}).get(k) for k in ("accuracy", "uar")},
        "val_accuracy": s.get("val", {}).get("accuracy"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="results/paired_av", help="a finished run's results folder")
    ap.add_argument(
        "--config", default="configs/paired_av.yaml", help="the run's preset (its e2e entry and features); '' for none"
    )
    ap.add_argument("--experiment", default="e2e", help="the e2e entry (and experiment) name")
    ap.add_argument("--part", default="main")
    ap.add_argument("--fusion-group", default="all", help="the run's late fusion")
    ap.add_argument(
        "--fusion-group-with-e2e",
        default="all_with_e2e",
        help="the run's fusion group that includes the e2e experiment",
    )
    ap.add_argument(
        "--set", nargs="*", default=[], help="key=value overrides of the e2e entry (values as JSON), e.g. epochs=20"
    )
    ap.add_argument(
        "--variants", nargs="*", default=None, help=f"ablations to train (default all: {', '.join(VARIANTS)})"
    )
    ap.add_argument("--jobs", type=int, default=2, help="variants trained at once (one process and thread each)")
    ap.add_argument("--build-cache", help="folder for the face transform cache when the run has none")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "e2e.json"))
    args = ap.parse_args(argv)
    t_start = time.time()
    log = lambda m: print(f"[{time.time() - t_start:7.1f}s] {m}", file=sys.stderr, flush=True)  # noqa: E731
    run = Path(args.run).resolve()
    entry, cfg = entry_of(args.config or None, args.experiment)
    spec = e2e_spec.resolve({**entry, **parse_set(args.set)})
    st = load_run(run, args.part, spec, cfg, args.build_cache, log)
    if not st["cached"]:
        spec = {**spec, "tta": []}
    _STATE.update(st)
    names = list(VARIANTS) if args.variants is None else args.variants
    tasks = [("full", spec, 1)]
    for n in names:
        v = e2e_spec.resolve({**spec, **VARIANTS[n]})
        if v["audio"] or v["face"]:
            tasks.append((n, v, 1))
    import torch

    if torch.cuda.is_available():
        jobs = 1  # one process on the GPU
    else:
        jobs = max(1, min(args.jobs, len(tasks)))
    log(f"{len(tasks)} ensembles of {len(spec['seeds'])} seed(s), {jobs} at a time")
    results = {}
    if jobs == 1:
        for t in tasks:
            results[t[0]] = _fit_variant(t)
            log(f"{t[0]}: val accuracy {results[t[0]]['val']['accuracy']:.3f} ({results[t[0]]['train_seconds']:.0f} s)")
    else:
        with mp.get_context("fork").Pool(jobs) as pool:
            for r in pool.imap_unordered(_fit_variant, tasks):
                results[r["name"]] = r
                log(f"{r['name']}: val accuracy {r['val']['accuracy']:.3f} ({r['train_seconds']:.0f} s)")
    full = results["full"]
    classes = st["classes"]
    e2e_test = {
        "accuracy": full["test"]["accuracy"],
        "uar": full["test"]["uar"],
        "source": "bench (retrained as configured)",
    }
    run_pred = run / "predictions" / args.part / f"{args.experiment}.parquet"
    reproduction = None
    if run_pred.is_file():
        df = read_table(run_pred).to_pandas()
        test = df[df["split"] == "test"]
        yt = np.array([classes.index(c) for c in test["label"]])
        pt = test[[f"p_{c}" for c in classes]].to_numpy()
        bench_p = np.array([full["test_probs"][v] for v in test["video_id"]])
        reproduction = float(np.abs(pt - bench_p).max())
        s = scores(yt, pt.argmax(1), len(classes))
        e2e_test = {
            "accuracy": s["accuracy"],
            "uar": s["uar"],
            "source": f"the run's {run_pred.relative_to(run)}",
            "bench_retrained": {k: full["test"][k] for k in ("accuracy", "uar")},
        }
    ablations = {
        "full": full["val"]["accuracy"],
        "no_tta": full["no_tta"]["val"]["accuracy"],
        "one_seed": full["one_seed"]["val"]["accuracy"],
    }
    ablations |= {n: results[n]["val"]["accuracy"] for n in names if n in results}
    result = {
        "run": str(run),
        "part": args.part,
        "experiment": args.experiment,
        "spec": spec,
        "face_input": st["face_source"],
        "n_clips": {s: int((st["splits"]["split"] == s).sum()) for s in ("train", "val", "test")},
        "paired_av_test": {
            "e2e": e2e_test,
            "late_fusion": fusion_result(run, args.part, args.fusion_group),
            "late_fusion_with_e2e": fusion_result(run, args.part, args.fusion_group_with_e2e),
        },
        "val": {"e2e": full["val"]},
        "ablations_val": ablations,
        "ablations_val_uar": {
            "full": full["val"]["uar"],
            "no_tta": full["no_tta"]["val"]["uar"],
            "one_seed": full["one_seed"]["val"]["uar"],
            **{n: results[n]["val"]["uar"] for n in names if n in results},
        },
        "ablation_diffs": {
            "no_tta": "the full ensemble, identity face view only",
            "one_seed": "the full ensemble's first member",
            **{n: VARIANTS[n] for n in names},
        },
        "timings": {
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "threads_per_ensemble": 1,
            "parallel_ensembles": jobs,
            "train_seconds_full_ensemble": full["train_seconds"],
            "train_seconds": {n: r["train_seconds"] for n, r in results.items()},
            "predict_seconds_per_clip": full["predict_seconds_per_clip"],
            "predict_seconds_per_clip_no_tta": full["no_tta"]["predict_seconds_per_clip"],
            "total_seconds": round(time.time() - t_start, 1),
        },
        "members": {
            n: {"best_epochs": r["best_epochs"], "holdout_accuracy": r["holdout_accuracy"]} for n, r in results.items()
        },
        "bench_vs_run_test_probs_max_abs_diff": reproduction,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    t = result["paired_av_test"]
    log(
        f"test: e2e {t['e2e']['accuracy']:.3f}; late fusion {t['late_fusion'] and t['late_fusion']['accuracy']}; "
        f"with e2e {t['late_fusion_with_e2e'] and t['late_fusion_with_e2e']['accuracy']} -> {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
