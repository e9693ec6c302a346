"""The run's summary: one table of every experiment and fusion system, and plots.

Per system: validation and test accuracy, UAR and macro-F1 (plus the experiment's
cross-validation score on train, and for sequence models the held-out-speaker
accuracy that picked the epoch).  Under k-fold the partitions' test predictions are
pooled (every video is tested once) and scored together; validation scores are the
mean over partitions.  Systems are flagged with the features they use, so systems
built on an external pretrained model (e.g. ``fer``) can be read apart.

Writes ``summary.csv``, ``summary.md``, ``scores.png`` (experiments by validation
score, test marked), ``fusion_weights.png`` (the ``all`` group's weights, or the
stacker's mean |coefficient| per experiment) and one confusion matrix per fusion group
(``confusion_<group>.png``, pooled test).

Per fold (``folds.csv``): every system's test accuracy, UAR and macro-F1 in each
partition, and their mean and standard deviation over the partitions (sample standard
deviation, n-1): the figures a cross-validation protocol is quoted with.  With an
evaluation protocol (config ``protocol``: ``emoflow.dataset.splits.describe``),
``summary.md`` also names the protocol, its source, how validation speakers were chosen,
every restriction to the speakers present, and the published figures for that protocol
beside this run's.

``python -m emoflow.evaluate.report OUTDIR --experiments REPORT.json... --predictions P...
--fusion CHOICE.json... --fused F... --config JSON``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from emoflow import logs
from emoflow.evaluate import plots
from emoflow.evaluate.metrics import confusion, scores
from emoflow.storage import read_table, write_text

SPLITS = ("val", "test")


def _part_of(path: str) -> str:
    return Path(path).parent.name  # .../{part}/{name}.ext


def pooled_scores(pred_paths: list[str], classes: list[str]) -> dict[str, dict]:
    """System name -> {"val": mean of the partitions' scores, "test": scores of the pooled
    test predictions, "confusion": pooled test confusion matrix}."""
    by_name: dict[str, list[pd.DataFrame]] = defaultdict(list)
    for p in pred_paths:
        by_name[Path(p).stem].append(read_table(p).to_pandas())
    cols = [f"p_{c}" for c in classes]
    out = {}
    for name, frames in by_name.items():
        res: dict = {}
        val = [
            scores(
                np.array([classes.index(v) for v in f.loc[f["split"] == "val", "label"]]),
                f.loc[f["split"] == "val", cols].to_numpy().argmax(1),
                len(classes),
            )
            for f in frames
        ]
        res["val"] = {k: float(np.mean([v[k] for v in val])) for k in ("accuracy", "uar", "macro_f1")}
        test = pd.concat([f[f["split"] == "test"] for f in frames])
        if len(test):
            yt = np.array([classes.index(v) for v in test["label"]])
            pt = test[cols].to_numpy().argmax(1)
            res["test"] = scores(yt, pt, len(classes)) | {"missing": int(test["missing"].sum())}
            res["confusion"] = confusion(yt, pt, len(classes))
        out[name] = res
    return out


METRICS = ("accuracy", "uar", "macro_f1")


def fold_scores(
    pred_paths: list[str], classes: list[str], fold_names: dict[str, str] | None = None, prefix: str = ""
) -> pd.DataFrame:
    """One row per system (``prefix`` + file stem) and partition: test scores of that
    partition's predictions, then a ``mean`` and a ``std`` row per system (over its
    partitions)."""
    cols = [f"p_{c}" for c in classes]
    rows = []
    for p in pred_paths:
        f = read_table(p).to_pandas()
        test = f[f["split"] == "test"]
        if not len(test):
            continue
        yt = np.array([classes.index(v) for v in test["label"]])
        s = scores(yt, test[cols].to_numpy().argmax(1), len(classes))
        part = _part_of(p)
        rows.append(
            {
                "system": prefix + Path(p).stem,
                "part": part,
                "fold": (fold_names or {}).get(part, part),
                "n_test": len(test),
                **{m: float(s[m]) for m in METRICS},
            }
        )
    df = pd.DataFrame(rows, columns=["system", "part", "fold", "n_test", *METRICS])
    if df.empty:
        return df
    order = {p: i for i, p in enumerate(sorted(df["part"].unique(), key=lambda x: (len(x), x)))}
    df = df.sort_values(["system", "part"], key=lambda c: c.map(order) if c.name == "part" else c).reset_index(
        drop=True
    )
    out = []
    for name, g in df.groupby("system", sort=True):
        out.append(g)
        stats = [
            {
                "system": name,
                "part": k,
                "fold": k,
                "n_test": int(g["n_test"].sum()) if k == "mean" else np.nan,
                **{m: float(fn(g[m])) for m in METRICS},
            }
            for k, fn in (("mean", np.mean), ("std", lambda v: np.std(v, ddof=1) if len(v) > 1 else 0.0))
        ]
        out.append(pd.DataFrame(stats))
    out = pd.concat(out, ignore_index=True)
    out["n_test"] = out["n_test"].astype("Int64")  # integers (empty in the std rows)
    return out


def _pct(v) -> str:
    return "" if pd.isna(v) else f"{100 * v:.1f}"


def folds_markdown(folds: pd.DataFrame, protocol: dict | None) -> str:
    """The per-fold section of summary.md (and the protocol's, when one is named)."""
    if folds.empty or folds["part"].nunique() <= 3:  # one partition (+ mean, std): nothing per fold
        return ""
    per = folds[~folds["part"].isin(["mean", "std"])]
    parts = sorted(per["part"].unique(), key=lambda x: (len(x), x))
    names = dict(zip(per["part"], per["fold"]))
    lines = ["", "## Per fold (test)", ""]
    if protocol:
        src = protocol.get("source", {})
        lines += [f"Protocol **{protocol['name']}** (version {protocol['version']}): {protocol['title']}.", ""]
        lines.append(f"Source: {' '.join(str(src.get('citation', '')).split())}")
        if src.get("repository"):
            lines.append(f"({src['repository']}" + (f" at {src['commit']}" if src.get("commit") else "") + ").")
        val = (
            "each fold's validation speakers as the source gives them"
            if protocol.get("val") == "given"
            else "each fold validates on the next fold's test speakers (the source gives test folds only)"
        )
        lines += ["", f"Validation: {val}; training: the other speakers.", ""]
        for note in protocol.get("restrictions", []):
            lines.append(f"- Restricted: {note}.")
        for f in protocol.get("folds", []):
            absent = f" (absent: {', '.join(f['test_absent'])})" if f["test_absent"] else ""
            lines.append(
                f"- {f['part']} = {f['name']}: test {', '.join(f['test'])}{absent}; val {', '.join(f['val'])}; "
                f"{len(f['train'])} training speakers"
            )
        lines.append("")
    lines.append("Scores in %: mean ± standard deviation over the partitions (n-1), then each partition's test UAR.")
    lines.append("")
    head = [
        "system",
        "accuracy",
        "UAR",
        "macro-F1",
        *[f"UAR {p} ({names[p]})" if names[p] != p else f"UAR {p}" for p in parts],
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    stats = folds.set_index(["system", "part"])
    for name in sorted(per["system"].unique(), key=lambda n: (n.startswith("fusion:"), n)):  # experiments first
        cells = [f"{_pct(stats.loc[(name, 'mean'), m])} ± {_pct(stats.loc[(name, 'std'), m])}" for m in METRICS]
        cells += [_pct(stats.loc[(name, p), "uar"]) if (name, p) in stats.index else "" for p in parts]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    if protocol and protocol.get("published"):
        lines += ["", "Published under this protocol (for comparison; not computed here):", ""]
        for p in protocol["published"]:
            note = f" — {' '.join(str(p['note']).split())}" if p.get("note") else ""
            data = f" ({p['data']})" if p.get("data") else ""
            lines.append(f"- {p['system']}{data}: {p['metric']} {p['value']}%{note}")
    tested = per.groupby("part")["n_test"].first()
    lines += ["", f"Test videos per partition: {', '.join(f'{p} {int(tested[p])}' for p in parts)}."]
    return "\n".join(lines) + "\n"


def summary(
    exp_reports: list[str], pred_paths: list[str], fusion_choices: list[str], fused_paths: list[str], classes: list[str]
) -> tuple[pd.DataFrame, dict, dict]:
    """(summary table, pooled scores of experiments, pooled scores of fusion groups)."""
    reports = defaultdict(list)
    for p in exp_reports:
        reports[Path(p).stem].append(json.loads(Path(p).read_text()))
    choices = defaultdict(list)
    for p in fusion_choices:
        choices[Path(p).stem].append(json.loads(Path(p).read_text()))
    exp_scores = pooled_scores(pred_paths, classes)
    fus_scores = pooled_scores(fused_paths, classes)
    rows = []
    for name, reps in sorted(reports.items()):
        r, s = reps[0], exp_scores[name]
        fit = [x["fit"] for x in reps]
        cls = r["classifier"]
        rows.append(
            {
                "system": name,
                "kind": "experiment",
                "modality": r.get("modality"),
                "features": r.get("feature"),
                "encoding": r.get("encoding") or "",
                "normalize": (r.get("normalize") or {}).get("by", "none"),
                "classifier": cls["type"] if cls["type"] != "sequence" else cls["head"],
                "train_cv": float(np.mean([f.get("cv_score", f.get("holdout_accuracy", np.nan)) for f in fit])),
                **{f"{sp}_{m}": s.get(sp, {}).get(m, np.nan) for sp in SPLITS for m in ("accuracy", "uar", "macro_f1")},
                "test_missing": s.get("test", {}).get("missing", 0),
            }
        )
    for name, chs in sorted(choices.items()):
        s = fus_scores[name]
        used = sorted({reports[m][0].get("feature") for ch in chs for m in ch["models"] if m in reports})
        mods = sorted({reports[m][0].get("modality") for ch in chs for m in ch["models"] if m in reports})
        cv = [next(t for t in ch["table"] if t["method"] == ch["method"])[f"cv_{ch['metric']}"] for ch in chs]
        rows.append(
            {
                "system": f"fusion:{name}",
                "kind": "fusion",
                "modality": "+".join(mods),
                "features": " ".join(used),
                "encoding": "",
                "normalize": "",
                "classifier": "/".join(sorted({ch["method"] for ch in chs})),
                "train_cv": np.nan,
                "val_cv": float(np.mean(cv)),
                **{f"{sp}_{m}": s.get(sp, {}).get(m, np.nan) for sp in SPLITS for m in ("accuracy", "uar", "macro_f1")},
                "test_missing": 0,
            }
        )
    df = pd.DataFrame(rows)
    return df, exp_scores, fus_scores


def _markdown(df: pd.DataFrame, metric: str) -> str:
    show = df.copy()
    for c in show.columns:
        if show[c].dtype.kind == "f":
            show[c] = show[c].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}")
    head = "| " + " | ".join(show.columns) + " |\n|" + "---|" * len(show.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in show.itertuples(index=False))
    return f"# emoflow summary\n\nScores in %. Choices by validation {metric}; test scored once.\n\n" + head + body


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow report", description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", help="report folder (summary.csv, summary.md, plots)")
    ap.add_argument("--experiments", nargs="+", required=True, help="classify reports (models/classify/{part}/*.json)")
    ap.add_argument("--predictions", nargs="+", required=True)
    ap.add_argument("--fusion", nargs="*", default=[], help="fusion choices (fusion/{part}/{group}.json)")
    ap.add_argument("--fused", nargs="*", default=[])
    ap.add_argument("--config", required=True, help="JSON: classes, evaluation")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.report")
    cfg = json.loads(args.config)
    classes, metric = cfg["classes"], cfg.get("evaluation", {}).get("metric", "accuracy")
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        df, exp_scores, fus_scores = summary(args.experiments, args.predictions, args.fusion, args.fused, classes)
    except (ValueError, KeyError) as exc:
        print(f"error: report: {exc}", file=sys.stderr)
        return 2
    protocol = cfg.get("protocol")
    names = {f["part"]: f["name"] for f in (protocol or {}).get("folds", [])}
    folds = pd.concat(
        [fold_scores(args.predictions, classes, names), fold_scores(args.fused, classes, names, "fusion:")],
        ignore_index=True,
    )
    write_text(out / "summary.csv", df.to_csv(index=False, float_format="%.4f"))
    write_text(out / "folds.csv", folds.to_csv(index=False, float_format="%.4f"))
    write_text(out / "summary.md", _markdown(df, metric) + folds_markdown(folds, protocol))
    exp = df[df["kind"] == "experiment"]
    plots.scores_png(
        [
            {
                "name": r.system,
                "modality": r.modality,
                "val_accuracy": r.val_accuracy,
                "test_accuracy": None if pd.isna(r.test_accuracy) else r.test_accuracy,
            }
            for r in exp.itertuples()
        ],
        out / "scores.png",
        title="Experiments: validation (bars) and test (diamonds) accuracy",
    )
    for name, s in fus_scores.items():
        if "confusion" in s:
            plots.confusion_png(
                s["confusion"],
                classes,
                out / f"confusion_{name}.png",
                title=f"fusion {name}: test (accuracy {s['test']['accuracy']:.3f}, UAR {s['test']['uar']:.3f})",
            )
    chosen = [json.loads(Path(p).read_text()) for p in args.fusion if Path(p).stem == "all"] or [
        json.loads(Path(p).read_text()) for p in args.fusion[:1]
    ]
    if chosen:
        ch = chosen[0]
        m = ch["methods"][ch["method"]]
        if "weights" in m:
            names, w = list(m["weights"]), list(m["weights"].values())
            how = {
                "weighted": "weighted average",
                "product": "product rule (log-linear weights)",
                "caruana": "Caruana selection (share of picks)",
            }.get(ch["method"], ch["method"])
            title = f"fusion {ch['group']['name']} ({_part_of(args.fusion[0])}): {how}"
        else:  # stacking: the meta-classifier's mean |coefficient| per experiment, normalised
            coef = np.abs(np.asarray(m["model"]["coef"]))
            names = ch["models"]
            per = coef.reshape(coef.shape[0], len(names), -1).mean(axis=(0, 2))
            w, title = per / per.sum(), f"fusion {ch['group']['name']}: stacking (relative |coef|)"
        plots.weights_png(names, w, out / "fusion_weights.png", title=title)
    best = df.sort_values("val_accuracy", ascending=False)
    log.info(
        "best by validation:\n%s",
        best[["system", "val_accuracy", "test_accuracy", "test_uar"]].head(10).to_string(index=False),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
