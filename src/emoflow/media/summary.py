"""Corpus-level summary of the media stages: counts, durations, frames, and every
skipped video with its stage and reason (``report/skips.csv``)."""

from __future__ import annotations

import argparse
import json

import pyarrow as pa
import pyarrow.compute as pc

from emoflow import logs, tables
from emoflow.storage import atomic_path, read_table, write_text


def _concat(paths, columns=None, schema=None) -> pa.Table:
    parts = [read_table(p, columns=columns) for p in paths]
    if not parts:
        return schema.empty_table() if schema is not None else pa.table({})
    return pa.concat_tables(parts)


def summarize(probe_paths, frames_paths, audio_paths, skip_paths) -> tuple[dict, pa.Table]:
    probe = _concat(probe_paths, schema=tables.PROBE)
    frames = _concat(frames_paths, columns=["video_id"], schema=pa.schema([tables.FRAMES.field("video_id")]))
    audio = _concat(audio_paths, schema=tables.AUDIO)
    skips = _concat(skip_paths, schema=tables.SKIPS)
    ok = probe.filter(probe["ok"])
    summary = {
        "videos": probe.num_rows,
        "probe_ok": ok.num_rows,
        "probe_failed": probe.num_rows - ok.num_rows,
        "total_duration_s": round(float(pc.sum(ok["duration_s"]).as_py() or 0.0), 3),
        "videos_with_video_stream": int(pc.sum(ok["has_video"]).as_py() or 0),
        "videos_with_audio_stream": int(pc.sum(ok["has_audio"]).as_py() or 0),
        "videos_with_frames": len(set(frames["video_id"].to_pylist())) if frames.num_rows else 0,
        "frames": frames.num_rows,
        "videos_with_wav": int(pc.sum(audio["has_audio"]).as_py() or 0),
        "audio_duration_s": round(float(pc.sum(audio["duration_s"]).as_py() or 0.0), 3),
        "skips": {},
    }
    for row in skips.group_by(["stage", "kind"]).aggregate([("video_id", "count")]).to_pylist():
        summary["skips"].setdefault(row["stage"], {})[row["kind"]] = row["video_id_count"]
    return summary, skips.sort_by([("video_id", "ascending"), ("stage", "ascending")])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow media-summary", description=__doc__)
    ap.add_argument("--probe", nargs="*", default=[])
    ap.add_argument("--frames", nargs="*", default=[])
    ap.add_argument("--audio", nargs="*", default=[])
    ap.add_argument("--skips", nargs="*", default=[])
    ap.add_argument("--out", required=True, help="summary JSON")
    ap.add_argument("--skips-out", required=True, help="every skip, as CSV")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.summary")
    summary, skips = summarize(args.probe, args.frames, args.audio, args.skips)
    write_text(args.out, json.dumps(summary, indent=2) + "\n")
    with atomic_path(args.skips_out) as tmp:
        skips.to_pandas().to_csv(tmp, index=False)
    log.info("%s", json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
