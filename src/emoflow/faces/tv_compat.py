"""The two torchvision functions facenet-pytorch imports, for machines without a
working torchvision (its PyPI wheels are CUDA builds that fail to import beside a CPU
torch).  Where torchvision imports, it is used and nothing here is installed.

``install()`` registers a minimal ``torchvision`` package in ``sys.modules`` that holds
only ``ops.boxes.batched_nms`` and ``transforms.functional.to_tensor`` -- the only names
``facenet_pytorch.models.utils.detect_face`` imports -- and only when the real one
cannot be imported; ``import_facenet()`` does so just for the import of facenet-pytorch
and takes the stand-in out again, so other libraries never see a fake torchvision.  Semantics follow torchvision's documentation; the tests compare
them with an independent NMS and, where torchvision exists, with torchvision itself.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes (x1, y1, x2, y2), by decreasing score; a box is
    dropped when its IoU with a kept, higher-scoring box is greater than the threshold."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    b = boxes.detach().cpu().double().numpy()
    order = np.argsort(-scores.detach().cpu().numpy(), kind="stable")
    b = b[order]
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    removed = np.zeros(len(b), bool)
    keep = []
    for i in range(len(b)):  # one cheap vector step per kept box
        if removed[i]:
            continue
        keep.append(i)
        rest = np.arange(i + 1, len(b))
        rest = rest[~removed[rest]]
        if not len(rest):
            break
        w = np.clip(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0, None)
        h = np.clip(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0, None)
        inter = w * h
        removed[rest[inter / (areas[i] + areas[rest] - inter) > iou_threshold]] = True
    return torch.as_tensor(order[keep], dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category ``idxs`` independently (torchvision.ops.batched_nms): kept
    indices by decreasing score, ties in input order.  Each category is suppressed on its own
    (torchvision shifts the categories apart by an offset that depends on the largest
    coordinate of the whole batch, which changes the rounding of every IoU: an image's faces
    would then depend on the other images batched with it)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    cats = idxs.detach().cpu().numpy()
    keep = []
    for c in np.unique(cats):
        members = np.flatnonzero(cats == c)
        sel = torch.as_tensor(members, device=boxes.device)
        keep.append(members[nms(boxes[sel], scores[sel], iou_threshold).cpu().numpy()])
    keep = np.concatenate(keep)
    s = scores.detach().cpu().numpy()[keep]
    return torch.as_tensor(keep[np.lexsort((keep, -s))], dtype=torch.int64, device=boxes.device)


def batched_nms_numpy(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, threshold: float, method: str
) -> torch.Tensor:
    """facenet-pytorch's final-stage NMS (areas with +1, overlap over the union or, with
    ``method='Min'``, over the smaller box), per category on its own and with a fixed
    tie-break.  facenet's own version sorts the whole batch's scores with an unstable sort:
    two O-Net candidates of one face often get *identical* scores (their crops round to the
    same pixels) but different boxes, and which one survives then depends on the other
    images in the batch.  Here ties go to the later candidate (what the unstable sort gives
    for a lone image), so an image's faces are the same whatever it is batched with."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    b = boxes.detach().cpu().double().numpy()
    s = scores.detach().cpu().double().numpy()
    cats = idxs.detach().cpu().numpy()
    keep = []
    for c in np.unique(cats):
        members = np.flatnonzero(cats == c)
        x1, y1, x2, y2 = (b[members, j] for j in range(4))
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        order = list(np.argsort(s[members], kind="stable"))  # ascending; the best is last
        while order:
            i = order.pop()
            keep.append(members[i])
            if not order:
                break
            rest = np.asarray(order)
            w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
            h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
            inter = w * h
            o = inter / (np.minimum(area[i], area[rest]) if method == "Min" else area[i] + area[rest] - inter)
            order = list(rest[o <= threshold])
    keep = np.asarray(keep, dtype=np.int64)
    return torch.as_tensor(keep[np.lexsort((-keep, -s[keep]))], dtype=torch.int64, device=boxes.device)


def to_tensor(pic) -> torch.Tensor:
    """HWC ndarray or PIL image -> CHW tensor; uint8 is scaled to [0, 1], other dtypes
    are kept (torchvision.transforms.functional.to_tensor)."""
    if not isinstance(pic, np.ndarray):
        pic = np.array(pic, copy=True)
    if pic.ndim == 2:
        pic = pic[:, :, None]
    img = torch.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1))))
    if img.dtype == torch.uint8:
        return img.to(torch.get_default_dtype()).div(255)
    return img


def torchvision_available() -> bool:
    mod = sys.modules.get("torchvision")
    if mod is not None:
        return not getattr(mod, "__emoflow_stub__", False)
    try:
        import torchvision  # noqa: F401
    except Exception:  # CUDA wheels beside CPU torch fail in many ways
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


def install() -> bool:
    """Make ``import torchvision.ops.boxes`` / ``torchvision.transforms.functional``
    work; True if the stand-in was installed (False: the real torchvision is used)."""
    if torchvision_available():
        return False
    if "torchvision" in sys.modules:
        return True
    pkgs = {}
    for name in (
        "torchvision",
        "torchvision.ops",
        "torchvision.ops.boxes",
        "torchvision.transforms",
        "torchvision.transforms.functional",
    ):
        mod = types.ModuleType(name)
        mod.__emoflow_stub__ = True
        mod.__path__ = []  # a package, so submodule imports resolve through sys.modules
        pkgs[name] = mod
    pkgs["torchvision.ops.boxes"].batched_nms = batched_nms
    pkgs["torchvision.ops"].batched_nms = batched_nms
    pkgs["torchvision.ops"].boxes = pkgs["torchvision.ops.boxes"]
    pkgs["torchvision.transforms.functional"].to_tensor = to_tensor
    pkgs["torchvision.transforms"].functional = pkgs["torchvision.transforms.functional"]
    pkgs["torchvision"].ops = pkgs["torchvision.ops"]
    pkgs["torchvision"].transforms = pkgs["torchvision.transforms"]
    sys.modules.update(pkgs)
    return True


def uninstall() -> None:
    """Remove the stand-in (if installed) from ``sys.modules``."""
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        if getattr(sys.modules[name], "__emoflow_stub__", False):
            del sys.modules[name]


def import_facenet():
    """``facenet_pytorch.models.mtcnn`` and ``...utils.detect_face``, imported with the
    stand-in in place only while they import (they keep their references to it)."""
    installed = install()
    try:
        from facenet_pytorch.models import mtcnn
        from facenet_pytorch.models.utils import detect_face
    finally:
        if installed:
            uninstall()
    # the NMS steps, per image and with fixed tie-breaks (also where torchvision exists):
    # an image's faces must not depend on the images batched with it
    detect_face.batched_nms = batched_nms
    detect_face.batched_nms_numpy = batched_nms_numpy
    return mtcnn, detect_face
