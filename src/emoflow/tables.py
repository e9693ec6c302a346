"""Schemas of every table emoflow writes (Parquet, keyed by ``video_id``).

Frame-level tables add ``frame`` (index of the sampled frame, 0-based) and ``time``
(seconds from the start of the video).  Readers may rely on these columns and types.
"""

import pyarrow as pa

#: ``results/<run>/shards/{shard}.parquet`` -- the videos of one shard.
SHARD_SHEET = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),  # absolute path of the media file
    ]
)

#: ``probe/{shard}.parquet`` -- one row per video of the shard, readable or not.
PROBE = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("ok", pa.bool_(), nullable=False),  # ffprobe could read the file
        pa.field("error", pa.string()),  # why not, when ok is False
        pa.field("size_bytes", pa.int64()),
        pa.field("format", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("has_video", pa.bool_()),
        pa.field("video_codec", pa.string()),
        pa.field("width", pa.int32()),  # display width (rotation applied)
        pa.field("height", pa.int32()),  # display height (rotation applied)
        pa.field("rotation", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("n_frames", pa.int64()),  # from the container, else duration x fps
        pa.field("has_audio", pa.bool_()),
        pa.field("audio_codec", pa.string()),
        pa.field("audio_sample_rate", pa.int32()),
        pa.field("audio_channels", pa.int32()),
    ]
)

#: ``frames/{shard}.parquet`` -- sampled frames, JPEG-encoded, one row group per
#: video (or per block of ``rows_per_group`` frames of a long video).
FRAMES = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("time", pa.float64(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("jpeg", pa.binary(), nullable=False),
    ]
)

#: ``audio/{shard}.parquet`` -- index of the 16 kHz mono wavs in ``audio/{shard}/``.
AUDIO = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("has_audio", pa.bool_(), nullable=False),
        pa.field("wav", pa.string()),  # file name inside the shard's audio folder
        pa.field("sample_rate", pa.int32()),
        pa.field("n_samples", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("rms_dbfs", pa.float64()),  # loudness; -inf-like (-120) for digital silence
    ]
)

#: ``skips/{stage}/{shard}.parquet`` -- every video a stage did not (fully) process.
#: kind: ``error`` (unreadable input), ``missing`` (a modality the video lacks, e.g. no
#: audio stream), ``partial`` (processed in part: e.g. decoding stopped early),
#: ``upstream`` (skipped because an earlier stage skipped it).
SKIPS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
    ]
)

SKIP_KINDS = ("error", "missing", "partial", "upstream")


def skip(video_id: str, stage: str, kind: str, reason: str) -> dict:
    """One row of a skip table."""
    if kind not in SKIP_KINDS:
        raise ValueError(f"unknown skip kind {kind!r}")
    return {"video_id": video_id, "stage": stage, "kind": kind, "reason": reason}
