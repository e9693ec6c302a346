"""Encode one frame-level feature into video vectors for one evaluation partition.

The encoder (:mod:`emoflow.encode`, spec from config ``encodings.<name>``) is fitted on
the frames of the partition's **training** videos only (PCA, GMM, k-means), then applied
to every video that has the feature.  Videos the extractor marked missing get a row of
zeros with ``missing`` set (``tables.features`` at level ``video``).

``python -m emoflow.encode.stage SPLITS OUT_TABLE OUT_MODEL --inputs SHARD_TABLES...
--config JSON`` (``--config``: the encoding spec).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pyarrow as pa

from emoflow import encode, logs
from emoflow.errors import EmoflowError
from emoflow.features.read import read
from emoflow.storage import read_table, write_table
from emoflow.tables import features as features_schema


def run(splits_path: str, inputs: list[str], spec: dict, log):
    """(encoded table, fitted encoder)."""
    fs = read(inputs)
    if fs.level == "video":
        raise EmoflowError(
            f"{inputs[0]}: a video-level feature needs no encoding (drop 'encoding' from the experiment)"
        )
    sp = read_table(splits_path, columns=["video_id", "split"]).to_pandas()
    train = [v for v in sp.loc[sp["split"] == "train", "video_id"] if v in fs.sequences]
    if not train:
        raise EmoflowError(f"{splits_path}: no training video has this feature")
    enc = encode.make(spec)
    t0 = time.time()
    enc.fit([fs.sequences[v] for v in train])
    log.info(
        "fitted %s on %d training videos (%d frames) in %.1f s",
        spec,
        len(train),
        sum(len(fs.sequences[v]) for v in train),
        time.time() - t0,
    )
    dim = enc.dim(fs.dim)
    ids = sorted(fs.video_ids)
    X = np.zeros((len(ids), dim), np.float32)
    missing = np.ones(len(ids), bool)
    for i, v in enumerate(logs.progress(ids, "encode")):
        if v in fs.sequences:
            X[i], missing[i] = enc.transform(fs.sequences[v]), False
    table = pa.table(
        {
            "video_id": ids,
            "missing": missing,
            "x": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), dim),
        }
    )
    return table.cast(features_schema(dim, "video")), enc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow encode", description=__doc__.split("\n\n")[0])
    ap.add_argument("splits", help="splits/{part}.parquet (its train rows fit the encoder)")
    ap.add_argument("out", help="encoded/{part}/{feature}.{encoding}.parquet")
    ap.add_argument("model", help="the fitted encoder (.npz)")
    ap.add_argument("--inputs", nargs="+", required=True, help="the feature's shard tables")
    ap.add_argument("--config", required=True, help="JSON: the encoding spec")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.encode")
    try:
        table, enc = run(args.splits, args.inputs, json.loads(args.config), log)
    except (EmoflowError, ValueError) as exc:
        print(f"error: {args.out}: {exc}", file=sys.stderr)
        return 2
    enc.save(args.model)
    write_table(table, args.out)
    log.info(
        "%d videos (%d missing), dim %d",
        table.num_rows,
        sum(table["missing"].to_pylist()),
        table.schema.field("x").type.list_size,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
