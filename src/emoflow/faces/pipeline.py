"""Per-video face pipeline: detect on keyframes, track between them with O-Net on the
propagated boxes, re-detect when a face is lost, link tracks, pick the main face.

Full MTCNN runs on every ``detect_every``-th frame (all keyframes of a group of videos
in batches).  Between keyframes each face's box from the previous frame is refined by
O-Net on the current frame; a face whose O-Net probability drops below the last
threshold is lost; losing the largest face (the likely subject) triggers full MTCNN in
a region around where it was; other lost faces are picked up at the next keyframe.  A backward
pass then follows faces from later frames into earlier frames that have none (a face
the keyframe detector missed is picked up from the frame after).  A video where nothing
was found gets a rescue pass: every frame, relaxed thresholds, a finer pyramid, mirrored.  Every face
reported therefore carries a network probability and landmarks of its own frame.

Frames may be a list of arrays or a :class:`~emoflow.media.frames.LazyFrames` (a long
video, decoded on access): full detection fetches one batch at a time, so memory does not
grow with the video's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emoflow.faces.detect import Faces, MTCNNDetector
from emoflow.faces.track import choose_main, iou, link
from emoflow.media.frames import LazyFrames


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
    return _nms(
        Faces(
            np.concatenate([a.boxes, b.boxes]), np.concatenate([a.probs, b.probs]), np.concatenate([a.points, b.points])
        )
    )


class _View(Sequence):
    """Frames ``get(i)`` for ``i < n``, fetched only when accessed (``detect`` stacks one batch
    at a time), so detecting on every keyframe of a long video never holds them all."""

    def __init__(self, get, n: int, shape):
        self._get, self._n, self.shape_of = get, n, shape

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(self._n))]
        return self._get(i)


def _shape(frames, i: int) -> tuple:
    """Shape of ``frames[i]`` without decoding it where the sequence knows it."""
    if isinstance(frames, _View):
        return frames.shape_of(i)
    if isinstance(frames, LazyFrames):
        return frames.shape
    return frames[i].shape


def _detect_grouped(detector: MTCNNDetector, items, **kw) -> list[Faces]:
    """Full detection on frames of possibly different sizes (batched per size)."""
    out: list[Faces | None] = [None] * len(items)
    by_size: dict[tuple, list[int]] = {}
    for i in range(len(items)):
        by_size.setdefault(_shape(items, i), []).append(i)
    for idx in by_size.values():
        view = _View(lambda j, idx=idx: items[idx[j]], len(idx), lambda j, idx=idx: _shape(items, idx[j]))
        for i, f in zip(idx, detector.detect(view, **kw)):
            out[i] = f
    return out


def detect_and_track_many(
    detector: MTCNNDetector,
    videos: list[list[np.ndarray]],
    detect_every: int = 5,
    iou_min: float = 0.2,
    max_gap: int = 10,
    hints: list | None = None,
    rescue: dict | None = None,
) -> list[VideoFaces]:
    """Faces, tracks and the main track of several videos, detected in lockstep, so that keyframes, O-Net
    refinements and re-detections of all of them run as a few large batches."""
    thr = detector.thresholds[2]
    step = max(1, detect_every)
    faces = [[None] * len(v) for v in videos]
    detected = [[False] * len(v) for v in videos]
    keys = [(v, k) for v, frames in enumerate(videos) for k in range(0, len(frames), step)]
    keyframes = _View(
        lambda j: videos[keys[j][0]][keys[j][1]], len(keys), lambda j: _shape(videos[keys[j][0]], keys[j][1])
    )
    for (v, k), f in zip(keys, _detect_grouped(detector, keyframes)):
        faces[v][k], detected[v][k] = f, True
    for t in range(1, max((len(v) for v in videos), default=0)):
        todo = [v for v in range(len(videos)) if t < len(videos[v]) and faces[v][t] is None]
        follow = [v for v in todo if len(faces[v][t - 1])]
        for v in todo:
            if v not in follow:
                faces[v][t] = Faces.empty()  # nothing to follow: wait for the next keyframe
        refined = detector.refine([videos[v][t] for v in follow], [faces[v][t - 1].boxes for v in follow])
        lost = []
        for v, r in zip(follow, refined):
            ok = r.probs >= thr
            faces[v][t] = _nms(r.take(ok))
            prev = faces[v][t - 1].boxes
            largest = int(np.argmax((prev[:, 2] - prev[:, 0]) * (prev[:, 3] - prev[:, 1])))
            if not ok[largest]:  # lost the largest face (the likely subject): look again, properly
                lost.append((v, prev[largest]))
        found = detector.detect_regions([videos[v][t] for v, _ in lost], [box for _, box in lost])
        for (v, _), f in zip(lost, found):
            faces[v][t] = _merge(faces[v][t], f)
            detected[v][t] = True
    # backward pass: a face found at t+1 but missed at t (e.g. by a keyframe's detector)
    # is looked for at t with O-Net on the later box
    for t in range(max((len(v) for v in videos), default=0) - 2, -1, -1):
        back = [
            v for v in range(len(videos)) if t + 1 < len(videos[v]) and not len(faces[v][t]) and len(faces[v][t + 1])
        ]
        refined = detector.refine([videos[v][t] for v in back], [faces[v][t + 1].boxes for v in back])
        for v, r in zip(back, refined):
            faces[v][t] = _nms(r.take(r.probs >= thr))
    if rescue:  # videos where nothing was found: every frame, relaxed settings, mirrored too
        for v, frames in enumerate(videos):
            if frames and not any(len(f) for f in faces[v]):
                faces[v] = rescue_video(detector, frames, rescue)
                detected[v] = [True] * len(frames)
    out = []
    for v, frames in enumerate(videos):
        boxes = [f.boxes for f in faces[v]]
        tracks = link(boxes, iou_min=iou_min, max_gap=max_gap)
        h, w = frames[0].shape[:2] if frames else (1, 1)
        main = choose_main(tracks, boxes, (w, h), hints[v] if hints else None)
        out.append(VideoFaces(faces[v], detected[v], tracks, main))
    return out


def _unmirror(f: Faces, width: int) -> Faces:
    """Faces found in a horizontally mirrored frame, in the original frame's coordinates."""
    boxes = f.boxes.copy()
    boxes[:, [0, 2]] = width - 1 - f.boxes[:, [2, 0]]
    pts = f.points.copy()
    pts[:, :, 0] = width - 1 - pts[:, :, 0]
    pts = pts[:, [1, 0, 2, 4, 3]]  # the mirror's left eye is the face's right eye
    return Faces(boxes, f.probs, pts)


def rescue_video(detector: MTCNNDetector, frames: list[np.ndarray], settings: dict) -> list[Faces]:
    """Full MTCNN on every frame with relaxed thresholds and a finer pyramid; frames still
    without a face are tried mirrored (MTCNN is not mirror-symmetric)."""
    kw = {"thresholds": settings["thresholds"], "factor": settings["factor"]}
    found = _detect_grouped(detector, frames, **kw)
    if settings.get("mirror", True):
        empty = [i for i, f in enumerate(found) if not len(f)]
        flipped = _View(
            lambda j: np.ascontiguousarray(frames[empty[j]][:, ::-1]), len(empty), lambda j: _shape(frames, empty[j])
        )
        mirrored = _detect_grouped(detector, flipped, **kw)
        for i, f in zip(empty, mirrored):
            found[i] = _unmirror(f, frames[i].shape[1])
    return found
