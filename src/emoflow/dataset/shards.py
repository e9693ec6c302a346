"""Deterministic, stable assignment of videos to shards.

A video's shard is ``blake2b(video_id) mod n_shards``: it depends on nothing but its
own id, so adding or removing one video changes exactly one shard and every other
shard keeps its content (and its cached results).  Per-video stages run one job per
non-empty shard and load their models once per shard.

``python -m emoflow.dataset.shards MANIFEST SHARD OUT --config JSON`` writes the shard
sheet of one shard (``tables.SHARD_SHEET``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import pandas as pd

from emoflow.dataset.sheet import read_sheet, write_sheet  # noqa: F401 - re-exported
from emoflow.errors import EmoflowError


def shard_index(video_id: str, n_shards: int) -> int:
    digest = hashlib.blake2b(video_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def shard_name(index: int, n_shards: int) -> str:
    width = max(3, len(str(n_shards - 1)))
    return f"s{index:0{width}d}"


def assign(video_ids, n_shards: int) -> list[str]:
    """Shard name of each video id."""
    return [shard_name(shard_index(v, n_shards), n_shards) for v in video_ids]


def plan(df: pd.DataFrame, n_shards: int) -> dict[str, pd.DataFrame]:
    """Non-empty shards (sorted by name) -> their rows (sorted by video_id)."""
    names = assign(df["video_id"], n_shards)
    out = {}
    for name, rows in df.assign(_shard=names).groupby("_shard", sort=True):
        out[name] = rows.drop(columns="_shard").sort_values("video_id").reset_index(drop=True)
    return out


def sheet_digest(rows: pd.DataFrame) -> str:
    """Digest of what per-shard stages read from the manifest (ids and paths only:
    labels and splits do not change extracted media)."""
    h = hashlib.sha1()
    for vid, path in zip(rows["video_id"], rows["path"]):
        h.update(f"{vid}\t{path}\n".encode("utf-8"))
    return h.hexdigest()


def main(argv=None) -> int:
    from emoflow import logs
    from emoflow.dataset.manifest import validate_manifest

    ap = argparse.ArgumentParser(prog="emoflow shard", description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", help="validated manifest (CSV/TSV)")
    ap.add_argument("shard", help="shard name, e.g. s003")
    ap.add_argument("out", help="output shard sheet (Parquet)")
    ap.add_argument("--config", required=True, help='JSON: {"sharding": {...}}')
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.shards")
    cfg = json.loads(args.config)
    n = cfg["sharding"]["n_shards"]
    try:
        df = validate_manifest(args.manifest, classes=None, require_labels=False, check_files=True)
    except EmoflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    shards = plan(df, n)
    rows = shards.get(args.shard, df.iloc[0:0])
    write_sheet(rows, args.out)
    log.info("shard %s: %d of %d videos (n_shards=%d)", args.shard, len(rows), len(df), n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
