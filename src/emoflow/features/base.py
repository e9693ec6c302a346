"""The extractor interface and the per-shard loop that runs any extractor.

An extractor is built once per shard with its config (models load then), declares its
``level`` (``video``, ``frame``, ``clip`` or ``segment``) and ``dim``, and turns one input
item into an :class:`Output`.  Inputs are read according to the registry's ``input`` kind:

``audio``        ``(samples, rate)`` of the 16 kHz mono wav
``transcripts``  the ASR text
``crops``        a :class:`Clip`: the main face's aligned crops (grey, colour), landmarks, boxes
``frames``       a :class:`Frames`: the whole sampled frames

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
from pathlib import Path

import numpy as np

from emoflow import logs, tables, warm
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
    data: object = None  # (samples, rate) for audio; text for transcripts; Clip; Frames
    missing_reason: str | None = None


class Clip:
    """One video's main face, frame by frame (only frames where it was found):

    ``frames`` (n,) sampled-frame indices, ``times`` (n,) seconds, ``grey`` (n, g, g) uint8
    aligned grey crops, ``color`` (n, c, c, 3) uint8 aligned colour crops (decoded on first
    use), ``landmarks`` (n, 5, 2) MTCNN points (eyes, nose, mouth corners) and ``boxes``
    (n, 4) in stored-frame pixels, ``frame_size`` (width, height) of the stored frames.
    ``crop_to_frame`` maps points of a crop back to frame pixels (the alignment's inverse).
    """

    def __init__(self, video_id, frames, times, grey, color_jpegs, landmarks, boxes, frame_size, margin=0.0):
        self.video_id = video_id
        self.frames = np.asarray(frames, np.int64)
        self.times = np.asarray(times, np.float64)
        self.grey = grey
        self._color_jpegs = color_jpegs
        self._color = None
        self.landmarks = landmarks
        self.boxes = boxes
        self.frame_size = frame_size
        self.margin = margin

    def crop_to_frame(self, k: int, points: np.ndarray, crop_size: int) -> np.ndarray:
        """Points (m, 2) in frame ``k``'s aligned crop of side ``crop_size`` -> frame pixels."""
        from emoflow.faces.align import similarity, template

        m = np.vstack([similarity(self.landmarks[k], template(crop_size, self.margin)), [0, 0, 1]])
        inv = np.linalg.inv(m)[:2]
        pts = np.asarray(points, np.float64)
        return pts @ inv[:, :2].T + inv[:, 2]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def color(self) -> np.ndarray:
        if self._color is None:
            import io

            from PIL import Image

            self._color = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in self._color_jpegs])
        return self._color


@dataclass
class Frames:
    """One video's whole sampled frames: indices, times, list of HxWx3 uint8."""

    video_id: str
    frames: np.ndarray
    times: np.ndarray
    images: list


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


def iter_crops(sheet: str, videos: str, crops: str, faces: str, margin: float = 0.0):
    """A :class:`Clip` for every video of the shard sheet, in sheet order; videos without a
    main face (or without frames) come back missing, with the reason."""
    import pyarrow.compute as pc

    order = read_table(sheet, columns=["video_id"])["video_id"].to_pylist()
    vrows = {r["video_id"]: r for r in read_table(videos).to_pylist()}
    ctab = read_table(crops)
    ftab = read_table(faces, columns=["video_id", "frame", "x1", "y1", "x2", "y2", "landmarks", "is_main"])
    ftab = ftab.filter(ftab["is_main"])
    cidx, fidx = _row_index(ctab), _row_index(ftab)
    for vid in order:
        v = vrows.get(vid)
        if v is None:
            yield Item(vid, None, "no sampled frames (see the frames and faces skip tables)")
            continue
        if not cidx.get(vid):
            yield Item(vid, None, f"no face found in {v['n_frames']} sampled frames")
            continue
        c = ctab.take(cidx[vid]).sort_by("frame")
        f = ftab.take(fidx.get(vid, [])).sort_by("frame")
        # the main face's rows, matched to the crops frame by frame
        f = f.filter(pc.is_in(f["frame"], value_set=c["frame"]))
        if f.num_rows != c.num_rows:  # crops are written exactly for the main face's rows
            raise ValueError(f"{crops}: {vid}: {c.num_rows} crops but {f.num_rows} main-face rows in {faces}")
        grey = np.stack([np.frombuffer(b, np.uint8) for b in c["grey"].to_pylist()])
        g = int(round(np.sqrt(grey.shape[1])))
        landmarks = np.asarray(f["landmarks"].to_pylist(), np.float64).reshape(-1, 5, 2)
        boxes = np.stack([f[k].to_numpy() for k in ("x1", "y1", "x2", "y2")], axis=1).astype(np.float64)
        yield Item(
            vid,
            Clip(vid, c["frame"].to_numpy(), c["time"].to_numpy(), grey.reshape(-1, g, g), c["color"].to_pylist(),
                 landmarks, boxes, (v["frame_width"], v["frame_height"]), margin),
        )  # fmt: skip


def iter_frames(sheet: str, frames: str):
    """A :class:`Frames` for every video of the shard sheet (missing: no sampled frames)."""
    from emoflow.media.frames import FrameReader, decode_jpeg

    order = read_table(sheet, columns=["video_id"])["video_id"].to_pylist()
    reader = FrameReader(frames)
    have = set(reader.video_ids())
    for vid in order:
        if vid not in have:
            yield Item(vid, None, "no sampled frames (see the frames skip table)")
            continue
        t = reader.table(vid)
        images = [decode_jpeg(b, "RGB") for b in t["jpeg"].to_pylist()]
        yield Item(vid, Frames(vid, t["frame"].to_numpy(), t["time"].to_numpy(), images))


def _row_index(table) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, vid in enumerate(table["video_id"].to_pylist()):
        index.setdefault(vid, []).append(i)
    return index


def iter_inputs(kind: str, inputs: list[str], cfg: dict):
    """The shard's items for one registry input kind (see the module docstring)."""
    if kind == "audio":
        return iter_audio(inputs[0], inputs[1], cfg["feature_inputs"]["min_audio_dbfs"])
    if kind == "transcripts":
        return iter_transcripts(inputs[0])
    if kind == "crops":
        return iter_crops(*inputs[:4], margin=cfg.get("crops", {}).get("margin", 0.0))
    if kind == "frames":
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
    ext = warm.model(f"features/{params['extractor']}", params, lambda: registry.load(params["extractor"])(params, threads), threads)
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
                skips.append(tables.skip(item.video_id, stage, "missing", "every value was NaN or infinite (none written)"))
            elif bad:
                total = len(rows) + bad
                skips.append(tables.skip(item.video_id, stage, "partial",
                                         f"{bad} of {total} frames/segments had NaN or infinite values: left out"))  # fmt: skip
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
    ap.add_argument("inputs", nargs="+", help="the shard's inputs (audio: index + wav folder; transcripts: text table; crops: sheet, face videos, crops, faces; frames: sheet, frames)")
    ap.add_argument("--config", required=True, help="JSON with 'features' (this entry) and 'feature_inputs'")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup(f"emoflow.features.{args.name}")
    n, missing = run(args.name, json.loads(args.config), args.inputs, args.out, args.skips, args.threads)
    log.info("%s: %d videos, %d missing (see %s)", args.name, n, missing, args.skips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
