"""A run's faces in the expression space: every aligned crop the run stored, embedded once
(rule ``similarity_index`` -> ``similarity/index.parquet`` + ``index.json``).

``python -m emoflow.similarity.index INDEX_PARQUET MODEL_JSON CROPS... [--stages JSON |
--configfile CONFIG ...] [--threads N]``

``index.parquet`` holds one row per crop: ``video_id``, ``frame``, ``time``, ``crops`` (the
crops table it came from, as ``index.json`` names it) and ``x`` (the embedding).
``index.json`` names the model (the fit's JSON) and the crops tables, relative to the run's
results folder (the folder holding ``similarity/``) when they lie inside it, and holds the
probe / frames / faces settings the run used, so a query goes through the same stages
(:mod:`emoflow.similarity.search`).  Crops are read, framed and embedded exactly as the
``expression_embedding`` extractor does (:mod:`emoflow.similarity.model`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from emoflow.errors import EmoflowError
from emoflow.storage import read_table, write_table, write_text

CHUNK = 1024  # crops decoded and embedded at a time


def schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("frame", pa.int32(), nullable=False),
            pa.field("time", pa.float64(), nullable=False),
            pa.field("crops", pa.string(), nullable=False),
            pa.field("x", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def decode_colour(jpegs) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in jpegs])


def grey_of(blobs) -> np.ndarray:
    grey = np.stack([np.frombuffer(b, np.uint8) for b in blobs])
    g = int(round(np.sqrt(grey.shape[1])))
    return grey.reshape(-1, g, g)


class Embedding:
    """A fitted expression embedding, applied to aligned crops as the extractor does."""

    def __init__(self, model_json: str | Path, threads: int = 1, device: str = "auto"):
        from emoflow.nets.common import pick_device, setup_torch
        from emoflow.similarity import model

        setup_torch(threads, seed=None)
        self.device = pick_device(device)
        self.net, self.meta = model.load(model_json, self.device)
        self.framing = self.meta.get("framing")
        self.dim = int(self.meta["head"]["dim"])

    def crops(self, colour: np.ndarray | None, grey: np.ndarray) -> np.ndarray:
        """Aligned crops (colour (n, c, c, 3), grey (n, g, g)) -> (n, dim) embeddings."""
        from emoflow.similarity import model

        tr = self.meta["trunk"]
        images = model.face_images(colour, grey, self.framing, tr["size"])
        return self.images(images)

    def images(self, images: np.ndarray) -> np.ndarray:
        """Grey images already framed like the trunk's training faces -> embeddings."""
        from emoflow.similarity import model

        tr = self.meta["trunk"]
        return model.embed(
            self.net, images, tr["mean"], tr["std"], self.device, flip_tta=self.meta.get("flip_tta", False)
        )


def _rel(path: str | Path, root: Path) -> str:
    """``path`` relative to the run folder when inside it. Links are not followed: a fit
    from Snakemake's output cache is a link into the cache whose weights file lies beside
    the link, not beside its target."""
    p = Path(os.path.abspath(path))
    try:
        return str(p.relative_to(os.path.abspath(root)))
    except ValueError:
        return str(p)


def build(
    index_path: str | Path,
    model_json: str | Path,
    crop_files: list[str],
    stages: dict | None = None,
    threads: int = 1,
    log=None,
) -> dict:
    """Embed every crop of ``crop_files`` with the fit ``model_json``; write the index."""
    out = Path(index_path)
    root = out.parent.parent  # results/<run>/similarity/index.parquet -> results/<run>
    emb = Embedding(model_json, threads)
    tables = []
    for f in crop_files:
        cols = ["video_id", "frame", "time", "grey"] + (["color"] if emb.framing else [])
        t = read_table(f, columns=cols)
        name = _rel(f, root)
        xs = []
        for s in range(0, t.num_rows, CHUNK):
            part = t.slice(s, CHUNK)
            colour = decode_colour(part["color"].to_pylist()) if emb.framing else None
            xs.append(emb.crops(colour, grey_of(part["grey"].to_pylist())))
        x = np.concatenate(xs) if xs else np.zeros((0, emb.dim), np.float32)
        tables.append(
            pa.table(
                {
                    "video_id": t["video_id"],
                    "frame": t["frame"].cast(pa.int32()),
                    "time": t["time"],
                    "crops": pa.array([name] * t.num_rows, pa.string()),
                    "x": pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float32).reshape(-1)), emb.dim),
                },
                schema=schema(emb.dim),
            )
        )
        if log:
            log.info("%s: %d crops", f, t.num_rows)
    table = pa.concat_tables(tables) if tables else schema(emb.dim).empty_table()
    write_table(table, out, schema(emb.dim))
    meta = {
        "model": _rel(model_json, root),
        "dim": emb.dim,
        "n": table.num_rows,
        "videos": len(set(table["video_id"].to_pylist())),
        "crops": [_rel(f, root) for f in crop_files],
        "stages": stages or {},
        "framing": emb.framing,
        "flip_tta": emb.meta.get("flip_tta", False),
        "distance": "squared Euclidean between unit vectors (0-4)",
    }
    write_text(out.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    return meta


@dataclass
class Index:
    root: Path  # the run's results folder
    meta: dict
    rows: object  # pandas DataFrame: video_id, frame, time, crops
    x: np.ndarray  # (n, dim) float32

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    @classmethod
    def load(cls, run: str | Path) -> Index:
        run = Path(run)
        path = run / "similarity" / "index.parquet"
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise EmoflowError(
                f"{run}: no similarity/index.parquet + index.json (a run with the expression_embedding "
                "feature on builds it; or python -m emoflow.similarity.index)"
            )
        meta = json.loads(path.with_suffix(".json").read_text())
        t = read_table(path)
        x = t["x"].combine_chunks()
        mat = (
            x.values.to_numpy(zero_copy_only=False).reshape(-1, meta["dim"])
            if len(x)
            else np.zeros((0, meta["dim"]), np.float32)
        )
        return cls(run, meta, t.drop(["x"]).to_pandas(), mat.astype(np.float32))


def stages_of(configs: list[str]) -> dict:
    """The probe / frames / faces settings of a config (files merged over each other)."""
    from emoflow.config import load_config

    cfg = load_config(configs)
    return {k: cfg[k] for k in ("probe", "frames", "faces")} | {"faces": {**cfg["faces"], "hints": None}}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(
        prog="python -m emoflow.similarity.index", description="Embed a run's face crops once (the similarity index)."
    )
    ap.add_argument("index", help="the index Parquet to write (RESULTS/similarity/index.parquet; index.json beside it)")
    ap.add_argument("model", help="the expression embedding fit (JSON, .pt beside it)")
    ap.add_argument("crops", nargs="+", help="the run's crops tables (crops/<shard>.parquet)")
    ap.add_argument("--stages", help="JSON: the run's probe, frames and faces settings (for queries)")
    ap.add_argument("--configfile", action="append", default=[], help="or the run's config file(s), merged in order")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    from emoflow import logs

    log = logs.setup("emoflow.similarity.index")
    try:
        stages = json.loads(args.stages) if args.stages else (stages_of(args.configfile) if args.configfile else None)
        meta = build(args.index, args.model, args.crops, stages, args.threads, log)
    except EmoflowError as exc:
        log.error("%s", exc)
        return 1
    log.info(
        "index %s: %d crops of %d videos (%s)", args.index, meta["n"], meta["videos"], os.path.basename(args.model)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
