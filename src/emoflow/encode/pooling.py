"""Statistical pooling of frame features over time (no learnt model unless ``pca`` is set).

For frames ``z_1..z_n`` (after the optional PCA, see :mod:`emoflow.encode.base`):

``mean``     ``(1/n) sum_t z_t``                                        dim D
``max``      ``max_t z_t`` per dimension                                dim D
``meanstd``  ``[mean, std]`` with the population std
             ``sqrt((1/n) sum_t (z_t - mean)^2)`` (0 for one frame)      dim 2D

Computed in float64, returned as float32.  No normalisation is applied.
"""

from __future__ import annotations

import numpy as np

from emoflow.encode.base import Encoder, common_params, register


class _Pooling(Encoder):
    params_spec = common_params(pca=None)

    def _out_dim(self, d: int) -> int:
        return d


@register
class MeanEncoder(_Pooling):
    """Temporal average of the frame features."""

    kind = "mean"

    def _encode(self, z: np.ndarray) -> np.ndarray:
        return z.mean(axis=0, dtype=np.float64)


@register
class MaxEncoder(_Pooling):
    """Per-dimension temporal maximum of the frame features."""

    kind = "max"

    def _encode(self, z: np.ndarray) -> np.ndarray:
        return z.max(axis=0)


@register
class MeanStdEncoder(_Pooling):
    """Concatenated temporal mean and (population) standard deviation."""

    kind = "meanstd"

    def _out_dim(self, d: int) -> int:
        return 2 * d

    def _encode(self, z: np.ndarray) -> np.ndarray:
        z64 = z.astype(np.float64)
        return np.concatenate([z64.mean(axis=0), z64.std(axis=0)])
