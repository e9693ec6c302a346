"""Models kept loaded across stage calls in one process (the warm predictor).

A workflow job is one process per shard, so each stage builds its models once and exits.
The predictor (``emoflow predict``, :class:`emoflow.Recognizer`) instead calls the same stage
entry points in-process, again and again; inside :func:`keeping` a stage's model
constructor goes through :func:`model`, which returns the instance an earlier call built
from the same settings.  Outside it (every workflow job) :func:`model` just builds.

The key is the settings themselves (JSON) plus the size and modification time of every
file they name, so a model never outlives the files it was loaded from.  Models are only
read by the stages (``extract`` / ``detect`` calls), never trained, so sharing one between
calls gives the same numbers as loading it afresh.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

_ACTIVE: contextvars.ContextVar[ModelCache | None] = contextvars.ContextVar("emoflow_models", default=None)


class ModelCache:
    """Loaded models by key; :meth:`__len__` says how many are held."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._models)

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._models:
            self._models[key] = build()
        return self._models[key]

    def clear(self) -> None:
        self._models.clear()


@contextlib.contextmanager
def keeping(cache: ModelCache) -> Iterator[ModelCache]:
    """Stage calls inside the block reuse the models ``cache`` holds (and add theirs)."""
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def _files(value, out: list) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _files(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _files(v, out)
    elif isinstance(value, str) and len(value) < 4096 and os.path.isfile(value):
        st = os.stat(value)
        out.append([value, st.st_size, st.st_mtime_ns])


def key(kind: str, settings, threads: int | None = None) -> str:
    """A model's identity: its kind, its settings, its thread count and the files they name."""
    stamps: list = []
    _files(settings, stamps)
    return json.dumps([kind, settings, threads, stamps], sort_keys=True, default=str)


def model(kind: str, settings, build: Callable[[], Any], threads: int | None = None) -> Any:
    """``build()``, or inside :func:`keeping` the model an earlier call built with the same
    ``kind``, ``settings`` (JSON-able) and ``threads``."""
    cache = _ACTIVE.get()
    if cache is None:
        return build()
    return cache.get(key(kind, settings, threads), build)
