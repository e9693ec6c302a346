"""MTCNN face detection (facenet-pytorch's networks and weights), batched, on the best
device, with a cheap *refine* step for tracking.

``detect(frames)`` runs the full three-stage MTCNN on a batch of equal-size frames,
downscaled so the longer side is at most ``det_max_side``, with the pyramid starting
at ``min_face`` (a fraction of the frame's shorter side).  ``refine(frames, boxes)``
runs only the last network (O-Net) on given boxes -- e.g. a face's box in the previous
frame -- exactly as MTCNN's third stage does on its own candidates: every face it
reports carries O-Net's own probability, regressed box and five landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from emoflow.faces import tv_compat
from emoflow.nets.common import pick_device


@dataclass
class Faces:
    """Faces of one frame, in frame pixel coordinates."""

    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2
    probs: np.ndarray  # (n,)
    points: np.ndarray  # (n, 5, 2): left eye, right eye, nose, left mouth, right mouth

    @staticmethod
    def empty() -> "Faces":
        return Faces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.probs)

    def take(self, idx) -> "Faces":
        return Faces(self.boxes[idx], self.probs[idx], self.points[idx])


class MTCNNDetector:
    def __init__(
        self,
        device: str = "auto",
        min_face: float = 0.1,
        det_max_side: int | None = 640,
        thresholds=(0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int = 32,
        precision: str = "float64",
    ):
        mtcnn, df = tv_compat.import_facenet()
        self._df = df
        self.device = pick_device(device)
        # float64 by default: float32 convolutions round differently with the batch's size and
        # contents (BLAS blocking), so a video's boxes would move by ~1e-5 px with the other
        # videos batched beside it; in float64 that noise stays far below float32 resolution,
        # so every video's faces are reproducible whatever its shard (and by emoflow predict).
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[precision]
        self.pnet, self.rnet, self.onet = (
            net().to(self.device, self.dtype).eval() for net in (mtcnn.PNet, mtcnn.RNet, mtcnn.ONet)
        )
        self.min_face = min_face
        self.det_max_side = det_max_side
        self.thresholds = tuple(thresholds)
        self.factor = factor
        self.batch_size = batch_size

    # -- full detection ---------------------------------------------------------------
    def _scale(self, h: int, w: int) -> float:
        if self.det_max_side and max(h, w) > self.det_max_side:
            return self.det_max_side / max(h, w)
        return 1.0

    @torch.inference_mode()
    def detect(
        self, frames: list[np.ndarray], min_face=None, thresholds=None, factor=None, max_side="default"
    ) -> list[Faces]:
        """Full MTCNN on equal-size HxWx3 uint8 frames (keyword arguments override the
        detector's settings for this call)."""
        if not frames:
            return []
        h, w = frames[0].shape[:2]
        s = self._scale(h, w) if max_side == "default" else (min(1.0, max_side / max(h, w)) if max_side else 1.0)
        min_face = self.min_face if min_face is None else min_face
        thresholds = list(self.thresholds if thresholds is None else thresholds)
        factor = self.factor if factor is None else factor
        minsize = max(12.0, min_face * min(h, w) * s)
        out: list[Faces] = []
        for i in range(0, len(frames), self.batch_size):
            batch = torch.from_numpy(np.stack(frames[i : i + self.batch_size])).to(self.device)  # stack copies
            if s != 1.0:
                x = batch.permute(0, 3, 1, 2).to(self.dtype)
                size = (max(1, round(h * s)), max(1, round(w * s)))
                batch = torch.nn.functional.interpolate(x, size=size, mode="area").permute(0, 2, 3, 1)
            boxes, points = self._df.detect_face(
                batch, minsize, self.pnet, self.rnet, self.onet, thresholds, factor, self.device
            )
            for b, p in zip(boxes, points):
                b = np.asarray(b, np.float32).reshape(-1, 5)
                p = np.asarray(p, np.float32).reshape(-1, 5, 2)
                out.append(Faces(b[:, :4] / s, b[:, 4].copy(), p / s))
        return out

    @torch.inference_mode()
    def detect_regions(
        self, frames: list[np.ndarray], boxes: list[np.ndarray], expand: float = 2.5, max_size: int = 160
    ) -> list[Faces]:
        """Full MTCNN in a square region around each box (``expand`` x its side, at most
        ``max_size`` pixels after resizing): looking for a lost face where it was, at a
        fraction of the cost of the whole frame.  Faces come back in frame coordinates."""
        crops, origins = [], []
        for frame, box in zip(frames, boxes):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            side = expand * max(box[2] - box[0], box[3] - box[1], 12)
            size = int(min(max(side, 48), max_size))
            x0, y0 = cx - side / 2, cy - side / 2
            img = Image.fromarray(frame).transform(
                (size, size), Image.EXTENT, (x0, y0, x0 + side, y0 + side), Image.BILINEAR
            )
            crops.append(np.asarray(img))
            origins.append((x0, y0, side / size))
        found: list[Faces | None] = [None] * len(crops)
        by_size: dict[int, list[int]] = {}
        for i, c in enumerate(crops):
            by_size.setdefault(c.shape[0], []).append(i)
        for idx in by_size.values():  # the face is ~1/expand of its region
            for i, f in zip(idx, self.detect([crops[i] for i in idx], min_face=0.5 / expand, max_side=None)):
                found[i] = f
        out = []
        for f, (x0, y0, k) in zip(found, origins):
            shift = np.array([x0, y0], np.float32)
            out.append(Faces(f.boxes * k + np.tile(shift, 2), f.probs, f.points * k + shift))
        return out

    # -- O-Net on given boxes ---------------------------------------------------------
    @torch.inference_mode()
    def refine(self, frames: list[np.ndarray], boxes: list[np.ndarray]) -> list[Faces]:
        """O-Net on ``boxes[i]`` (n_i x 4) in ``frames[i]``: probability, regressed box and
        landmarks of each box (no thresholding: the caller decides)."""
        df = self._df
        crops, owner, squares = [], [], []
        for i, (frame, bx) in enumerate(zip(frames, boxes)):
            if len(bx) == 0:
                continue
            h, w = frame.shape[:2]
            sq = df.rerec(torch.as_tensor(np.asarray(bx, np.float32)).to(self.dtype).clone())
            y, ey, x, ex = df.pad(sq, w, h)  # 1-based, clipped to the frame, as MTCNN's stages
            for k in range(len(sq)):
                if ey[k] > y[k] - 1 and ex[k] > x[k] - 1:
                    patch = Image.fromarray(frame[y[k] - 1 : ey[k], x[k] - 1 : ex[k]]).resize((48, 48), Image.BOX)
                    crops.append(np.asarray(patch))
                else:  # box entirely outside the frame
                    crops.append(np.zeros((48, 48, 3), np.uint8))
                owner.append(i)
                squares.append(sq[k])
        result = [Faces.empty() for _ in frames]
        if not crops:
            return result
        data = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).to(self.dtype)
        data = (data - 127.5) * 0.0078125
        reg, pts, prob = df.fixed_batch_process(data, self.onet)
        sq = torch.stack(squares).to(self.device)
        score = prob[:, 1]
        wi = sq[:, 2] - sq[:, 0] + 1
        hi = sq[:, 3] - sq[:, 1] + 1
        px = wi[:, None] * pts[:, :5] + sq[:, 0:1] - 1
        py = hi[:, None] * pts[:, 5:] + sq[:, 1:2] - 1
        points = torch.stack([px, py], dim=2)
        boxes_out = df.bbreg(torch.cat([sq, score[:, None]], dim=1).clone(), reg)
        owner = np.asarray(owner)
        b_np, p_np, s_np = boxes_out[:, :4].cpu().numpy(), points.cpu().numpy(), score.cpu().numpy()
        for i in set(owner.tolist()):
            sel = owner == i
            result[i] = Faces(b_np[sel].astype(np.float32), s_np[sel].astype(np.float32), p_np[sel].astype(np.float32))
        return result
