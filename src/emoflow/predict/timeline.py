"""Per-second emotion timeline: the video cut into overlapping windows, each predicted as a clip.

Second ``k`` of a video of duration ``d`` is the window centred on ``k + 0.5`` s, ``window``
seconds long (default 2), clipped to ``[0, d]``; a window shorter than ``min_window`` (0.5 s)
is dropped (the last second of a video ending just after a full second).  Each window is cut
with ffmpeg (re-encoded, so it starts on a real frame) and goes through the very same
stages, classifiers and fusion as whole videos; the bundle's models were trained on clips of
a few seconds, so windows of about that length suit them.

Timeline table (Parquet, :func:`schema`), keyed by (``video_id``, ``second``): ``start``,
``end`` (s), ``label_pred``, ``p_<class>`` per class, ``modalities_used``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from emoflow.errors import MediaError
from emoflow.media.ffmpeg import Process, command, last_line


def schema(classes: list[str]) -> pa.Schema:
    return pa.schema(
        [
            ("video_id", pa.string()),
            ("second", pa.int32()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("label_pred", pa.string()),
        ]
        + [(f"p_{c}", pa.float64()) for c in classes]
        + [("modalities_used", pa.string())]
    )


def windows(duration: float, window: float = 2.0, min_window: float = 0.5) -> list[tuple[int, float, float]]:
    """(second, start, end) of every window of a ``duration``-second video."""
    if not duration or duration <= 0:
        return []
    out = []
    for k in range(max(1, math.ceil(duration))):
        centre = k + 0.5
        start, end = max(0.0, centre - window / 2), min(duration, centre + window / 2)
        if end - start >= min(min_window, duration):
            out.append((k, round(start, 3), round(end, 3)))
    return out


def cut(src: str | os.PathLike, dst: str | os.PathLike, start: float, end: float, timeout: float = 120.0) -> None:
    """Re-encode ``[start, end)`` of ``src`` to ``dst`` (H.264 + AAC; streams that exist)."""
    cmd = command(
        "-ss",
        f"{start:.3f}",
        "-i",
        f"file:{src}",
        "-t",
        f"{end - start:.3f}",
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-threads",
        "1",
        f"file:{dst}",
    )
    with Process(cmd, timeout) as proc:
        code, err = proc.finish()
    if proc.timed_out:
        raise MediaError(f"{src}: cutting {start:.1f}-{end:.1f} s took longer than {timeout:g} s")
    if code != 0:
        raise MediaError(f"{src}: cannot cut {start:.1f}-{end:.1f} s ({last_line(err, dst) or f'ffmpeg exit {code}'})")


def plot(rows, classes: list[str], path: str | os.PathLike, title: str) -> None:
    """Stacked class probabilities over time, the predicted class written above each second."""
    from emoflow.evaluate.plots import _pyplot, _save

    plt = _pyplot()
    rows = rows.sort_values("second")
    x = ((rows["start"] + rows["end"]) / 2).to_numpy()
    probs = rows[[f"p_{c}" for c in classes]].to_numpy(float)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) + 3), 3.6))
    colours = plt.get_cmap("tab10")(np.arange(len(classes)) % 10)
    if len(rows) > 1 and np.isfinite(probs).all():
        ax.stackplot(x, probs.T, labels=classes, colors=colours, alpha=0.85)
    else:  # one window (or no prediction): bars
        bottom = np.zeros(len(rows))
        for j, c in enumerate(classes):
            vals = np.nan_to_num(probs[:, j])
            ax.bar(x, vals, bottom=bottom, width=0.8, color=colours[j], label=c)
            bottom += vals
    for xi, lab in zip(x, rows["label_pred"]):
        ax.text(xi, 1.02, lab or "-", ha="center", va="bottom", fontsize=7, rotation=90 if len(rows) > 12 else 0)
    ax.set_xlim(float(rows["start"].min()), float(rows["end"].max()))
    ax.set_ylim(0, 1.18 if len(rows) <= 12 else 1.3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path, plt)
