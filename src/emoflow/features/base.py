"""The extractor interface and the per-shard loop that runs any extractor.

An extractor is built once per shard with its config (models load then), declares its
``level`` (``video``, ``frame`` or ``segment``) and ``dim``, and turns one input item into
an :class:`Output`.  Inputs are read by :func:`iter_inputs` according to the registry's
``input`` kind; a video whose input is absent (no audio stream, silence, empty transcript,
no face) is written as one ``missing`` row of zeros and recorded in the skip table.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoflow import logs, tables
from emoflow.features import registry
from emoflow.storage import AtomicParquetWriter, read_table, write_rows


@dataclass
class Output:
    values: np.ndarray  # (dim,) for video level; (n, dim) for frame/segment level
    times: np.ndarray | None = None  # (n,) start times for frame/segment level


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
            raise ValueError(f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)} (accepted: {sorted(self.defaults)})")
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


@dataclass
class Item:
    video_id: str
    data: object = None  # (samples, rate) for audio; text for transcripts
    missing_reason: str | None = None


def iter_audio(index_path: str, wav_dir: str, min_dbfs: float):
    from emoflow.media.audio import read_wav

    for row in read_table(index_path).to_pylist():
        vid = row["video_id"]
        if not row["has_audio"]:
            yield Item(vid, None, "no audio")
        elif row["rms_dbfs"] is not None and row["rms_dbfs"] < min_dbfs:
            yield Item(vid, None, f"silent audio ({row['rms_dbfs']:.1f} dBFS)")
        else:
            yield Item(vid, read_wav(Path(wav_dir) / row["wav"]))


def iter_transcripts(path: str):
    for row in read_table(path).to_pylist():
        if row["missing"] or not row["text"].strip():
            yield Item(row["video_id"], None, "no transcript (no audio, silence or nothing recognised)")
        else:
            yield Item(row["video_id"], row["text"])


def _rows(item: Item, out: Output | None, ext: Extractor) -> list[dict]:
    dim = ext.dim
    if out is None:  # missing: one explicit row of zeros
        row = {"video_id": item.video_id, "missing": True, "x": np.zeros(dim, np.float32)}
        if ext.level != "video":
            row.update(frame=0, time=0.0)
        return [row]
    values = np.nan_to_num(np.asarray(out.values, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if ext.level == "video":
        return [{"video_id": item.video_id, "missing": False, "x": values.reshape(dim)}]
    times = np.asarray(out.times, float)
    return [
        {"video_id": item.video_id, "frame": k, "time": float(times[k]), "missing": False, "x": values[k]}
        for k in range(len(values))
    ]


def run(name: str, cfg: dict, inputs: list[str], out: str, skips_out: str, threads: int = 1) -> tuple[int, int]:
    """Run the extractor configured as ``features.<name>`` over one shard's inputs."""
    params = cfg["features"][name]
    ent = registry.entry(params["extractor"])
    ext = registry.load(params["extractor"])(params, threads)  # loaded once per shard
    if ent.input == "audio":
        items = iter_audio(inputs[0], inputs[1], cfg["feature_inputs"]["min_audio_dbfs"])
    elif ent.input == "transcripts":
        items = iter_transcripts(inputs[0])
    else:
        raise NotImplementedError(f"input kind {ent.input!r}")
    stage = f"features/{name}"
    skips, n = [], 0
    with AtomicParquetWriter(out, tables.features(ext.dim, ext.level)) as writer:
        for item in logs.progress(items, name):
            n += 1
            if item.missing_reason:
                writer.write_rows(_rows(item, None, ext))
                skips.append(tables.skip(item.video_id, stage, "missing", item.missing_reason))
                continue
            result = ext.extract(item.data)
            if result is None or (ext.level != "video" and len(result.values) == 0):
                writer.write_rows(_rows(item, None, ext))
                skips.append(tables.skip(item.video_id, stage, "missing", "the extractor produced no output"))
                continue
            writer.write_rows(_rows(item, result, ext))
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
    ap.add_argument("inputs", nargs="+", help="the shard's inputs (audio: index + wav folder; text: transcripts)")
    ap.add_argument("--config", required=True, help="JSON with 'features' (this entry) and 'feature_inputs'")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup(f"emoflow.features.{args.name}")
    n, missing = run(args.name, json.loads(args.config), args.inputs, args.out, args.skips, args.threads)
    log.info("%s: %d videos, %d missing (see %s)", args.name, n, missing, args.skips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
