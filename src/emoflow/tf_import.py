"""Import TensorFlow the one way emoflow does it: quiet logs, and openSMILE first.

openSMILE's native library corrupts the heap (``malloc(): invalid size``, the process
aborts) when it is first loaded after TensorFlow in the same process; loaded before, both
work.  Workflow jobs keep them in separate processes, but tests, benchmarks and the
predictor may hold both, so every TensorFlow import goes through :func:`tensorflow`.
"""

from __future__ import annotations

import importlib.util
import os


def tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if importlib.util.find_spec("opensmile") is not None:
        import opensmile  # noqa: F401  (load order: see the module docstring)
    import tensorflow as tf

    return tf
