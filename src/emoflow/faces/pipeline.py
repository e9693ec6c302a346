"""Per-video face pipeline: detect on keyframes, track between them with O-Net on the
propagated boxes, re-detect when a face is lost, link tracks, pick the main face.

Full MTCNN runs on every ``detect_every``-th frame (all keyframes of a video in
batches).  Between keyframes each face's box from the previous frame is refined by
O-Net on the current frame; a face whose O-Net probability drops below the last
threshold is lost, and a lost face triggers full detection on that frame.  Every face
reported therefore carries a network probability and landmarks of its own frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emoflow.faces.detect import Faces, MTCNNDetector
from emoflow.faces.track import choose_main, iou, link


@dataclass
class VideoFaces:
    faces: list[Faces]  # per frame
    detected: list[bool]  # frame ran full detection
    tracks: list[np.ndarray]  # per frame, track id per face
    main: int | None  # main track id


def _nms(f: Faces, thr: float = 0.5) -> Faces:
    if len(f) < 2:
        return f
    order = np.argsort(-f.probs, kind="stable")
    keep = []
    for i in order:
        if all(iou(f.boxes[i], f.boxes[j])[0, 0] <= thr for j in keep):
            keep.append(i)
    return f.take(np.array(sorted(keep)))


def _merge(a: Faces, b: Faces) -> Faces:
    return _nms(Faces(np.concatenate([a.boxes, b.boxes]), np.concatenate([a.probs, b.probs]), np.concatenate([a.points, b.points])))


def detect_and_track(
    detector: MTCNNDetector,
    frames: list[np.ndarray],
    detect_every: int = 5,
    iou_min: float = 0.2,
    max_gap: int = 10,
    hint: tuple[int, np.ndarray] | None = None,
) -> VideoFaces:
    n = len(frames)
    thr = detector.thresholds[2]
    faces: list[Faces | None] = [None] * n
    detected = [False] * n
    keys = list(range(0, n, max(1, detect_every)))
    for k, f in zip(keys, detector.detect([frames[k] for k in keys])):
        faces[k], detected[k] = f, True
    for t in range(1, n):
        if faces[t] is not None:
            continue
        prev = faces[t - 1]
        if len(prev) == 0:
            faces[t] = Faces.empty()  # nothing to follow: wait for the next keyframe
            continue
        refined = detector.refine([frames[t]], [prev.boxes])[0]
        kept = _nms(refined.take(refined.probs >= thr))
        if len(kept) < len(prev):  # lost a face: look again, properly
            kept = _merge(kept, detector.detect([frames[t]])[0])
            detected[t] = True
        faces[t] = kept
    if n and faces[0] is None:
        faces[0] = Faces.empty()
    boxes = [f.boxes for f in faces]
    tracks = link(boxes, iou_min=iou_min, max_gap=max_gap)
    h, w = frames[0].shape[:2] if n else (1, 1)
    main = choose_main(tracks, boxes, (w, h), hint)
    return VideoFaces(faces, detected, tracks, main)
