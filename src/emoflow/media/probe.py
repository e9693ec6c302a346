"""Probe stage: ffprobe every video of a shard -> ``tables.PROBE`` (one row per video,
readable or not) and a skip table of the unreadable ones.

``python -m emoflow.media.probe SHEET OUT SKIPS --config JSON``
"""

from __future__ import annotations

import argparse
import json
import os
from fractions import Fraction

from emoflow import logs, tables
from emoflow.errors import MediaError
from emoflow.media.ffmpeg import ffprobe
from emoflow.storage import write_rows

STAGE = "probe"


def _rate(text: str | None) -> float | None:
    try:
        value = float(Fraction(text)) if text else 0.0
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _int(x) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _float(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # no NaN


def _rotation(stream: dict) -> int:
    rot = _int(stream.get("tags", {}).get("rotate"))
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            rot = _int(side["rotation"])
    return int(rot or 0) % 360


def summarize(video_id: str, path: str, info: dict) -> dict:
    """A ``tables.PROBE`` row from ffprobe's JSON."""
    fmt = info.get("format", {})
    streams = info.get("streams", [])
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _float(fmt.get("duration"))
    row = {
        "video_id": video_id,
        "ok": True,
        "error": None,
        "size_bytes": _int(fmt.get("size")) or os.path.getsize(path),
        "format": fmt.get("format_name"),
        "duration_s": duration,
        "has_video": video is not None,
        "has_audio": audio is not None,
    }
    if video is not None:
        w, h = _int(video.get("width")), _int(video.get("height"))
        rot = _rotation(video)
        if rot in (90, 270) and w and h:
            w, h = h, w
        fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
        vdur = _float(video.get("duration")) or duration
        n = _int(video.get("nb_frames")) or (round(vdur * fps) if vdur and fps else None)
        row.update(video_codec=video.get("codec_name"), width=w, height=h, rotation=rot, fps=fps, n_frames=n)
        if not w or not h:
            row.update(ok=False, error="video stream has no frame size")
    if audio is not None:
        row.update(
            audio_codec=audio.get("codec_name"),
            audio_sample_rate=_int(audio.get("sample_rate")),
            audio_channels=_int(audio.get("channels")),
        )
    if video is None and audio is None:
        row.update(ok=False, error="no audio or video stream")
    return row


def probe_one(video_id: str, path: str, timeout: float) -> dict:
    try:
        return summarize(video_id, path, ffprobe(path, timeout))
    except MediaError as exc:
        size = os.path.getsize(path) if os.path.isfile(path) else None
        return {"video_id": video_id, "ok": False, "error": str(exc), "size_bytes": size}


def run(sheet: str, out: str, skips_out: str, cfg: dict) -> tuple[int, int]:
    from emoflow.dataset.sheet import read_sheet

    rows, skips = [], []
    videos = read_sheet(sheet)
    for vid, path in logs.progress(zip(videos["video_id"], videos["path"]), "probe", total=len(videos)):
        row = probe_one(vid, path, cfg["probe"]["timeout_s"])
        rows.append(row)
        if not row["ok"]:
            skips.append(tables.skip(vid, STAGE, "error", row["error"]))
    write_rows(rows, out, tables.PROBE)
    write_rows(skips, skips_out, tables.SKIPS)
    return len(rows), len(skips)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow probe", description="ffprobe the videos of one shard.")
    ap.add_argument("sheet", help="shard sheet (Parquet: video_id, path)")
    ap.add_argument("out", help="probe table to write (Parquet)")
    ap.add_argument("skips", help="skip table to write (Parquet)")
    ap.add_argument("--config", required=True, help="JSON with the 'probe' section")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.probe")
    n, bad = run(args.sheet, args.out, args.skips, json.loads(args.config))
    log.info("probed %d videos, %d unreadable (see %s)", n, bad, args.skips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
