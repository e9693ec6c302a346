"""The unit a stage's reader yields to the next stage: one video's input, or why it has none."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Item:
    video_id: str
    data: object = None  # (samples, rate) for audio; text for transcripts; Clip; Frames
    missing_reason: str | None = None
