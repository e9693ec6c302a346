"""Face stage, one shard: read the sampled frames, detect and track faces, pick each
video's main face, align its crops.

Outputs: the faces table (``tables.FACES``, every face), per-video coverage
(``tables.FACE_VIDEOS``), the aligned main-face crops (``tables.CROPS``) and a skip
table: a video with no face at all is skipped (kind ``missing``) and later visual
stages leave it out; its audio still counts.  A video whose decoded frames would exceed
``group_megapixels`` (a long one) is decoded frame by frame as the detector needs them
(:class:`~emoflow.media.frames.LazyFrames`), so memory does not grow with its length.

``python -m emoflow.faces.stage SHEET PROBE FRAMES FACES VIDEOS CROPS SKIPS --config JSON``
"""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pandas as pd

from emoflow import logs, tables, warm
from emoflow.faces.align import aligned_pair
from emoflow.faces.detect import MTCNNDetector
from emoflow.faces.pipeline import detect_and_track_many
from emoflow.media.frames import FrameReader
from emoflow.storage import AtomicParquetWriter, read_table, write_rows

STAGE = "faces"


def load_hints(path: str | None) -> dict[str, tuple[float, np.ndarray]]:
    """video_id -> (time, box in original video pixels)."""
    if not path:
        return {}
    df = pd.read_csv(path, dtype={"video_id": str})
    missing = {"video_id", "time", "x1", "y1", "x2", "y2"} - set(df.columns)
    if missing:
        from emoflow.errors import EmoflowError

        raise EmoflowError(
            f"{path}: face hints need columns video_id, time, x1, y1, x2, y2 (missing {sorted(missing)})"
        )
    return {r.video_id: (float(r.time), np.array([r.x1, r.y1, r.x2, r.y2], float)) for r in df.itertuples()}


def make_detector(fcfg: dict) -> MTCNNDetector:
    return MTCNNDetector(
        device=fcfg["device"],
        min_face=fcfg["min_face"],
        det_max_side=fcfg["det_max_side"],
        thresholds=fcfg["thresholds"],
        factor=fcfg["factor"],
        batch_size=fcfg["batch_size"],
        precision=fcfg["precision"],
    )


def video_tables(video_id, times, frames, res, fcfg, hint_used=False):
    """(face rows, coverage row, crop rows) of one video's detection result."""
    face_rows, crop_rows = [], []
    n_main = 0
    for t, (f, ids) in enumerate(zip(res.faces, res.tracks)):
        for k in range(len(f)):
            is_main = res.main is not None and int(ids[k]) == res.main
            face_rows.append(
                {
                    "video_id": video_id,
                    "frame": t,
                    "time": times[t],
                    "x1": f.boxes[k, 0],
                    "y1": f.boxes[k, 1],
                    "x2": f.boxes[k, 2],
                    "y2": f.boxes[k, 3],
                    "prob": f.probs[k],
                    "landmarks": f.points[k].ravel().tolist(),
                    "track": int(ids[k]),
                    "is_main": is_main,
                    "detected": res.detected[t],
                }
            )
            if is_main:
                n_main += 1
                color, grey = aligned_pair(
                    frames[t], f.points[k], fcfg["color_size"], fcfg["grey_size"], fcfg["margin"]
                )
                buf = io.BytesIO()
                color.save(buf, format="JPEG", quality=fcfg["jpeg_quality"])
                crop_rows.append(
                    {
                        "video_id": video_id,
                        "frame": t,
                        "time": times[t],
                        "color": buf.getvalue(),
                        "grey": grey.tobytes(),
                    }
                )
    h, w = frames[0].shape[:2] if frames else (None, None)
    n_tracks = len({int(i) for ids in res.tracks for i in ids})
    video_row = {
        "video_id": video_id,
        "n_frames": len(frames),
        "n_main": n_main,
        "coverage": n_main / len(frames) if frames else 0.0,
        "n_tracks": n_tracks,
        "main_track": res.main,
        "hint_used": hint_used,
        "frame_width": w,
        "frame_height": h,
    }
    return face_rows, video_row, crop_rows


def run(sheet, probe, frames_path, faces_out, videos_out, crops_out, skips_out, cfg, threads=1):
    import torch

    from emoflow.dataset.sheet import read_sheet

    torch.set_num_threads(max(1, threads))
    fcfg = cfg["faces"]
    videos = read_sheet(sheet)
    probed = {r["video_id"]: r for r in read_table(probe).to_pylist()}
    hints = load_hints(fcfg["hints"])
    reader = FrameReader(frames_path)
    have_frames = set(reader.video_ids())
    detector = warm.model(
        "faces/detector", fcfg, lambda: make_detector(fcfg)
    )  # loaded once per shard (or per predictor)
    video_rows, skips = [], []

    def flush(group, faces_w, crops_w):
        hints_ = [g[3] for g in group]
        results = detect_and_track_many(
            detector,
            [g[2] for g in group],
            fcfg["detect_every"],
            fcfg["iou_min"],
            fcfg["max_gap"],
            hints_,
            fcfg["rescue"] if fcfg["rescue"]["enabled"] else None,
        )
        for (vid, times, frames, hint), res in zip(group, results):
            face_rows, video_row, crop_rows = video_tables(vid, times, frames, res, fcfg, hint is not None)
            faces_w.write_rows(face_rows)
            crops_w.write_rows(crop_rows)
            video_rows.append(video_row)
            if video_row["n_main"] == 0:
                skips.append(tables.skip(vid, STAGE, "missing", f"no face found in {len(frames)} sampled frames"))

    with (
        AtomicParquetWriter(faces_out, tables.FACES) as faces_w,
        AtomicParquetWriter(crops_out, tables.CROPS) as crops_w,
    ):
        group, pixels = [], 0
        for vid in logs.progress(videos["video_id"], "faces", total=len(videos)):
            if vid not in have_frames:
                skips.append(tables.skip(vid, STAGE, "upstream", "frames: no sampled frames"))
                continue
            # a video whose decoded frames alone exceed the group's memory bound (a long one)
            # is decoded on access instead: memory stays bounded whatever its length
            times, frames = reader.frames(vid, max_decoded_bytes=fcfg["group_megapixels"] * 1e6)
            hint = None
            if vid in hints:
                t_hint, box = hints[vid]
                scale = frames[0].shape[1] / float(probed[vid]["width"] or frames[0].shape[1])
                hint = (int(np.argmin(np.abs(np.asarray(times) - t_hint))), box * scale)
            group.append((vid, times, frames, hint))
            pixels += len(frames) * int(np.prod(frames[0].shape)) if len(frames) else 0
            # videos are processed in lockstep groups (large batches), bounded in memory
            if len(group) >= fcfg["group_videos"] or pixels >= fcfg["group_megapixels"] * 1e6:
                flush(group, faces_w, crops_w)
                group, pixels = [], 0
        if group:
            flush(group, faces_w, crops_w)
    write_rows(video_rows, videos_out, tables.FACE_VIDEOS)
    write_rows(skips, skips_out, tables.SKIPS)
    return video_rows, skips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow faces", description="Detect, track and align faces for one shard.")
    for name in ("sheet", "probe", "frames", "faces", "videos", "crops", "skips"):
        ap.add_argument(name)
    ap.add_argument("--config", required=True, help="JSON with the 'faces' section")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.faces")
    rows, skips = run(
        args.sheet,
        args.probe,
        args.frames,
        args.faces,
        args.videos,
        args.crops,
        args.skips,
        json.loads(args.config),
        args.threads,
    )
    frames = sum(r["n_frames"] for r in rows)
    main_frames = sum(r["n_main"] for r in rows)
    log.info(
        "%d videos, %d with a main face; %d of %d frames (%.1f%%) have one; %d skipped",
        len(rows),
        sum(r["n_main"] > 0 for r in rows),
        main_frames,
        frames,
        100.0 * main_frames / max(1, frames),
        len(skips),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
