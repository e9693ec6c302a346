"""The two torchvision functions facenet-pytorch imports, for machines without a
working torchvision (its PyPI wheels are CUDA builds that fail to import beside a CPU
torch).  Where torchvision imports, it is used and nothing here is installed.

``install()`` registers a minimal ``torchvision`` package in ``sys.modules`` that holds
only ``ops.boxes.batched_nms`` and ``transforms.functional.to_tensor`` -- the only names
``facenet_pytorch.models.utils.detect_face`` imports -- and only when the real one
cannot be imported.  Semantics follow torchvision's documentation; the tests compare
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
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = torch.argsort(scores, descending=True, stable=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep).to(torch.int64)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category ``idxs`` independently (torchvision.ops.batched_nms)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)  # boxes of different categories never overlap
    return nms(boxes + offsets[:, None], scores, iou_threshold)


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
    for name in ("torchvision", "torchvision.ops", "torchvision.ops.boxes", "torchvision.transforms", "torchvision.transforms.functional"):
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
