"""Evaluation partitions: which videos train, validate and test each fitted step.

Three schemes (config ``evaluation``):

``fixed`` (``scheme: fixed``)
    One partition, ``main``: the manifest's own ``split`` column (train / val / test).
``kfold`` (``scheme: kfold``)
    Speaker-independent k-fold cross-validation over the manifest's labelled videos
    (train, val and test rows pooled, and labelled rows without a split): speakers are
    dealt to ``k`` folds (sorted by size, largest first, each to the currently smallest
    fold; ties by a seeded shuffle, so the assignment is deterministic).  Partition
    ``f{i}`` tests on fold ``i``, validates on fold ``i+1 (mod k)`` and trains on the rest,
    so every choice of a partition (hyper-parameters, fusion weights) is made without its
    test fold, and every video is tested exactly once over the k partitions.  Videos
    without a speaker are their own group.
``protocol`` (``protocol: NAME``)
    A published, named and versioned split: ``protocols/NAME.yaml`` in this package (or a
    YAML file of the same form: ``protocol: path/to/file.yaml``), or ``loso``
    (leave-one-speaker-out, any corpus: partition ``f{i}`` tests the i-th speaker in
    sorted order and validates on the next).  Each fold of the file names its test
    speakers, and its validation speakers when the source gives them (``val: given``);
    otherwise (``val: next_fold``) a fold validates on the next fold's test speakers, as
    k-fold does, and trains on the rest.  Fold ``i`` of the file is partition ``f{i}``.
    When the manifest holds only some of the protocol's speakers, every fold is
    restricted to the speakers present (a fold with no test speaker left is dropped, and
    ``next_fold`` validation moves to the next fold that has speakers); ``describe``
    says what was restricted, and the report prints it.  A manifest speaker the protocol
    does not know is an error (speaker ids must be the corpus adapter's,
    ``emoflow.dataset.corpora``).

Every partition of every scheme is checked for speaker independence: a speaker in two of
train / val / test is an error naming the speaker and its videos per split.  In the
fixed scheme ``splits.allow_shared_speakers: true`` accepts it (with a warning); the
other schemes build their splits from speakers, so there it is always an error.

Every fitted step of a partition (trained extractors, encoders, classifiers, fusion)
reads its rows from the partition's table: ``splits/{part}.parquet`` (``tables.SPLITS``)
and the same rows as ``splits/{part}.csv`` (a manifest with the partition's ``split``
column, for the fit rules that read a manifest).

``python -m emoflow.dataset.splits MANIFEST PART OUT.parquet --config JSON`` writes one
partition (``--config``: ``{"evaluation": {...}, "splits": {...}}``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emoflow.errors import EmoflowError

SPLITS = ("train", "val", "test")
PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"
LOSO = "loso"


def scheme_of(evaluation: dict) -> str:
    """The scheme of an ``evaluation`` slice (naming a protocol implies ``protocol``)."""
    scheme = evaluation.get("scheme", "fixed")
    if evaluation.get("protocol") and scheme == "fixed":
        return "protocol"
    return scheme


# --- protocols --------------------------------------------------------------------


def protocol_names() -> list[str]:
    """The protocols shipped in the package, and ``loso``."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml")) + [LOSO]


def protocol_file(name: str | None) -> Path | None:
    """The YAML file of a protocol name (None for ``loso`` or no protocol)."""
    if not name or name == LOSO:
        return None
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return PROTOCOL_DIR / f"{name}.yaml"


def _ids(values, where: str) -> list[str]:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: a non-empty list of speaker ids is required")
    out = [str(v) for v in values]
    dup = sorted({v for v in out if out.count(v) > 1})
    if dup:
        raise ValueError(f"{where}: repeated speaker(s) {dup}")
    return out


@functools.lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> dict:
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmoflowError(
            f"evaluation.protocol: no protocol file {p} (shipped: {', '.join(protocol_names())})"
        ) from None
    except yaml.YAMLError as exc:
        raise EmoflowError(f"protocol {p}: not valid YAML: {exc}") from None
    try:
        return _check_protocol(data)
    except ValueError as exc:
        raise EmoflowError(f"protocol {p}: {exc}") from None


def _check_protocol(data) -> dict:
    """The protocol as a dict with speaker ids as strings; ValueError naming the problem."""
    if not isinstance(data, dict):
        raise ValueError("the top level must be a mapping")
    for key in ("name", "version", "corpus", "title", "source", "speakers", "folds"):
        if key not in data:
            raise ValueError(f"missing key {key!r}")
    if not isinstance(data["source"], dict) or not data["source"].get("citation"):
        raise ValueError("source.citation is required (where the split comes from)")
    val = data.get("val", "next_fold")
    if val not in ("next_fold", "given"):
        raise ValueError(f"val: {val!r} must be next_fold or given")
    speakers = _ids(data["speakers"], "speakers")
    known = set(speakers)
    folds = data["folds"]
    if not isinstance(folds, list) or len(folds) < 2:
        raise ValueError("folds: a list of at least 2 folds is required")
    out_folds = []
    for i, f in enumerate(folds):
        where = f"folds[{i}]"
        if not isinstance(f, dict):
            raise ValueError(f"{where}: a mapping with test (and val) speakers is required")
        test = _ids(f.get("test"), f"{where}.test")
        fold = {"name": str(f.get("name", f"fold {i}")), "test": test}
        if val == "given":
            fold["val"] = _ids(f.get("val"), f"{where}.val")
            both = sorted(set(test) & set(fold["val"]))
            if both:
                raise ValueError(f"{where}: speaker(s) {both} both in test and val")
        unknown = sorted((set(test) | set(fold.get("val", []))) - known)
        if unknown:
            raise ValueError(f"{where}: speaker(s) {unknown} are not in speakers")
        out_folds.append(fold)
    if val == "next_fold":
        seen: dict[str, int] = {}
        for i, f in enumerate(out_folds):
            for s in f["test"]:
                if s in seen:
                    raise ValueError(f"speaker {s} is in the test speakers of folds {seen[s]} and {i}")
                seen[s] = i
    published = data.get("published") or []
    if not isinstance(published, list):
        raise ValueError("published: a list of {system, metric, value} is required")
    for j, p in enumerate(published):
        if (
            not isinstance(p, dict)
            or not {"system", "metric", "value"} <= set(p)
            or p["metric"] not in ("accuracy", "uar", "macro_f1")
        ):
            raise ValueError(f"published[{j}]: needs system, metric (accuracy, uar or macro_f1) and value")
    return {**data, "val": val, "speakers": speakers, "folds": out_folds, "published": published}


def load_protocol(name: str) -> dict:
    """A named protocol (shipped, or a YAML file), checked: speakers unique, every fold's
    speakers known, test folds disjoint (``next_fold``), val apart from test (``given``)."""
    path = protocol_file(name)
    if path is None:
        raise EmoflowError(f"protocol {name!r} is built from the manifest's speakers, not a file")
    mtime = path.stat().st_mtime if path.is_file() else 0.0
    return _load(str(path.resolve()), mtime)


@dataclass
class Fold:
    """One partition of a protocol, restricted to the speakers present."""

    part: str
    name: str
    test: list[str]
    val: list[str]
    train: list[str]
    test_absent: list[str]
    val_absent: list[str]


def protocol_folds(evaluation: dict, speakers) -> tuple[dict, list[Fold], list[str]]:
    """(protocol, the folds that have test speakers present, notes on what was restricted)
    for the manifest's ``speakers``."""
    name = evaluation.get("protocol")
    if not name:
        raise EmoflowError("evaluation.protocol is required by the protocol scheme")
    present = sorted({str(s) for s in speakers})
    notes: list[str] = []
    if name == LOSO:
        anonymous = [s for s in present if s.startswith("video:")]
        if anonymous:
            raise EmoflowError(
                f"leave-one-speaker-out needs every video's speaker: {len(anonymous)} labelled videos have none "
                f"(e.g. {anonymous[0].removeprefix('video:')})"
            )
        if len(present) < 3:
            raise EmoflowError(f"leave-one-speaker-out needs at least 3 speakers, the manifest has {len(present)}")
        proto = {
            "name": LOSO,
            "version": 1,
            "title": "leave-one-speaker-out",
            "corpus": "any",
            "source": {"citation": "built from the manifest's speakers"},
            "val": "next_fold",
            "speakers": present,
            "folds": [{"name": s, "test": [s]} for s in present],
            "published": [],
        }
    else:
        proto = load_protocol(name)
        unknown = sorted(set(present) - set(proto["speakers"]))
        if unknown:
            shown = ", ".join(repr(s.removeprefix("video:")) for s in unknown[:8])
            more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
            anonymous = sum(s.startswith("video:") for s in unknown)
            raise EmoflowError(
                f"protocol {proto['name']}: {len(unknown)} speaker(s) of the manifest are not speakers of the protocol: "
                f"{shown}{more}"
                + (f" ({anonymous} of them videos without a speaker)" if anonymous else "")
                + f"; its speakers are {proto['speakers'][0]} ... {proto['speakers'][-1]} "
                f"(the {proto['corpus']} corpus adapter writes these ids: emoflow manifest {proto['corpus']} ROOT)"
            )
        absent = sorted(set(proto["speakers"]) - set(present))
        if absent:
            notes.append(
                f"the manifest has {len(present)} of the protocol's {len(proto['speakers'])} speakers "
                f"(absent: {', '.join(absent)}); every fold is restricted to the speakers present"
            )
    have = set(present)
    active = [i for i, f in enumerate(proto["folds"]) if have & set(f["test"])]
    for i, f in enumerate(proto["folds"]):
        if i not in active:
            notes.append(f"fold {i} ({f['name']}) is dropped: none of its test speakers is present")
    if len(active) < 2:
        raise EmoflowError(
            f"protocol {proto['name']}: {len(active)} fold(s) have test speakers in the manifest; at least 2 are needed"
        )
    folds = []
    for k, i in enumerate(active):
        f = proto["folds"][i]
        test = [s for s in f["test"] if s in have]
        if proto["val"] == "given":
            val_all = f["val"]
        else:
            val_all = proto["folds"][active[(k + 1) % len(active)]]["test"]
        val = [s for s in val_all if s in have]
        if not val:
            raise EmoflowError(
                f"protocol {proto['name']}: fold {i} ({f['name']}) has none of its validation speakers {val_all}"
            )
        train = sorted(have - set(test) - set(val))
        folds.append(
            Fold(
                f"f{i}",
                f["name"],
                test,
                val,
                train,
                [s for s in f["test"] if s not in have],
                [s for s in val_all if s not in have],
            )
        )
    return proto, folds, notes


def describe(evaluation: dict, manifest: pd.DataFrame | None = None) -> dict | None:
    """What the report says about the evaluation protocol (JSON-serialisable), or None for
    the fixed and kfold schemes."""
    if scheme_of(evaluation) != "protocol":
        return None
    speakers = evaluated(manifest, evaluation)["speaker"].unique() if manifest is not None else []
    proto, folds, notes = protocol_folds(evaluation, speakers)
    keep = ("name", "version", "title", "corpus", "source", "val", "published", "notes")
    return {
        **{k: proto[k] for k in keep if k in proto},
        "speakers_total": len(proto["speakers"]),
        "speakers_present": len(set(map(str, speakers))),
        "restrictions": notes,
        "folds": [asdict(f) for f in folds],
    }


# --- partitions ---------------------------------------------------------------------


def partitions(evaluation: dict, manifest: pd.DataFrame | None = None) -> list[str]:
    """Partition names of an ``evaluation`` config slice (a protocol's depend on the
    manifest's speakers: folds without any are dropped)."""
    scheme = scheme_of(evaluation)
    if scheme == "fixed":
        return ["main"]
    if scheme == "kfold":
        return [f"f{i}" for i in range(int(evaluation["folds"]))]
    if manifest is None:
        if evaluation.get("protocol") == LOSO:
            raise EmoflowError("leave-one-speaker-out partitions depend on the manifest's speakers")
        return [f"f{i}" for i in range(len(load_protocol(evaluation["protocol"])["folds"]))]
    _, folds, _ = protocol_folds(evaluation, evaluated(manifest, evaluation)["speaker"].unique())
    return [f.part for f in folds]


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


def evaluated(manifest: pd.DataFrame, evaluation: dict) -> pd.DataFrame:
    """The manifest's rows that take part in evaluation, ``speaker`` filled in (a video
    without one is its own group, ``video:<id>``): labelled train/val/test rows; under
    kfold and protocols also labelled rows without a split (a corpus adapter's manifest:
    the protocol makes the splits)."""
    splits = SPLITS if scheme_of(evaluation) == "fixed" else (*SPLITS, "")
    df = manifest[manifest["split"].isin(splits) & (manifest["label"] != "")].copy()
    if "speaker" not in df or (df["speaker"] == "").all():
        df["speaker"] = ""
    df["speaker"] = np.where(df["speaker"] == "", "video:" + df["video_id"], df["speaker"].astype(str))
    return df


def partition(manifest: pd.DataFrame, part: str, evaluation: dict, allow_shared_speakers: bool = False) -> pd.DataFrame:
    """Rows ``video_id, label, split, speaker`` of one partition (prediction-only rows are
    not part of evaluation).  Errors: a split without videos, a class evaluated but never
    trained, a speaker in two splits (allowed in the fixed scheme only with
    ``allow_shared_speakers``)."""
    scheme = scheme_of(evaluation)
    df = evaluated(manifest, evaluation)
    if part == "main":
        if scheme != "fixed":
            raise EmoflowError(f"partition 'main' belongs to the fixed scheme, not {scheme!r}")
        out = df
    elif not part.startswith("f") or not part[1:].isdigit() or scheme == "fixed":
        raise EmoflowError(f"unknown partition {part!r} for evaluation scheme {scheme!r}")
    elif scheme == "kfold":
        k, i = int(evaluation["folds"]), int(part[1:])
        if i >= k:
            raise EmoflowError(f"partition {part!r}: only {k} folds")
        fold = df["speaker"].map(speaker_folds(df["speaker"], k, int(evaluation.get("seed", 0))))
        out = df.assign(split=np.select([fold == i, fold == (i + 1) % k], ["test", "val"], "train"))
    else:
        proto, folds, _ = protocol_folds(evaluation, df["speaker"].unique())
        fold = next((f for f in folds if f.part == part), None)
        if fold is None:
            raise EmoflowError(
                f"partition {part!r}: protocol {proto['name']} has partitions {[f.part for f in folds]} here"
            )
        which = {**{s: "train" for s in fold.train}, **{s: "val" for s in fold.val}, **{s: "test" for s in fold.test}}
        out = df.assign(split=df["speaker"].map(which))
    missing = [s for s in SPLITS if not (out["split"] == s).any()]
    if missing:
        hint = ""
        labelled = manifest[manifest["label"] != ""]
        if scheme == "fixed" and len(labelled) and (labelled["split"] == "").all():
            hint = (
                "; the manifest's labelled rows have no split (a corpus adapter's manifest): pick a protocol "
                "(evaluation.protocol) or scheme kfold"
            )
        raise EmoflowError(
            f"partition {part!r} has no {'/'.join(missing)} videos (labelled rows per split: "
            f"{_counts(out['split'])}); every partition needs train, val and test videos{hint}"
        )
    check_disjoint(out, part, allow_shared=allow_shared_speakers and scheme == "fixed")
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


def shared_speakers(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Speakers with videos in more than one split -> videos per split."""
    counts = df.groupby(["speaker", "split"]).size().unstack(fill_value=0)
    shared = counts[(counts > 0).sum(axis=1) > 1]
    return {str(s): {k: int(v) for k, v in row.items() if v} for s, row in shared.iterrows()}


def check_disjoint(df: pd.DataFrame, part: str | None = None, allow_shared: bool = False, log=None) -> None:
    """Speaker independence: no speaker in two of train / val / test (videos without a
    speaker are their own).  An error naming each shared speaker and its videos per split,
    or, with ``allow_shared``, a warning on ``log``."""
    shared = shared_speakers(df)
    if not shared:
        return
    listed = "; ".join(
        f"{s!r} ({', '.join(f'{k} {v}' for k, v in sorted(c.items(), key=lambda kv: SPLITS.index(kv[0])))})"
        for s, c in list(shared.items())[:10]
    )
    more = f"; and {len(shared) - 10} more" if len(shared) > 10 else ""
    where = f"partition {part!r}: " if part else ""
    text = f"{where}{len(shared)} speaker(s) in more than one split (videos per split): {listed}{more}"
    if allow_shared:
        if log is not None:
            log.warning("%s; allowed by splits.allow_shared_speakers: this evaluation is not speaker-independent", text)
        return
    raise EmoflowError(
        f"{text}; a speaker-independent evaluation needs each speaker in one split (move their videos, or, for "
        "the fixed scheme only, set splits.allow_shared_speakers: true to accept a speaker-dependent evaluation)"
    )


def main(argv=None) -> int:
    from emoflow import logs
    from emoflow.dataset.manifest import validate_manifest
    from emoflow.storage import write_table, write_text
    from emoflow.tables import SPLITS as SCHEMA

    ap = argparse.ArgumentParser(
        prog="emoflow splits", description="Write one evaluation partition (train/val/test rows)."
    )
    ap.add_argument("manifest")
    ap.add_argument("part", help="main (fixed scheme) or f0..f{k-1} (kfold, protocol)")
    ap.add_argument("out", help="splits/{part}.parquet; the .csv beside it is written too")
    ap.add_argument(
        "--config", required=True, help='JSON: {"evaluation": {...}, "splits": {...}} (or the bare evaluation slice)'
    )
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.splits")
    cfg = json.loads(args.config)
    evaluation = cfg.get("evaluation", cfg)  # the rule passes {"evaluation": {...}, "splits": {...}}
    allow = bool((cfg.get("splits") or {}).get("allow_shared_speakers", False))
    try:
        manifest = validate_manifest(args.manifest, check_files=False)
        df = partition(manifest, args.part, evaluation, allow_shared_speakers=allow)
        if allow:
            check_disjoint(df, args.part, allow_shared=True, log=log)
        info = describe(evaluation, manifest)
    except EmoflowError as exc:
        print(f"error: {args.manifest}: {exc}", file=sys.stderr)
        return 2
    import pyarrow as pa

    write_table(pa.Table.from_pandas(df, preserve_index=False), args.out, SCHEMA)
    write_text(args.out.removesuffix(".parquet") + ".csv", df.to_csv(index=False))
    counts = df.groupby("split").agg(videos=("video_id", "size"), speakers=("speaker", "nunique"))
    log.info("partition %s:\n%s", args.part, counts.to_string())
    if info:
        fold = next(f for f in info["folds"] if f["part"] == args.part)
        log.info(
            "protocol %s v%s, fold %s: test %s, val %s",
            info["name"],
            info["version"],
            fold["name"],
            fold["test"],
            fold["val"],
        )
        for note in info["restrictions"]:
            log.info("restricted: %s", note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
