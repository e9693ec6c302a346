"""The ASR stage's transcripts read back, one :class:`emoflow.items.Item` per video."""

from __future__ import annotations

from emoflow.items import Item
from emoflow.storage import read_table


def iter_transcripts(path: str):
    for row in read_table(path).to_pylist():
        if row["missing"] or not row["text"].strip():
            yield Item(row["video_id"], None, "no transcript (no audio, silence or nothing recognised)")
        else:
            yield Item(row["video_id"], row["text"])
