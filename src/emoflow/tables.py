"""Schemas of every table emoflow writes (Parquet, keyed by ``video_id``).

Frame-level tables add ``frame`` (index of the sampled frame, 0-based) and ``time``
(seconds from the start of the video).  Readers may rely on these columns and types.
"""

import json

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

#: ``faces/{shard}.parquet`` -- every detected face of every sampled frame, in the
#: stored frame's pixel coordinates (see ``frames``: width x height).
FACES = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("time", pa.float64(), nullable=False),
        pa.field("x1", pa.float32(), nullable=False),
        pa.field("y1", pa.float32(), nullable=False),
        pa.field("x2", pa.float32(), nullable=False),
        pa.field("y2", pa.float32(), nullable=False),
        pa.field("prob", pa.float32(), nullable=False),  # the detector network's own probability
        pa.field("landmarks", pa.list_(pa.float32(), 10), nullable=False),  # x,y of eyes, nose, mouth corners
        pa.field("track", pa.int32(), nullable=False),
        pa.field("is_main", pa.bool_(), nullable=False),
        pa.field("detected", pa.bool_(), nullable=False),  # full MTCNN (else O-Net on the tracked box)
    ]
)

#: ``faces/{shard}.videos.parquet`` -- per-video face coverage.
FACE_VIDEOS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("n_frames", pa.int32(), nullable=False),  # sampled frames
        pa.field("n_main", pa.int32(), nullable=False),  # frames with a main face
        pa.field("coverage", pa.float64(), nullable=False),  # n_main / n_frames
        pa.field("n_tracks", pa.int32(), nullable=False),
        pa.field("main_track", pa.int32()),  # null: no face at all
        pa.field("hint_used", pa.bool_(), nullable=False),
        pa.field("frame_width", pa.int32()),
        pa.field("frame_height", pa.int32()),
    ]
)

#: ``crops/{shard}.parquet`` -- aligned crops of the main face, one row per frame that
#: has one: colour as JPEG (``color_size``^2), grey as raw uint8 (``grey_size``^2).
CROPS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("time", pa.float64(), nullable=False),
        pa.field("color", pa.binary(), nullable=False),
        pa.field("grey", pa.binary(), nullable=False),
    ]
)


def features(dim: int, level: str) -> pa.Schema:
    """``features/{name}/{shard}.parquet`` -- one extractor's output for one shard (and,
    level ``video``, ``encoded/{part}/{feature}.{encoding}.parquet``: video vectors).

    ``level`` ``video``: one row per video.  ``frame`` / ``segment``: one row per frame
    or segment, with ``frame`` (index) and ``time`` (start, seconds).  ``missing`` marks a
    video the extractor could not see (no audio, silence, no face, empty transcript): it
    gets one row of zeros, so nothing is silently lost and nothing is NaN.
    """
    fields = [pa.field("video_id", pa.string(), nullable=False)]
    if level != "video":
        fields += [pa.field("frame", pa.int32(), nullable=False), pa.field("time", pa.float64(), nullable=False)]
    fields += [
        pa.field("missing", pa.bool_(), nullable=False),
        pa.field("x", pa.list_(pa.float32(), dim), nullable=False),
    ]
    return pa.schema(fields, metadata={"level": level, "dim": str(dim)})


#: ``splits/{part}.parquet`` -- one evaluation partition (emoflow.dataset.splits).
SPLITS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),  # train | val | test
        pa.field("speaker", pa.string(), nullable=False),  # group of speaker-independent folds
    ]
)


def predictions(classes: list[str]) -> pa.Schema:
    """``predictions/{part}/{experiment}.parquet`` and ``fusion/{part}/fused.parquet`` --
    class probabilities of every video of a partition (columns ``p_<class>`` in label-space
    order).  ``missing``: the experiment's feature was missing for the video (no face, no
    audio...); its probabilities are then the training-split class prior."""
    fields = [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("missing", pa.bool_(), nullable=False),
    ]
    fields += [pa.field(f"p_{c}", pa.float64(), nullable=False) for c in classes]
    return pa.schema(fields, metadata={"classes": json.dumps(classes)})


#: ``text/{shard}.parquet`` -- ASR transcripts.
TRANSCRIPTS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # "" when nothing was recognised
        pa.field("confidence", pa.float64(), nullable=False),  # posterior probability in [0, 1]
        pa.field("n_words", pa.int32(), nullable=False),
        pa.field("missing", pa.bool_(), nullable=False),  # no audio, silence, or empty transcript
        pa.field("backend", pa.string(), nullable=False),
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
