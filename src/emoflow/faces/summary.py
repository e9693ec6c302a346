"""Corpus-level face coverage: clips with a main face, frame coverage, tracks."""

from __future__ import annotations

import json
import sys

import pyarrow as pa

from emoflow import logs, tables
from emoflow.storage import read_table, write_text


def summarize(paths) -> dict:
    parts = [read_table(p) for p in paths]
    t = pa.concat_tables(parts).to_pandas() if parts else tables.FACE_VIDEOS.empty_table().to_pandas()
    n = len(t)
    with_face = int((t["n_main"] > 0).sum())
    return {
        "videos": n,
        "videos_with_main_face": with_face,
        "clip_coverage": round(with_face / n, 4) if n else 0.0,
        "frames": int(t["n_frames"].sum()),
        "frames_with_main_face": int(t["n_main"].sum()),
        "frame_coverage": round(float(t["n_main"].sum()) / max(1, int(t["n_frames"].sum())), 4),
        "mean_tracks_per_video": round(float(t["n_tracks"].mean()), 3) if n else 0.0,
        "videos_without_face": sorted(t.loc[t["n_main"] == 0, "video_id"].tolist()),
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m emoflow.faces.summary OUT.json VIDEOS.parquet ...")
        return 0
    log = logs.setup("emoflow.faces.summary")
    summary = summarize(argv[1:])
    write_text(argv[0], json.dumps(summary, indent=2) + "\n")
    log.info("%s", json.dumps({k: v for k, v in summary.items() if k != "videos_without_face"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
