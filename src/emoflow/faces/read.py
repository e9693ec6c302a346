"""The face stage's outputs read back: one :class:`Clip` per video of a shard (the main
face's aligned crops, landmarks and boxes), for the stages that read faces."""

from __future__ import annotations

import numpy as np

from emoflow.items import Item
from emoflow.storage import read_table


class Clip:
    """One video's main face, frame by frame (only frames where it was found):

    ``frames`` (n,) sampled-frame indices, ``times`` (n,) seconds, ``grey`` (n, g, g) uint8
    aligned grey crops, ``color`` (n, c, c, 3) uint8 aligned colour crops (decoded on first
    use), ``landmarks`` (n, 5, 2) MTCNN points (eyes, nose, mouth corners) and ``boxes``
    (n, 4) in stored-frame pixels, ``frame_size`` (width, height) of the stored frames.
    ``crop_to_frame`` maps points of a crop back to frame pixels (the alignment's inverse).
    """

    def __init__(self, video_id, frames, times, grey, color_jpegs, landmarks, boxes, frame_size, margin=0.0):
        self.video_id = video_id
        self.frames = np.asarray(frames, np.int64)
        self.times = np.asarray(times, np.float64)
        self.grey = grey
        self._color_jpegs = color_jpegs
        self._color = None
        self.landmarks = landmarks
        self.boxes = boxes
        self.frame_size = frame_size
        self.margin = margin

    def crop_to_frame(self, k: int, points: np.ndarray, crop_size: int) -> np.ndarray:
        """Points (m, 2) in frame ``k``'s aligned crop of side ``crop_size`` -> frame pixels."""
        from emoflow.faces.align import similarity, template

        m = np.vstack([similarity(self.landmarks[k], template(crop_size, self.margin)), [0, 0, 1]])
        inv = np.linalg.inv(m)[:2]
        pts = np.asarray(points, np.float64)
        return pts @ inv[:, :2].T + inv[:, 2]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def color(self) -> np.ndarray:
        if self._color is None:
            import io

            from PIL import Image

            self._color = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in self._color_jpegs])
        return self._color


def iter_crops(sheet: str, videos: str, crops: str, faces: str, margin: float = 0.0):
    """A :class:`Clip` for every video of the shard sheet, in sheet order; videos without a
    main face (or without frames) come back missing, with the reason."""
    import pyarrow.compute as pc

    order = read_table(sheet, columns=["video_id"])["video_id"].to_pylist()
    vrows = {r["video_id"]: r for r in read_table(videos).to_pylist()}
    ctab = read_table(crops)
    ftab = read_table(faces, columns=["video_id", "frame", "x1", "y1", "x2", "y2", "landmarks", "is_main"])
    ftab = ftab.filter(ftab["is_main"])
    cidx, fidx = _row_index(ctab), _row_index(ftab)
    for vid in order:
        v = vrows.get(vid)
        if v is None:
            yield Item(vid, None, "no sampled frames (see the frames and faces skip tables)")
            continue
        if not cidx.get(vid):
            yield Item(vid, None, f"no face found in {v['n_frames']} sampled frames")
            continue
        c = ctab.take(cidx[vid]).sort_by("frame")
        f = ftab.take(fidx.get(vid, [])).sort_by("frame")
        # the main face's rows, matched to the crops frame by frame
        f = f.filter(pc.is_in(f["frame"], value_set=c["frame"]))
        if f.num_rows != c.num_rows:  # crops are written exactly for the main face's rows
            raise ValueError(f"{crops}: {vid}: {c.num_rows} crops but {f.num_rows} main-face rows in {faces}")
        grey = np.stack([np.frombuffer(b, np.uint8) for b in c["grey"].to_pylist()])
        g = int(round(np.sqrt(grey.shape[1])))
        landmarks = np.asarray(f["landmarks"].to_pylist(), np.float64).reshape(-1, 5, 2)
        boxes = np.stack([f[k].to_numpy() for k in ("x1", "y1", "x2", "y2")], axis=1).astype(np.float64)
        yield Item(
            vid,
            Clip(
                vid,
                c["frame"].to_numpy(),
                c["time"].to_numpy(),
                grey.reshape(-1, g, g),
                c["color"].to_pylist(),
                landmarks,
                boxes,
                (v["frame_width"], v["frame_height"]),
                margin,
            ),
        )


def _row_index(table) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, vid in enumerate(table["video_id"].to_pylist()):
        index.setdefault(vid, []).append(i)
    return index
