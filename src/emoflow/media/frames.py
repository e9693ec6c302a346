"""Frames stage: sample frames with ffmpeg (streamed, never a whole video in memory),
downscale to ``max_side``, JPEG-encode, and store each shard as one Parquet file
(``tables.FRAMES``) with one row group per video (or per ``rows_per_group`` frames).

Why this storage: one file per shard instead of one file per frame keeps a corpus of
millions of frames to a few hundred files (cluster file systems and Snakemake both
suffer from many small files); JPEG at quality ~90 is 10-30x smaller than raw pixels
and decodes at >1000 frames/s; the row-group index lets a reader fetch one video
without reading the rest.

``python -m emoflow.media.frames SHEET PROBE OUT SKIPS --config JSON [--threads N]``
"""

from __future__ import annotations

import argparse
import io
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import ffmpeg
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from emoflow import logs, tables
from emoflow.items import Item
from emoflow.media.ffmpeg import Process, last_line, require
from emoflow.storage import AtomicParquetWriter, read_table, write_rows

STAGE = "frames"


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size after downscaling so the longer side is at most ``max_side`` (never up)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_command(
    path: str, size: tuple[int, int], fps: float | None, threads: int = 1, eof_pass: bool = False
) -> list[str]:
    """ffmpeg argument list that writes sampled, scaled rgb24 frames to stdout.
    ``eof_pass``: the fps filter passes the last frame at the end of the stream (used
    for clips shorter than one sampling step, and stills, which give no frame otherwise)."""
    video = ffmpeg.input(f"file:{path}").video
    if fps:
        video = video.filter("fps", fps=fps, **({"eof_action": "pass"} if eof_pass else {}))
    video = video.filter("scale", size[0], size[1], flags="area")
    out = ffmpeg.output(
        video, "pipe:", format="rawvideo", pix_fmt="rgb24", **({} if fps else {"fps_mode": "passthrough"})
    )
    return out.global_args("-nostdin", "-loglevel", "error", "-threads", str(threads)).compile(cmd=require("ffmpeg"))


def expected_frames(probe_row: dict, fps: float | None) -> int | None:
    """About how many frames sampling the whole video stream gives (None: unknown)."""
    n, native = probe_row.get("n_frames"), probe_row.get("fps")
    if not n or not native:
        return None
    return int(n) if not fps else int(n / native * fps)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode_jpeg(data: bytes, mode: str = "RGB") -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


@dataclass
class VideoResult:
    n_frames: int
    skip: dict | None


def _decode(path, size, fps, threads, timeout, video_id, step, fcfg, writer, eof_pass=False):
    """Stream one decode into ``writer``: (frames written, exit code, stderr, timed out)."""
    frame_bytes = size[0] * size[1] * 3
    batch, n = [], 0
    with Process(decode_command(path, size, fps, threads, eof_pass), timeout) as proc:
        while True:
            if proc.expired():
                proc.kill()
                break
            buf = proc.proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            rgb = np.frombuffer(buf, np.uint8).reshape(size[1], size[0], 3)
            batch.append(
                {
                    "video_id": video_id,
                    "frame": n,
                    "time": round(n * step, 6),
                    "width": size[0],
                    "height": size[1],
                    "jpeg": encode_jpeg(rgb, fcfg["jpeg_quality"]),
                }
            )
            n += 1
            if len(batch) >= fcfg["rows_per_group"]:
                writer.write_rows(batch)
                batch = []
        writer.write_rows(batch)
        rc, err = proc.finish()
        return n, rc, err, proc.timed_out or proc.expired()


def extract_video(video_id, path, probe_row, cfg, writer, threads=1) -> VideoResult:
    """Stream one video's sampled frames into ``writer``.

    A clip shorter than one sampling step (or a still image) is decoded again with the
    last frame passed through, so it gives one frame instead of none.  A decode that
    ffmpeg reports errors for and that ends well short of the probed frame count (a
    truncated file) keeps its frames and is recorded as ``partial``."""
    fcfg = cfg["frames"]
    size = output_size(int(probe_row["width"]), int(probe_row["height"]), fcfg["max_side"])
    fps = fcfg["fps"]
    native_fps = probe_row.get("fps") or 25.0
    step = 1.0 / (fps or native_fps)
    duration = probe_row.get("duration_s") or 0.0
    timeout = fcfg["timeout_base_s"] + fcfg["timeout_per_media_s"] * duration
    n, rc, err, timed_out = _decode(path, size, fps, threads, timeout, video_id, step, fcfg, writer)
    if n == 0 and rc == 0 and not timed_out and fps:
        n, rc, err, timed_out = _decode(path, size, fps, threads, timeout, video_id, step, fcfg, writer, eof_pass=True)
    expected = expected_frames(probe_row, fps)
    if timed_out:
        reason = f"{path}: ffmpeg exceeded its time limit of {timeout:g} s"
    elif rc != 0:
        reason = f"{path}: ffmpeg failed ({last_line(err, path) or f'exit code {rc}'})"
    elif err.strip() and expected and n < 0.9 * expected - 1:
        reason = (
            f"{path}: decoding stopped early, at {n} of about {expected} frames (truncated? {last_line(err, path)})"
        )
    else:
        reason = None
    if reason and n == 0:
        return VideoResult(0, tables.skip(video_id, STAGE, "error", reason))
    if reason:
        return VideoResult(n, tables.skip(video_id, STAGE, "partial", f"{reason}; kept the first {n} frames"))
    if n == 0:
        return VideoResult(0, tables.skip(video_id, STAGE, "error", f"{path}: no frames could be decoded"))
    return VideoResult(n, None)


def run(sheet: str, probe: str, out: str, skips_out: str, cfg: dict, threads: int = 1) -> tuple[int, int, int]:
    from emoflow.dataset.sheet import read_sheet

    videos = read_sheet(sheet)
    probed = {r["video_id"]: r for r in read_table(probe).to_pylist()}
    skips, total = [], 0
    with AtomicParquetWriter(out, tables.FRAMES) as writer:
        for vid, path in logs.progress(zip(videos["video_id"], videos["path"]), "frames", total=len(videos)):
            row = probed.get(vid)
            if row is None or not row["ok"]:
                why = row["error"] if row else "not in the probe table"
                skips.append(tables.skip(vid, STAGE, "upstream", f"probe: {why}"))
                continue
            if not row["has_video"]:
                skips.append(tables.skip(vid, STAGE, "missing", f"{path}: no video stream"))
                continue
            result = extract_video(vid, path, row, cfg, writer, threads)
            total += result.n_frames
            if result.skip:
                skips.append(result.skip)
    write_rows(skips, skips_out, tables.SKIPS)
    return len(videos), total, len(skips)


class LazyFrames(Sequence):
    """One video's stored frames, decoded when accessed: ``frames[i]`` decodes frame ``i``
    (the last ``cache`` stay decoded), ``frames[a:b]`` gives a list.  Holds only the JPEG
    bytes, so a long video never has all its frames decoded at once."""

    def __init__(self, jpegs: list[bytes], height: int, width: int, mode: str = "RGB", cache: int = 8):
        self._jpegs = jpegs
        self.shape = (height, width, 3) if mode == "RGB" else (height, width)
        self.mode = mode
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return len(self._jpegs)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i) + (len(self) if i < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} of {len(self)}")
        frame = self._cache.get(i)
        if frame is None:
            frame = decode_jpeg(self._jpegs[i], self.mode)
            self._cache[i] = frame
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        return frame


class FrameReader:
    """Random access to one shard's frames: ``reader.frames(video_id)`` decodes only
    the row groups that hold that video."""

    def __init__(self, path: str):
        self.path = path
        self.file = pq.ParquetFile(path)
        self._groups: dict[str, list[int]] = {}
        for g in range(self.file.num_row_groups):
            ids = self.file.read_row_group(g, columns=["video_id"]).column(0).unique().to_pylist()
            for vid in ids:
                self._groups.setdefault(vid, []).append(g)

    def video_ids(self) -> list[str]:
        return list(self._groups)

    def table(self, video_id: str):
        import pyarrow.compute as pc

        groups = self._groups.get(video_id, [])
        if not groups:
            return tables.FRAMES.empty_table()
        # one read, no thread pool, and no copies when (as the frames stage writes them) the
        # row groups hold this video alone, in frame order: a long video's read stays small
        t = self.file.read_row_groups(groups, use_threads=False)
        if not pc.all(pc.equal(t["video_id"], video_id)).as_py():
            t = t.filter(pc.equal(t["video_id"], video_id))
        frame = t["frame"].to_numpy()
        return t if (np.diff(frame) > 0).all() else t.sort_by("frame")

    def frames(self, video_id: str, mode: str = "RGB", max_decoded_bytes: float | None = None):
        """(times, frames) of one video, in frame order: a list of HxWxC uint8 arrays, or,
        when they would take more than ``max_decoded_bytes`` decoded, :class:`LazyFrames`."""
        t = self.table(video_id)
        jpegs = t["jpeg"].to_pylist()
        if max_decoded_bytes is not None and len(jpegs):
            h, w = int(t["height"][0].as_py()), int(t["width"][0].as_py())
            if len(jpegs) * h * w * (3 if mode == "RGB" else 1) > max_decoded_bytes:
                return t["time"].to_pylist(), LazyFrames(jpegs, h, w, mode)
        return t["time"].to_pylist(), [decode_jpeg(b, mode) for b in jpegs]


@dataclass
class Frames:
    """One video's whole sampled frames: indices, times, list of HxWx3 uint8."""

    video_id: str
    frames: np.ndarray
    times: np.ndarray
    images: list


def iter_frames(sheet: str, frames: str):
    """A :class:`Frames` for every video of the shard sheet (missing: no sampled frames)."""
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow frames", description="Sample and store the frames of one shard.")
    ap.add_argument("sheet", help="shard sheet (Parquet)")
    ap.add_argument("probe", help="the shard's probe table (Parquet)")
    ap.add_argument("out", help="frames table to write (Parquet)")
    ap.add_argument("skips", help="skip table to write (Parquet)")
    ap.add_argument("--config", required=True, help="JSON with the 'frames' section")
    ap.add_argument("--threads", type=int, default=1, help="ffmpeg decoding threads")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.frames")
    n, frames, bad = run(args.sheet, args.probe, args.out, args.skips, json.loads(args.config), args.threads)
    log.info("%d videos -> %d frames; %d skipped or partial (see %s)", n, frames, bad, args.skips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
