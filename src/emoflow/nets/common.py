"""Device choice, threads and seeding for the PyTorch models."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np


def pick_device(preference: str = "auto"):
    """``auto``: the first visible CUDA device when there is one, else the CPU."""
    import torch

    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def setup_torch(threads: int = 1, seed: int | None = 0):
    """Intra-op threads for CPU work and (optionally) every random generator seeded."""
    import torch

    torch.set_num_threads(max(1, threads))
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    return torch


def batches(n: int, size: int):
    """Slices covering range(n) in order, ``size`` at a time."""
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def bf16_supported(device) -> bool:
    """Fast bfloat16 on this device: CUDA that supports it, or a CPU with AVX512-BF16/AMX."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_matching(net, path: str, log=None) -> list[str]:
    """Copy into ``net`` the tensors of a checkpoint that fit it: a state dict, a dict with
    ``state_dict``, or a fit's ``.json`` (its ``.pt`` beside it).  Tensors whose shape does
    not fit (e.g. a class layer of another label space) stay as initialised; their names
    are returned."""
    import torch

    from emoflow.errors import EmoflowError

    p = Path(path)
    state = torch.load(p.with_suffix(".pt") if p.suffix == ".json" else p, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = net.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise EmoflowError(f"{path}: no tensor of this checkpoint fits the {type(net).__name__} configured")
    left = sorted(set(own) - set(fits))
    net.load_state_dict(fits, strict=False)
    if log:
        log(f"init: {len(fits)} tensors from {path}" + (f"; kept as initialised: {', '.join(left)}" if left else ""))
    return left
