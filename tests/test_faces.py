"""Face stage: the torchvision stand-in, detection on real photos, alignment geometry,
tracking of crossing faces, main-face choice, and a no-face video."""

import numpy as np
import pytest
import torch

from emoflow.faces import tv_compat
from emoflow.faces.align import align, apply, similarity, template
from emoflow.faces.read import iter_crops
from emoflow.faces.track import choose_main, iou, link


def reference_nms(boxes, scores, thr):
    """Plain greedy NMS straight from the definition (torchvision's documented semantics)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        ok = True
        for j in keep:
            xx1, yy1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            xx2, yy2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            a = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            b = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if inter / (a + b - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def random_boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    return np.hstack([xy, xy + wh]).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_batched_nms_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, 60)
    idxs = rng.integers(0, 3, 60)
    got = tv_compat.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5).tolist()
    expected = []
    for c in range(3):
        sel = np.flatnonzero(idxs == c)
        expected += [int(sel[k]) for k in reference_nms(boxes[sel].tolist(), scores[sel].tolist(), 0.5)]
    assert got == sorted(expected, key=lambda i: -scores[i])  # kept boxes, by decreasing score
    assert tv_compat.batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.5).numel() == 0


@pytest.mark.parametrize("method", ["Min", "Union"])
def test_final_nms_matches_facenet_without_ties_and_ignores_neighbours_with_ties(method):
    _, df = tv_compat.import_facenet()
    from facenet_pytorch.models.utils.detect_face import nms_numpy  # facenet's own, per category

    rng = np.random.default_rng(3)
    boxes, scores = random_boxes(rng, 80)
    boxes, scores = boxes.astype(np.float64), scores.astype(np.float64)
    idxs = rng.integers(0, 4, 80)
    got = tv_compat.batched_nms_numpy(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.7, method
    )
    expected = []
    for c in range(4):  # no ties here: facenet's result, category by category
        sel = np.flatnonzero(idxs == c)
        expected += [int(sel[k]) for k in nms_numpy(boxes[sel], scores[sel], 0.7, method)]
    assert got.tolist() == sorted(expected, key=lambda i: -scores[i])
    assert df.batched_nms_numpy is tv_compat.batched_nms_numpy and df.batched_nms is tv_compat.batched_nms

    # two candidates of one face with identical scores and different boxes (O-Net sees the
    # same rounded crop): the survivor must not depend on the other images in the batch
    face = np.array([[40.0, 40.0, 190.0, 245.0], [40.3, 39.9, 190.4, 245.1]])
    tie = np.array([0.98390529, 0.98390529])
    alone = tv_compat.batched_nms_numpy(
        torch.from_numpy(face), torch.from_numpy(tie), torch.zeros(2, dtype=torch.int64), 0.7, method
    )
    for n in (5, 40, 300):  # many other images' candidates, some with the same score
        others, other_scores = random_boxes(rng, n)
        other_scores[:3] = tie[0]
        b = torch.from_numpy(np.vstack([others.astype(np.float64), face]))
        sc = torch.from_numpy(np.concatenate([other_scores.astype(np.float64), tie]))
        cat = torch.from_numpy(np.concatenate([rng.integers(1, 9, n), [0, 0]]))
        got = tv_compat.batched_nms_numpy(b, sc, cat, 0.7, method).numpy()
        assert [int(i) - n for i in got if i >= n] == alone.tolist() == [1]


def test_to_tensor_semantics():
    u8 = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    t = tv_compat.to_tensor(u8)
    assert t.shape == (3, 2, 4) and t.dtype == torch.float32
    assert torch.allclose(t[:, 1, 2], torch.tensor([18, 19, 20]) / 255.0)
    f = tv_compat.to_tensor(np.float32(u8))
    assert f.dtype == torch.float32 and f.max() == 23  # non-uint8: not rescaled


def test_stand_in_is_only_there_while_facenet_imports():
    import sys

    mtcnn, detect_face = tv_compat.import_facenet()
    assert detect_face.batched_nms is not None and mtcnn.MTCNN is not None
    stub = sys.modules.get("torchvision")
    assert stub is None or not getattr(stub, "__emoflow_stub__", False)  # other libraries see the truth


def test_matches_real_torchvision_where_it_imports():
    if not tv_compat.torchvision_available():
        pytest.skip("torchvision does not import here (CPU torch); the definition tests above cover it")
    from torchvision.ops import batched_nms

    rng = np.random.default_rng(0)
    boxes, scores = random_boxes(rng, 80)
    idxs = torch.from_numpy(rng.integers(0, 4, 80))
    b, s = torch.from_numpy(boxes), torch.from_numpy(scores)
    assert tv_compat.batched_nms(b, s, idxs, 0.4).tolist() == batched_nms(b, s, idxs, 0.4).tolist()


@pytest.fixture(scope="module")
def detector():
    from emoflow.faces.detect import MTCNNDetector

    return MTCNNDetector(device="cpu", min_face=0.1, det_max_side=None)


def test_detects_known_faces_without_torchvision(detector):
    from skimage import data

    img = data.astronaut()
    f = detector.detect([img])[0]
    assert len(f) == 1 and f.probs[0] > 0.99
    # hand-placed landmarks of the astronaut (eyes, nose tip, mouth corners)
    known = np.array([[204, 101.3], [247.3, 103], [224.7, 125.3], [204, 141.3], [244.7, 142]])
    assert np.abs(f.points[0] - known).max() < 5
    assert iou(f.boxes[0], [[180, 62, 268, 172]])[0, 0] > 0.85
    assert len(detector.detect([np.full((200, 200, 3), 127, np.uint8)])[0]) == 0


def test_refine_recovers_a_shifted_box(detector):
    from skimage import data

    img = data.astronaut()
    f = detector.detect([img])[0]
    moved = f.boxes + np.array([10, -6, 10, -6], np.float32)
    r = detector.refine([img], [moved])[0]
    assert r.probs[0] > 0.9
    assert np.abs(r.points[0] - f.points[0]).max() < 4
    assert iou(r.boxes[0], f.boxes)[0, 0] > 0.85


def test_alignment_puts_landmarks_on_the_template():
    rng = np.random.default_rng(1)
    tpl = template(112, 0.1)
    angle, scale, shift = 0.4, 2.3, np.array([40.0, 17.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lm = (tpl @ rot.T) * scale + shift + rng.normal(0, 0.5, tpl.shape)
    m = similarity(lm, tpl)
    assert np.abs(apply(m, lm) - tpl).max() < 1.5
    # and the crop really shows what was at the landmarks: paint dots there, align, find them
    img = np.zeros((400, 400, 3), np.uint8)
    for x, y in lm.round().astype(int):
        img[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop, _ = align(img, lm, 112, 0.1)
    for x, y in tpl.round().astype(int):
        assert crop[y - 1 : y + 2, x - 1 : x + 2].max() > 100


def test_tracks_two_faces_that_cross():
    # face A (big) moves right, face B (small) moves left; they overlap mid-sequence
    a_boxes, frames = [], []
    for t in range(30):
        ax, bx = 10 + 6 * t, 190 - 6 * t
        a, b = [ax, 50, ax + 60, 110], [bx, 55, bx + 45, 100]
        frames.append(np.array([b, a] if t % 2 else [a, b], float))  # detector order varies
        a_boxes.append(a)
    ids = link(frames)
    a_ids = [int(ids[t][1 if t % 2 else 0]) for t in range(30)]
    b_ids = [int(ids[t][0 if t % 2 else 1]) for t in range(30)]
    assert len(set(a_ids)) == 1 and len(set(b_ids)) == 1 and a_ids[0] != b_ids[0]


def test_main_face_by_persistence_size_centrality_and_hint():
    boxes, ids = [], []
    for t in range(20):
        f = [[100, 80, 180, 160]]  # big, central, always there
        if t < 5:
            f.append([5, 5, 40, 40])  # small, corner, brief
        boxes.append(np.array(f, float))
    ids = link(boxes)
    main = choose_main(ids, boxes, (280, 240))
    assert main == int(ids[0][0])
    hinted = choose_main(ids, boxes, (280, 240), hint=(2, np.array([0, 0, 45, 45])))
    assert hinted == int(ids[0][1])


def test_face_stage_on_a_face_video_and_a_faceless_one(tmp_path):
    import json
    import subprocess

    import pandas as pd
    from PIL import Image
    from skimage import data

    from conftest import REPO, make_video
    from emoflow.config import load_config
    from emoflow.dataset.sheet import write_sheet
    from emoflow.faces import stage
    from emoflow.media import frames, probe
    from emoflow.storage import read_table

    Image.fromarray(data.astronaut()).save(tmp_path / "astro.png")
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-loop",
            "1",
            "-i",
            str(tmp_path / "astro.png"),
            "-t",
            "1.2",
            "-r",
            "10",
            "-vf",
            "scale=256:256",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(tmp_path / "face.mp4"),
        ],
        check=True,
    )
    make_video(tmp_path / "noface.mp4", duration=1.0, size=(128, 96), fps=10, pattern="testsrc")
    sheet = tmp_path / "sheet.parquet"
    write_sheet(
        pd.DataFrame(
            {"video_id": ["face", "noface"], "path": [str(tmp_path / "face.mp4"), str(tmp_path / "noface.mp4")]}
        ),
        str(sheet),
    )
    cfg = json.loads(json.dumps(load_config([REPO / "config.yaml"])))
    cfg["frames"].update(fps=5, max_side=256)
    cfg["faces"].update(device="cpu", min_face=0.1, detect_every=3)
    p = {
        k: str(tmp_path / f"{k}.parquet") for k in ("probe", "ps", "frames", "fs", "faces", "videos", "crops", "skips")
    }
    probe.run(str(sheet), p["probe"], p["ps"], cfg)
    frames.run(str(sheet), p["probe"], p["frames"], p["fs"], cfg)
    rows, skips = stage.run(str(sheet), p["probe"], p["frames"], p["faces"], p["videos"], p["crops"], p["skips"], cfg)
    by_id = {r["video_id"]: r for r in rows}
    assert by_id["face"]["coverage"] == 1.0 and by_id["face"]["n_frames"] == 6
    assert by_id["noface"]["n_main"] == 0 and by_id["noface"]["main_track"] is None
    assert [(s["video_id"], s["kind"]) for s in skips] == [("noface", "missing")]
    faces = read_table(p["faces"]).to_pandas()
    assert (faces["video_id"] == "face").all() and faces["is_main"].all()
    assert faces["detected"].tolist() == [True, False, False, True, False, False]  # keyframes every 3
    assert (faces["prob"] > 0.9).all() and len(faces["landmarks"][0]) == 10
    items = {it.video_id: it for it in iter_crops(str(sheet), p["videos"], p["crops"], p["faces"])}
    assert items["noface"].data is None and "no face" in items["noface"].missing_reason
    clip = items["face"].data
    fr, color, grey = clip.frames.tolist(), clip.color, clip.grey
    assert fr == list(range(6)) and color[0].shape == (112, 112, 3) and grey[0].shape == (48, 48)
    # the aligned crop's eyes sit where the template puts them: darker than the cheeks
    g = grey[0].astype(float)
    tpl = template(48, cfg["faces"]["margin"]).round().astype(int)
    eye = g[tpl[0][1] - 1 : tpl[0][1] + 2, tpl[0][0] - 1 : tpl[0][0] + 2].mean()
    cheek = g[tpl[0][1] + 6 : tpl[0][1] + 9, tpl[0][0] - 1 : tpl[0][0] + 2].mean()
    assert eye < cheek


def test_mirrored_detection_maps_back(detector):
    from skimage import data

    from emoflow.faces.pipeline import _unmirror

    img = data.astronaut()
    direct = detector.detect([img])[0]
    back = _unmirror(detector.detect([np.ascontiguousarray(img[:, ::-1])])[0], img.shape[1])
    assert iou(back.boxes[0], direct.boxes)[0, 0] > 0.85
    assert np.abs(back.points[0] - direct.points[0]).max() < 6  # left eye is still the left eye
