"""The extractor interface and the per-shard loop that runs any extractor.

An extractor is built once per shard with its config (models load then), declares its
``level`` (``video``, ``frame``, ``clip`` or ``segment``) and ``dim``, and turns one input
item into an :class:`Output`.  Inputs are read according to the registry's ``input`` kind:

``audio``        ``(samples, rate)`` of the 16 kHz mono wav (:func:`emoflow.media.audio.iter_audio`)
``transcripts``  the ASR text (:func:`emoflow.asr.read.iter_transcripts`)
``crops``        a :class:`emoflow.faces.read.Clip`: the main face's aligned crops (grey,
                 colour), landmarks, boxes (:func:`emoflow.faces.read.iter_crops`)
``frames``       a :class:`emoflow.media.frames.Frames`: the whole sampled frames
                 (:func:`emoflow.media.frames.iter_frames`)

Frame-level extractors batch over a video's frames in one call.  A video whose input is
absent (no audio stream, silence, empty transcript, no face) is written as one ``missing``
row of zeros and recorded in the skip table.  A NaN or infinite value is never written as a
number: a video-level vector with one is a missing row, a frame or segment with one is left
out (a ``partial`` skip row says how many); all of them: a missing row.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np

from emoflow import logs, tables, warm
from emoflow.items import Item
from emoflow.features import registry
from emoflow.storage import AtomicParquetWriter, read_table, write_rows


@dataclass
class Output:
    values: np.ndarray  # (dim,) for video level; (n, dim) for frame/clip/segment level
    times: np.ndarray | None = None  # (n,) start times for frame/clip/segment level
    frames: np.ndarray | None = None  # (n,) frame indices (default 0..n-1)


class Extractor:
    """Base class. Subclasses set ``defaults`` (every accepted parameter) and implement
    ``setup`` (load models), ``dim``, ``level`` and ``extract``."""

    defaults: dict = {}

    def __init__(self, params: dict | None = None, threads: int = 1):
        self.threads = max(1, threads)
        params = dict(params or {})
        params.pop("extractor", None)
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)} (accepted: {sorted(self.defaults)})"
            )
        self.params = {**self.defaults, **params}
        self.setup()

    def setup(self) -> None:
        pass

    level: str = "video"

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def extract(self, item) -> Output:
        raise NotImplementedError


def iter_inputs(kind: str, inputs: list[str], cfg: dict):
    """The shard's items for one registry input kind (see the module docstring), read by
    the module of the stage that wrote them."""
    if kind == "audio":
        from emoflow.media.audio import iter_audio

        return iter_audio(inputs[0], inputs[1], cfg["feature_inputs"]["min_audio_dbfs"])
    if kind == "transcripts":
        from emoflow.asr.read import iter_transcripts

        return iter_transcripts(inputs[0])
    if kind == "crops":
        from emoflow.faces.read import iter_crops

        return iter_crops(*inputs[:4], margin=cfg.get("crops", {}).get("margin", 0.0))
    if kind == "frames":
        from emoflow.media.frames import iter_frames

        return iter_frames(*inputs[:2])
    raise ValueError(f"unknown input kind {kind!r}")


def _rows(item: Item, out: Output | None, ext: Extractor) -> tuple[list[dict], int]:
    """(rows, number of frames/segments left out because a value was NaN or infinite).
    A non-finite value is never written as a number: a video-level vector with one is a
    missing row; a frame or segment with one is left out (all of them: a missing row)."""
    dim = ext.dim
    if out is None:  # missing: one explicit row of zeros
        row = {"video_id": item.video_id, "missing": True, "x": np.zeros(dim, np.float32)}
        if ext.level != "video":
            row.update(frame=0, time=0.0)
        return [row], 0
    values = np.asarray(out.values, np.float32)
    if ext.level == "video":
        values = values.reshape(dim)
        if not np.isfinite(values).all():
            return _rows(item, None, ext)[0], 1
        return [{"video_id": item.video_id, "missing": False, "x": values}], 0
    times = np.asarray(out.times, float)
    frames = np.arange(len(values)) if out.frames is None else np.asarray(out.frames)
    good = np.isfinite(values).all(axis=1)
    if not good.any():
        return _rows(item, None, ext)[0], int(len(values))
    rows = [
        {"video_id": item.video_id, "frame": int(frames[k]), "time": float(times[k]), "missing": False, "x": values[k]}
        for k in np.flatnonzero(good)
    ]
    return rows, int((~good).sum())


def run(name: str, cfg: dict, inputs: list[str], out: str, skips_out: str, threads: int = 1) -> tuple[int, int]:
    """Run the extractor configured as ``features.<name>`` over one shard's inputs."""
    params = cfg["features"][name]
    ent = registry.entry(params["extractor"])
    # loaded once per shard (per predictor process inside emoflow.warm.keeping)
    ext = warm.model(
        f"features/{params['extractor']}", params, lambda: registry.load(params["extractor"])(params, threads), threads
    )
    items = iter_inputs(ent.input, inputs, cfg)
    stage = f"features/{name}"
    skips, n = [], 0
    with AtomicParquetWriter(out, tables.features(ext.dim, ext.level)) as writer:
        for item in logs.progress(items, name):
            n += 1
            if item.missing_reason:
                writer.write_rows(_rows(item, None, ext)[0])
                skips.append(tables.skip(item.video_id, stage, "missing", item.missing_reason))
                continue
            result = ext.extract(item.data)
            if result is None or (ext.level != "video" and len(result.values) == 0):
                writer.write_rows(_rows(item, None, ext)[0])
                skips.append(tables.skip(item.video_id, stage, "missing", "the extractor produced no output"))
                continue
            rows, bad = _rows(item, result, ext)
            writer.write_rows(rows)
            if rows[0]["missing"]:
                skips.append(
                    tables.skip(item.video_id, stage, "missing", "every value was NaN or infinite (none written)")
                )
            elif bad:
                total = len(rows) + bad
                skips.append(
                    tables.skip(
                        item.video_id,
                        stage,
                        "partial",
                        f"{bad} of {total} frames/segments had NaN or infinite values: left out",
                    )
                )
    write_rows(skips, skips_out, tables.SKIPS)
    return n, len(skips)


def read_features(path: str):
    """(metadata DataFrame without ``x``, float32 matrix of ``x``) of a features table."""
    t = read_table(path)
    x = t["x"].combine_chunks()
    dim = x.type.list_size
    matrix = x.values.to_numpy(zero_copy_only=False).reshape(-1, dim) if len(x) else np.zeros((0, dim), np.float32)
    return t.drop(["x"]).to_pandas(), matrix


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow features", description="Run one configured extractor on one shard.")
    ap.add_argument("name", help="an entry of the config's 'features' section")
    ap.add_argument("out", help="features table to write (Parquet)")
    ap.add_argument("skips", help="skip table to write (Parquet)")
    ap.add_argument(
        "inputs",
        nargs="+",
        help="the shard's inputs (audio: index + wav folder; transcripts: text table; crops: sheet, face videos, crops, faces; frames: sheet, frames)",
    )
    ap.add_argument("--config", required=True, help="JSON with 'features' (this entry) and 'feature_inputs'")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup(f"emoflow.features.{args.name}")
    n, missing = run(args.name, json.loads(args.config), args.inputs, args.out, args.skips, args.threads)
    log.info("%s: %d videos, %d missing (see %s)", args.name, n, missing, args.skips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
