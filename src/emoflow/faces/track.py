"""Link per-frame face detections into tracks and pick the main subject's track.

Linking: each live track predicts its box in the next frame from its last box and a
smoothed velocity; detections are assigned to predictions by the Hungarian algorithm
on a cost of (1 - IoU) plus a size-change term, so two faces that cross keep their
identities; a track survives gaps of up to ``max_gap`` frames.

Main track: the one with the highest persistence x size x centrality score, unless a
hint box (e.g. a user's correction for the first frame) names another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (n x 4) and b (m x 4)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class _Track:
    tid: int
    box: np.ndarray
    last: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))

    def predict(self, frame: int) -> np.ndarray:
        return self.box + self.velocity * (frame - self.last)


def link(
    per_frame_boxes: list[np.ndarray], iou_min: float = 0.2, max_gap: int = 10, smooth: float = 0.5
) -> list[np.ndarray]:
    """Track id of every box, frame by frame (same shapes as the inputs' first axis)."""
    tracks: list[_Track] = []
    next_id = 0
    out = []
    for t, boxes in enumerate(per_frame_boxes):
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        live = [tr for tr in tracks if t - tr.last <= max_gap]
        ids = np.full(len(boxes), -1, int)
        if live and len(boxes):
            pred = np.stack([tr.predict(t) for tr in live])
            ov = iou(pred, boxes)
            side_p = np.sqrt(np.prod(pred[:, 2:] - pred[:, :2], axis=1).clip(1e-6))
            side_b = np.sqrt(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1).clip(1e-6))
            cost = (1 - ov) + 0.5 * np.abs(np.log(side_p[:, None] / side_b[None, :]))
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if ov[r, c] >= iou_min:
                    tr = live[r]
                    step = max(1, t - tr.last)
                    tr.velocity = smooth * tr.velocity + (1 - smooth) * (boxes[c] - tr.box) / step
                    tr.box, tr.last = boxes[c], t
                    ids[c] = tr.tid
        for c in np.flatnonzero(ids < 0):
            tracks.append(_Track(next_id, boxes[c], t))
            ids[c] = next_id
            next_id += 1
        out.append(ids)
    return out


def choose_main(
    track_ids: list[np.ndarray],
    per_frame_boxes: list[np.ndarray],
    frame_size: tuple[int, int],
    hint: tuple[int, np.ndarray] | None = None,
) -> int | None:
    """Main track id (None without faces). ``hint``: (frame index, box) -- the track
    overlapping the box most at the nearest frame where it has a face wins."""
    w, h = frame_size
    stats: dict[int, list] = {}
    for ids, boxes in zip(track_ids, per_frame_boxes):
        for tid, b in zip(ids, np.asarray(boxes, float).reshape(-1, 4)):
            stats.setdefault(int(tid), []).append(b)
    if not stats:
        return None
    if hint is not None:
        frame, box = hint
        best = None
        for t in np.argsort(np.abs(np.arange(len(track_ids)) - frame), kind="stable"):
            if len(track_ids[t]):
                ov = iou(np.asarray(box, float)[None], per_frame_boxes[t])[0]
                if ov.max() > 0:
                    best = int(track_ids[t][int(np.argmax(ov))])
                    break
        if best is not None:
            return best
    n_frames = max(1, len(track_ids))
    diag = np.hypot(w, h) / 2
    scores = {}
    for tid, boxes in stats.items():
        b = np.stack(boxes)
        persistence = len(b) / n_frames
        size = np.median(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))) / min(w, h)
        cx, cy = np.median((b[:, 0] + b[:, 2]) / 2), np.median((b[:, 1] + b[:, 3]) / 2)
        centrality = 1 - min(1.0, np.hypot(cx - w / 2, cy - h / 2) / diag)
        scores[tid] = persistence * size * (0.5 + 0.5 * centrality)
    return max(scores, key=scores.get)
