"""The robustness report: one table row per fitted model (target kind x noise rate) and
two figures, accuracy against the label-noise rate (one line per target kind) and
accuracy under each occluder (bars per target kind, noise-free models).

Used by the ``robustness_report`` rule (from the score JSONs of :mod:`.stage`) and by
``bench/ldl.py`` (from the same dicts, in memory).  Figures are written atomically through
:mod:`emoflow.evaluate.plots`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from emoflow.evaluate.plots import _pyplot, _save

TARGET_ORDER = ("hard", "votes", "uncertainty")
METRICS = (
    "accuracy",
    "uar",
    "accuracy_ferplus",
    "uar_ferplus",
    "kl_ferplus",
    "chebyshev_ferplus",
    "cosine_ferplus",
    "intersection_ferplus",
)


def row(score: dict) -> dict:
    """One flat table row of a score dict (:func:`emoflow.robustness.stage.score_model`)."""
    r = {
        "target": score["targets"],
        "noise": int(round(100 * float(score["label_noise"]))),
        "best_epoch": score["best_epoch"],
    }
    r.update({m: score["public_test"].get(m) for m in METRICS})
    r.update({f"occ_{k}": v["accuracy"] for k, v in score.get("occlusion", {}).items()})
    r["lambda_auroc"] = score.get("lambda_auroc")
    return r


def table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    order = {t: i for i, t in enumerate(TARGET_ORDER)}
    return df.sort_values(["target", "noise"], key=lambda s: s.map(order) if s.name == "target" else s).reset_index(
        drop=True
    )


def markdown(df: pd.DataFrame) -> str:
    cols = [
        "target",
        "noise",
        "accuracy",
        "uar",
        "accuracy_ferplus",
        "kl_ferplus",
        "lambda_auroc",
        *[c for c in df.columns if c.startswith("occ_")],
    ]
    cols = [c for c in cols if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in ("target", "noise"):
                cells.append(f"{v}{'%' if c == 'noise' else ''}")
            elif v is None or pd.isna(v):
                cells.append("–")
            elif c.startswith("kl"):
                cells.append(f"{v:.3f}")
            elif c == "lambda_auroc":
                cells.append(f"{v:.3f}")
            else:
                cells.append(f"{100 * v:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def noise_png(df: pd.DataFrame, path: str | os.PathLike, metric: str = "accuracy") -> None:
    """``metric`` on public_test against the noise rate, one line per target kind."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for target, g in df.groupby("target", sort=False):
        g = g.sort_values("noise")
        ax.plot(g["noise"], 100 * g[metric], marker="o", label=target)
    ax.set_xlabel("training labels flipped (%)")
    ax.set_ylabel(f"public_test {metric} (%)")
    ax.set_xticks(sorted(df["noise"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(title="targets")
    ax.set_title("Frame CNN under label noise")
    _save(fig, path, plt)


def occlusion_png(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Accuracy clean and under each occluder, bars per target kind (noise-free models)."""
    import numpy as np

    plt = _pyplot()
    clean = df[df["noise"] == 0]
    kinds = ["accuracy", *[c for c in df.columns if c.startswith("occ_")]]
    fig, ax = plt.subplots(figsize=(7, 4))
    targets = list(clean["target"])
    width = 0.8 / max(1, len(targets))
    x = np.arange(len(kinds))
    for i, (_, r) in enumerate(clean.iterrows()):
        ax.bar(
            x + (i - (len(targets) - 1) / 2) * width,
            [100 * float(r[k]) if pd.notna(r[k]) else 0 for k in kinds],
            width,
            label=r["target"],
        )
    ax.set_xticks(x)
    ax.set_xticklabels(["none" if k == "accuracy" else k.removeprefix("occ_") for k in kinds])
    ax.set_ylabel("public_test accuracy (%)")
    ax.set_xlabel("occluder")
    if len(clean):
        ax.legend(title="targets", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.text(0.5, 0.5, "no noise-free model in the grid", ha="center", transform=ax.transAxes)
    ax.set_title("Frame CNN under occlusion (no label noise)")
    _save(fig, path, plt)


def write(rows: list[dict], csv: str, md: str, noise_plot: str, occlusion_plot: str) -> pd.DataFrame:
    from emoflow.storage import atomic_path, write_text

    df = table(rows)
    with atomic_path(csv, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)
    write_text(md, markdown(df))
    noise_png(df, noise_plot)
    occlusion_png(df, occlusion_plot)
    return df


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(
        prog="emoflow robustness report", description="Robustness table and plots from score JSONs."
    )
    ap.add_argument("outdir")
    ap.add_argument("--scores", nargs="+", required=True)
    args = ap.parse_args(argv)
    rows = []
    for p in args.scores:
        try:
            rows.append(row(json.loads(Path(p).read_text())))
        except (OSError, ValueError, KeyError) as exc:
            print(f"{p}: not a robustness score file ({exc})", file=sys.stderr)
            return 1
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    write(
        rows,
        out / "robustness.csv",
        out / "robustness.md",
        out / "robustness_noise.png",
        out / "robustness_occlusion.png",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
