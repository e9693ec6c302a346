"""Evaluation partitions: which videos train, validate and test each fitted step.

Two schemes (config ``evaluation.scheme``):

``fixed``
    One partition, ``main``: the manifest's own ``split`` column (train / val / test).
``kfold``
    Speaker-independent k-fold cross-validation over the manifest's labelled videos
    (train, val and test rows pooled): speakers are dealt to ``k`` folds (sorted by
    size, largest first, each to the currently smallest fold; ties by a seeded shuffle,
    so the assignment is deterministic).  Partition ``f{i}`` tests on fold ``i``,
    validates on fold ``i+1 (mod k)`` and trains on the rest, so every choice of a
    partition (hyper-parameters, fusion weights) is made without its test fold, and
    every video is tested exactly once over the k partitions.  Videos without a speaker
    are their own group.

Every fitted step of a partition (trained extractors, encoders, classifiers, fusion)
reads its rows from the partition's table: ``splits/{part}.parquet`` (``tables.SPLITS``)
and the same rows as ``splits/{part}.csv`` (a manifest with the partition's ``split``
column, for the fit rules that read a manifest).

``python -m emoflow.dataset.splits MANIFEST PART OUT.parquet --config JSON`` writes one
partition (``--config``: ``{"evaluation": {...}}``, the config's evaluation slice).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from emoflow.errors import EmoflowError

SPLITS = ("train", "val", "test")


def partitions(evaluation: dict) -> list[str]:
    """Partition names of an ``evaluation`` config slice."""
    if evaluation.get("scheme", "fixed") == "fixed":
        return ["main"]
    return [f"f{i}" for i in range(int(evaluation["folds"]))]


def speaker_folds(groups: pd.Series, k: int, seed: int = 0) -> dict[str, int]:
    """Group (speaker) -> fold index: balanced by video count, deterministic."""
    sizes = groups.value_counts()
    if len(sizes) < k:
        raise EmoflowError(f"{k}-fold cross-validation needs at least {k} speakers, the manifest has {len(sizes)}")
    rng = np.random.default_rng(seed)
    order = sorted(sizes.index, key=lambda g: (-sizes[g], rng.random()))  # ties: seeded
    load = [0] * k
    fold_of = {}
    for g in order:
        i = int(np.argmin(load))
        fold_of[g] = i
        load[i] += int(sizes[g])
    return fold_of


def partition(manifest: pd.DataFrame, part: str, evaluation: dict) -> pd.DataFrame:
    """Rows ``video_id, label, split, speaker`` of one partition (labelled rows of the
    manifest's train/val/test only; prediction-only rows are not part of evaluation)."""
    df = manifest[manifest["split"].isin(SPLITS) & (manifest["label"] != "")].copy()
    if "speaker" not in df or (df["speaker"] == "").all():
        df["speaker"] = ""
    df["speaker"] = np.where(df["speaker"] == "", "video:" + df["video_id"], df["speaker"])
    if part == "main":
        if evaluation.get("scheme", "fixed") != "fixed":
            raise EmoflowError(f"partition 'main' belongs to the fixed scheme, not {evaluation['scheme']!r}")
        out = df
    else:
        if evaluation.get("scheme") != "kfold" or not part.startswith("f") or not part[1:].isdigit():
            raise EmoflowError(f"unknown partition {part!r} for evaluation scheme {evaluation.get('scheme')!r}")
        k, i = int(evaluation["folds"]), int(part[1:])
        if i >= k:
            raise EmoflowError(f"partition {part!r}: only {k} folds")
        fold = df["speaker"].map(speaker_folds(df["speaker"], k, int(evaluation.get("seed", 0))))
        out = df.assign(split=np.select([fold == i, fold == (i + 1) % k], ["test", "val"], "train"))
    missing = [s for s in SPLITS if not (out["split"] == s).any()]
    if missing:
        raise EmoflowError(
            f"partition {part!r} has no {'/'.join(missing)} videos (labelled rows per split: "
            f"{_counts(out['split'])}); every partition needs train, val and test videos"
        )
    check_classes(out, part)
    return out[["video_id", "label", "split", "speaker"]].sort_values("video_id").reset_index(drop=True)


def _counts(values: pd.Series) -> str:
    counts = values.value_counts()
    return ", ".join(f"{k} {int(counts.get(k, 0))}" for k in sorted(set(counts.index) | set(SPLITS)))


def check_classes(df: pd.DataFrame, part: str) -> None:
    """Every class that val or test holds has training videos: a class absent from the
    training split can never be predicted, yet it would be scored (a class absent from
    every split is fine: the label space may be wider than the corpus)."""
    trained = set(df.loc[df["split"] == "train", "label"])
    absent = sorted(set(df.loc[df["split"] != "train", "label"]) - trained)
    if absent:
        where = "; ".join(f"{c!r}: {_counts(df.loc[df['label'] == c, 'split'])}" for c in absent)
        raise EmoflowError(
            f"partition {part!r}: class(es) {', '.join(map(repr, absent))} have no training videos but are "
            f"evaluated ({where}); move some of their videos to train (or relabel them)"
        )


def check_disjoint(df: pd.DataFrame) -> None:
    """Speaker independence: no speaker in two splits (speaker-less videos are their own)."""
    per = df.groupby("speaker")["split"].nunique()
    shared = per[per > 1]
    if len(shared):
        raise EmoflowError(f"speakers in more than one split: {', '.join(map(str, shared.index[:5]))}")


def main(argv=None) -> int:
    from emoflow import logs
    from emoflow.dataset.manifest import validate_manifest
    from emoflow.storage import write_table, write_text
    from emoflow.tables import SPLITS as SCHEMA

    ap = argparse.ArgumentParser(prog="emoflow splits", description="Write one evaluation partition (train/val/test rows).")
    ap.add_argument("manifest")
    ap.add_argument("part", help="main (fixed scheme) or f0..f{k-1} (kfold)")
    ap.add_argument("out", help="splits/{part}.parquet; the .csv beside it is written too")
    ap.add_argument("--config", required=True, help='JSON: {"evaluation": {...}} (or the bare evaluation slice)')
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.splits")
    evaluation = json.loads(args.config)
    evaluation = evaluation.get("evaluation", evaluation)  # the rule passes {"evaluation": {...}}
    try:
        df = partition(validate_manifest(args.manifest, check_files=False), args.part, evaluation)
        if evaluation.get("scheme", "fixed") == "kfold":
            check_disjoint(df)
    except EmoflowError as exc:
        print(f"error: {args.manifest}: {exc}", file=sys.stderr)
        return 2
    import pyarrow as pa

    write_table(pa.Table.from_pandas(df, preserve_index=False), args.out, SCHEMA)
    write_text(args.out.removesuffix(".parquet") + ".csv", df.to_csv(index=False))
    counts = df.groupby("split").agg(videos=("video_id", "size"), speakers=("speaker", "nunique"))
    log.info("partition %s:\n%s", args.part, counts.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
