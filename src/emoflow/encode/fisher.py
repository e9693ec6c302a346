"""Improved Fisher vector encoding of a video's frames (Perronnin, Sánchez & Mensink, ECCV 2010,
"Improving the Fisher kernel for large-scale image classification"), as computed by VLFeat's
``vl_fisher`` (through ``cyvlfeat.fisher.fisher``).

Model.  A GMM with K diagonal-covariance components (priors pi_k, means mu_k, variances
sigma_k^2) is fitted on the training frames (after the optional PCA to D dims) by VLFeat's EM
(``vl_gmm``, the compiled routine behind ``cyvlfeat.gmm.gmm``).  VLFeat's own random
initialisation cannot be seeded from Python, so EM starts (``init_mode="custom"``) from
scikit-learn k-means run with ``seed``: means = centres, variances = per-cluster variances
(global variance for clusters with < 2 frames), priors = cluster fractions.  All variances
are bounded below by the scalar ``max(var_floor * mean_d var_d, 1e-10)`` (var_d: training
variance of dimension d), in EM and after it, so that constant dimensions or duplicated
frames cannot make 1/sigma infinite.

Encoding of frames x_1..x_N (N >= 1), with posteriors
``gamma_ik = pi_k N(x_i; mu_k, sigma_k^2) / sum_j pi_j N(x_i; mu_j, sigma_j^2)``::

    u_k = 1 / (N sqrt(pi_k))   * sum_i gamma_ik (x_i - mu_k) / sigma_k
    v_k = 1 / (N sqrt(2 pi_k)) * sum_i gamma_ik [((x_i - mu_k) / sigma_k)^2 - 1]
    phi = [u_1, ..., u_K, v_1, ..., v_K]              (all first-order blocks first; 2 K D)
    improved:  phi <- sign(phi) sqrt(|phi|);  phi <- phi / max(||phi||_2, 1e-12)

As in ``vl_fisher``, components with pi_k < 1e-6 are skipped (their blocks are 0) and
posteriors below 1e-6 are dropped.  :func:`fisher_vector_reference` is the same formula in
plain numpy (float64), used to check the VLFeat path.
"""

from __future__ import annotations

import numpy as np

from emoflow.encode.base import (
    Encoder,
    common_params,
    l2_normalize,
    pos_float,
    pos_int,
    register,
    seeded_kmeans,
    signed_sqrt,
)


def gmm_posteriors(x: np.ndarray, means: np.ndarray, covars: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """``(N, K)`` posteriors of a diagonal GMM, computed in the log domain (float64)."""
    x, means, covars = (np.asarray(a, dtype=np.float64) for a in (x, means, covars))
    priors = np.asarray(priors, dtype=np.float64)
    sq = ((x[:, None, :] - means[None]) ** 2 / covars[None]).sum(axis=2)  # (N, K) Mahalanobis
    with np.errstate(divide="ignore"):
        logp = np.log(priors)[None] - 0.5 * (np.log(2 * np.pi * covars).sum(axis=1)[None] + sq)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def fisher_vector_reference(
    x: np.ndarray, means: np.ndarray, covars: np.ndarray, priors: np.ndarray, improved: bool = True
) -> np.ndarray:
    """Fisher vector of frames ``x`` (N, D) under the diagonal GMM (``means``/``covars`` (K, D),
    ``priors`` (K,)), by the module docstring's formula; float64 ``(2 K D,)``."""
    x = np.asarray(x, dtype=np.float64)
    means, covars = np.asarray(means, dtype=np.float64), np.asarray(covars, dtype=np.float64)
    priors = np.asarray(priors, dtype=np.float64)
    n = x.shape[0]
    gamma = gmm_posteriors(x, means, covars, priors)
    gamma[gamma < 1e-6] = 0.0  # vl_fisher drops negligible posteriors
    diff = (x[:, None, :] - means[None]) / np.sqrt(covars)[None]  # (N, K, D)
    keep = priors >= 1e-6  # vl_fisher skips (near-)empty components
    safe = np.where(keep, priors, 1.0)
    u = np.einsum("nk,nkd->kd", gamma, diff) / (n * np.sqrt(safe))[:, None]
    v = np.einsum("nk,nkd->kd", gamma, diff**2 - 1.0) / (n * np.sqrt(2.0 * safe))[:, None]
    u[~keep] = 0.0
    v[~keep] = 0.0
    phi = np.concatenate([u.ravel(), v.ravel()])
    if improved:
        phi = l2_normalize(signed_sqrt(phi))
    return phi


@register
class FisherEncoder(Encoder):
    """Improved Fisher vector over a GMM fitted on training frames; dim ``2 * clusters * D``."""

    kind = "fisher"
    model_based = True
    params_spec = {
        **common_params(pca=64),
        "clusters": (32, pos_int),  # K Gaussians
        "max_iter": (100, pos_int),  # EM iterations (VLFeat)
        "kmeans_iter": (100, pos_int),  # k-means iterations for the initialisation
        "n_init": (1, pos_int),  # k-means restarts for the initialisation
        "var_floor": (1e-4, pos_float),  # relative lower bound on the variances
    }

    means: np.ndarray  # (K, D) float32
    covars: np.ndarray  # (K, D) float32, diagonal variances
    priors: np.ndarray  # (K,) float32

    def _out_dim(self, d: int) -> int:
        return 2 * self.params["clusters"] * d

    def _fit_model(self, z: np.ndarray) -> None:
        from cyvlfeat.gmm.cygmm import cy_gmm

        p = self.params
        k = p["clusters"]
        if len(z) < k:
            raise ValueError(f"fisher: {len(z)} training frames are fewer than clusters={k}")
        z64 = z.astype(np.float64)
        var = z64.var(axis=0)
        bound = max(p["var_floor"] * float(var.mean()), 1e-10)
        centres, labels = seeded_kmeans(z, k, p["seed"], p["n_init"], p["kmeans_iter"])
        counts = np.bincount(labels, minlength=k)
        covars0 = np.tile(var, (k, 1))
        for c in np.flatnonzero(counts >= 2):
            covars0[c] = z64[labels == c].var(axis=0)
        priors0 = np.maximum(counts, 1) / np.maximum(counts, 1).sum()
        # cyvlfeat.gmm.gmm (0.7.x) cannot take custom initial arrays (its `any((priors, means,
        # covars))` check raises on arrays), so call the compiled routine it wraps directly with
        # exactly the arguments it would pass; shapes and dtypes are guaranteed here.  The bound
        # must be a 1-element array (a scalar bound): a per-dimension float32 array is read as
        # doubles by vl_gmm_set_covariance_lower_bounds and gives garbage/NaN variances.
        f32 = np.float32
        means, covars, priors, _, _ = cy_gmm(
            np.ascontiguousarray(z, dtype=f32),
            k,
            p["max_iter"],
            b"custom",
            1,
            0,
            covariance_bound=np.array([bound], dtype=f32),
            init_priors=np.ascontiguousarray(priors0, dtype=f32),
            init_means=np.ascontiguousarray(centres, dtype=f32),
            init_covars=np.ascontiguousarray(np.maximum(covars0, bound), dtype=f32),
        )
        self.means = np.ascontiguousarray(means, dtype=np.float32)
        self.covars = np.ascontiguousarray(np.maximum(covars, bound), dtype=np.float32)
        self.priors = np.ascontiguousarray(priors, dtype=np.float32)

    def _encode(self, z: np.ndarray) -> np.ndarray:
        from cyvlfeat.fisher import fisher

        return fisher(np.ascontiguousarray(z, dtype=np.float32), self.means, self.covars, self.priors, improved=True)

    def _model_state(self) -> dict[str, np.ndarray]:
        return {"means": self.means, "covars": self.covars, "priors": self.priors}

    def _set_model_state(self, state: dict[str, np.ndarray]) -> None:
        self.means = np.ascontiguousarray(state["means"], dtype=np.float32)
        self.covars = np.ascontiguousarray(state["covars"], dtype=np.float32)
        self.priors = np.ascontiguousarray(state["priors"], dtype=np.float32)
