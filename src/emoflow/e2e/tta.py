"""Rule ``e2e_tta``: the face transform cache of one shard.

For every aligned main-face crop of the shard (:func:`emoflow.faces.read.iter_crops`, as
rule ``features`` reads them), the frame CNN feature (:class:`emoflow.features.frame_cnn.FrameCNN`
with the face feature's own config: its fit, layers, probabilities and framing) under each
face transform of :mod:`emoflow.e2e.augment` (flips and brightness, applied to the aligned
colour and grey crops before the extractor frames them).  The identity transform reproduces
the face feature's own table.

Written in the frame-level schema of ``tables.features`` (``e2e/tta/<face>_tta/<shard>.parquet``):
one row per face frame, ``x`` the ``K`` transforms' outputs concatenated (``K * dim``), their
order in the schema metadata ``transforms`` (JSON list); a clip without a face gets one
``missing`` row of zeros, as in every features table.

``python -m emoflow.e2e.tta FACE_TABLE OUT SHEET FACE_VIDEOS CROPS FACES --config JSON [--threads N]``
(JSON: rule ``features``' config slice of the face feature, plus ``transforms``).
"""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import numpy as np

from emoflow import logs, tables, warm
from emoflow.e2e.augment import SEED_TRANSFORMS, apply_transform
from emoflow.faces.read import iter_crops
from emoflow.features.base import Output, _rows
from emoflow.features.frame_cnn import FrameCNN
from emoflow.storage import AtomicParquetWriter


def schema(dim: int, transforms: list[str]):
    base = tables.features(len(transforms) * dim, "frame")
    return base.with_metadata({**base.metadata, b"transforms": json.dumps(list(transforms)).encode()})


class TransformedFrameCNN:
    """A :class:`FrameCNN` applied to each transform of a clip's crops; level frame, dim K*D."""

    level = "frame"

    def __init__(self, params: dict, transforms: list[str], threads: int = 1):
        self.cnn = FrameCNN(params, threads)
        self.transforms = list(transforms)
        self.dim = self.cnn.dim * len(self.transforms)

    def extract(self, clip) -> Output:
        parts = []
        for name in self.transforms:
            view = SimpleNamespace(
                color=apply_transform(clip.color, name),
                grey=apply_transform(clip.grey, name),
                times=clip.times,
                frames=clip.frames,
            )
            parts.append(self.cnn.extract(view).values)
        return Output(np.concatenate(parts, axis=1), clip.times, clip.frames)


def run(face_table: str, cfg: dict, inputs: list[str], out: str, threads: int = 1) -> tuple[int, int]:
    params = dict(cfg["features"][face_table])
    if params.get("extractor") != "frame_cnn":
        raise ValueError(
            f"e2e_tta: {face_table} is a {params.get('extractor')!r} feature; the transform cache needs a frame_cnn one"
        )
    transforms = list(cfg.get("transforms") or SEED_TRANSFORMS)
    ext = warm.model("e2e/tta", [params, transforms], lambda: TransformedFrameCNN(params, transforms, threads), threads)
    n = missing = 0
    with AtomicParquetWriter(out, schema(ext.cnn.dim, transforms)) as writer:
        for item in logs.progress(iter_crops(*inputs[:4], margin=cfg.get("crops", {}).get("margin", 0.0)), face_table):
            n += 1
            result = None if item.missing_reason else ext.extract(item.data)
            rows, _ = _rows(item, result, ext)
            missing += bool(rows[0]["missing"])
            writer.write_rows(rows)
    return n, missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow e2e-tta", description=__doc__.split("\n\n")[0])
    ap.add_argument("face_table", help="the frame_cnn feature entry (its table name)")
    ap.add_argument("out", help="the cache table to write (Parquet)")
    ap.add_argument("inputs", nargs=4, help="the shard's sheet, face videos, crops, faces")
    ap.add_argument("--config", required=True, help="JSON: rule features' config slice of the entry, plus transforms")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.e2e.tta")
    n, missing = run(args.face_table, json.loads(args.config), args.inputs, args.out, args.threads)
    log.info("%s: %d videos under the face transforms, %d without a face", args.face_table, n, missing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
