"""Temporal encoders (emoflow.encode): Fisher vectors against an independent formula and VLFeat,
VLAD against a direct computation, pooling known answers, fit isolation, determinism,
persistence and degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest

from emoflow.encode import TYPES, Encoder, FisherEncoder, VladEncoder, fisher_vector_reference, load, make
from emoflow.encode.base import fit_pca, training_frames

SPECS = {
    "mean": {"type": "mean"},
    "max": {"type": "max"},
    "meanstd": {"type": "meanstd"},
    "meanstd_pca": {"type": "meanstd", "pca": 3},
    "fisher": {"type": "fisher", "clusters": 3, "pca": 4},
    "vlad": {"type": "vlad", "clusters": 3, "pca": 4},
}


def blobs(
    rng: np.random.Generator, n_videos: int = 8, d: int = 3, centres=(0.0, 10.0), frames=(5, 25)
) -> list[np.ndarray]:
    """Videos whose frames come from well-separated Gaussian blobs."""
    seqs = []
    for _ in range(n_videos):
        n = int(rng.integers(*frames))
        c = np.asarray(centres)[rng.integers(0, len(centres), size=n)]
        seqs.append((rng.normal(size=(n, d)) + c[:, None]).astype(np.float32))
    return seqs


def model_arrays(enc: Encoder) -> dict[str, np.ndarray]:
    out = {k: v.copy() for k, v in (enc._pca or {}).items()}
    out.update({k: v.copy() for k, v in enc._model_state().items()})
    return out


# ---------------------------------------------------------------- Fisher vectors
def test_fisher_reference_single_gaussian_hand_values():
    # x = 1, 3; mu = 1, sigma^2 = 4 -> standardised (x - mu)/sigma = 0, 1; posterior 1, prior 1
    x, mu, var, prior = np.array([[1.0], [3.0]]), np.array([[1.0]]), np.array([[4.0]]), np.array([1.0])
    raw = fisher_vector_reference(x, mu, var, prior, improved=False)
    u = (0.0 + 1.0) / 2  # mean of the standardised differences
    v = ((0.0 - 1.0) + (1.0 - 1.0)) / 2 / np.sqrt(2.0)  # mean of (diff^2 - 1), over sqrt(2)
    np.testing.assert_allclose(raw, [u, v], rtol=1e-12)
    improved = fisher_vector_reference(x, mu, var, prior, improved=True)
    # signed sqrt: [sqrt(0.5), -sqrt(0.35355)]; L2 norm sqrt(0.5 + 0.35355) = 0.92388
    np.testing.assert_allclose(improved, [0.7653669, -0.6435943], atol=1e-6)


def test_fisher_reference_single_gaussian_multidim():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 4)) * 2 + 1
    mu, var = rng.normal(size=(1, 4)), rng.uniform(0.5, 3.0, size=(1, 4))
    s = (x - mu) / np.sqrt(var)
    expected = np.concatenate([s.mean(axis=0), (s**2 - 1).mean(axis=0) / np.sqrt(2)])
    np.testing.assert_allclose(
        fisher_vector_reference(x, mu, var, np.array([1.0]), improved=False), expected, rtol=1e-10
    )
    e = np.sign(expected) * np.sqrt(np.abs(expected))
    np.testing.assert_allclose(fisher_vector_reference(x, mu, var, np.array([1.0])), e / np.linalg.norm(e), rtol=1e-10)


def test_fisher_reference_matches_vl_fisher_for_arbitrary_gmm():
    from cyvlfeat.fisher import fisher

    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 3)).astype(np.float32) * 2
    means = rng.normal(size=(4, 3)).astype(np.float32)
    covars = rng.uniform(0.3, 2.0, size=(4, 3)).astype(np.float32)
    priors = np.array([0.5, 0.3, 0.2 - 1e-8, 1e-8], dtype=np.float32)  # last one skipped by both (< 1e-6)
    for improved in (False, True):
        ours = fisher_vector_reference(x, means, covars, priors, improved=improved)
        vl = fisher(x, means, covars, priors, improved=improved)
        np.testing.assert_allclose(ours, vl, rtol=2e-5, atol=1e-5)  # vl_fisher works in float32
    assert np.all(fisher_vector_reference(x, means, covars, priors, improved=False)[[9, 10, 11, 21, 22, 23]] == 0)


def test_fisher_encoder_equals_reference_tiny_case():
    rng = np.random.default_rng(3)
    train = blobs(rng, n_videos=6, d=3)
    enc = make({"type": "fisher", "clusters": 2, "pca": None}).fit(train)
    # the GMM found the two blobs
    order = np.argsort(enc.means[:, 0])
    np.testing.assert_allclose(enc.means[order], [[0, 0, 0], [10, 10, 10]], atol=0.7)
    np.testing.assert_allclose(enc.priors.sum(), 1.0, atol=1e-5)
    video = blobs(rng, n_videos=1, d=3, frames=(20, 21))[0]
    fv = enc.transform(video)
    assert fv.dtype == np.float32 and fv.shape == (2 * 2 * 3,) == (enc.dim(),)
    np.testing.assert_allclose(fv, fisher_vector_reference(video, enc.means, enc.covars, enc.priors), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(fv), 1.0, atol=1e-5)


def test_fisher_encoder_with_pca_equals_reference_on_projected_frames():
    rng = np.random.default_rng(4)
    train = [rng.normal(size=(30, 5)).astype(np.float32) @ rng.normal(size=(5, 5)).astype(np.float32) for _ in range(4)]
    enc = make({"type": "fisher", "clusters": 3, "pca": 2}).fit(train)
    video = train[0][:12]
    z = enc.project(video)
    np.testing.assert_allclose(z, (video - enc._pca["mean"]) @ enc._pca["components"].T, atol=1e-4)
    np.testing.assert_allclose(
        enc.transform(video), fisher_vector_reference(z, enc.means, enc.covars, enc.priors), atol=1e-4
    )


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    mean, comps, var = fit_pca(x, 3)
    sk = PCA(n_components=3, svd_solver="full").fit(x)
    np.testing.assert_allclose(mean, sk.mean_, atol=1e-10)
    np.testing.assert_allclose(np.abs(comps), np.abs(sk.components_), atol=1e-8)
    np.testing.assert_allclose(var, sk.explained_variance_ * (len(x) - 1) / len(x), rtol=1e-8)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-10)


# ---------------------------------------------------------------- VLAD
def direct_vlad(x: np.ndarray, centres: np.ndarray, ssr_first: bool = False) -> np.ndarray:
    """Frame-by-frame loop: nearest centre, residual sums, normalisations."""
    k, d = centres.shape
    v = np.zeros((k, d))
    for frame in x.astype(np.float64):
        j = int(np.argmin([np.linalg.norm(frame - c) for c in centres.astype(np.float64)]))
        v[j] += frame - centres[j]
    for j in range(k):
        if ssr_first:
            v[j] = np.sign(v[j]) * np.sqrt(np.abs(v[j]))
        n = np.linalg.norm(v[j])
        if n > 0:
            v[j] /= n
    if not ssr_first:
        v = np.sign(v) * np.sqrt(np.abs(v))
    v = v.ravel()
    return v / np.linalg.norm(v)


def test_vlad_equals_direct_computation_and_centres_are_kmeans():
    rng = np.random.default_rng(6)
    train = blobs(rng, n_videos=8, d=3, centres=(0.0, 6.0, 12.0))
    enc = make({"type": "vlad", "clusters": 3, "pca": None}).fit(train)
    # Lloyd fixed point: every centre is the mean of the training frames nearest to it
    x = np.concatenate(train)
    nn = np.argmin(((x[:, None] - enc.centres[None]) ** 2).sum(axis=2), axis=1)
    for j in range(3):
        np.testing.assert_allclose(enc.centres[j], x[nn == j].mean(axis=0), atol=1e-4)
    for video in train[:3]:
        out = enc.transform(video)
        assert out.dtype == np.float32 and out.shape == (9,)
        np.testing.assert_allclose(out, direct_vlad(video, enc.centres), atol=1e-5)


def test_vlad_vlfeat_order_matches_cyvlfeat():
    from cyvlfeat.vlad import vlad

    rng = np.random.default_rng(7)
    train = blobs(rng, n_videos=6, d=4, centres=(0.0, 5.0))
    enc = make({"type": "vlad", "clusters": 4, "pca": None, "vlfeat_order": True}).fit(train)
    video = train[0]
    onehot = np.eye(4, dtype=np.float32)[np.argmin(((video[:, None] - enc.centres[None]) ** 2).sum(axis=2), axis=1)]
    expected = vlad(video, enc.centres, onehot, square_root=True, normalize_components=True)
    np.testing.assert_allclose(enc.transform(video), expected, atol=1e-5)
    np.testing.assert_allclose(enc.transform(video), direct_vlad(video, enc.centres, ssr_first=True), atol=1e-5)
    default = make({"type": "vlad", "clusters": 4, "pca": None}).fit(train)
    assert not np.allclose(default.transform(video), expected, atol=1e-3)  # the two orders really differ


# ---------------------------------------------------------------- pooling
def test_pooling_known_answers():
    x = np.array([[1.0, -2.0], [3.0, 6.0]], dtype=np.float32)
    np.testing.assert_array_equal(make({"type": "mean"}).transform(x), [2.0, 2.0])
    np.testing.assert_array_equal(make({"type": "max"}).transform(x), [3.0, 6.0])
    np.testing.assert_array_equal(make({"type": "meanstd"}).transform(x), [2.0, 2.0, 1.0, 4.0])
    assert make({"type": "meanstd"}).dim(2) == 4 and make({"type": "mean"}).dim(2) == 2
    for kind in ("mean", "max", "meanstd"):
        enc = make({"type": kind})
        assert enc.fitted and enc.transform(x).dtype == np.float32


def test_pooling_with_pca_pools_projected_frames():
    rng = np.random.default_rng(8)
    train = [rng.normal(size=(20, 5)).astype(np.float32) for _ in range(3)]
    enc = make({"type": "meanstd", "pca": 2})
    assert not enc.fitted
    enc.fit(train)
    z = enc.project(train[1])
    np.testing.assert_allclose(enc.transform(train[1]), np.concatenate([z.mean(0), z.std(0)]), atol=1e-6)
    assert enc.dim() == 4


def test_whitening_gives_unit_variance_on_training_frames():
    rng = np.random.default_rng(17)
    train = [(rng.normal(size=(40, 4)) * [5.0, 2.0, 1.0, 0.1]).astype(np.float32) for _ in range(3)]
    enc = make({"type": "mean", "pca": 3, "whiten": True}).fit(train)
    z = np.concatenate([enc.project(s) for s in train])
    np.testing.assert_allclose(z.var(axis=0), 1.0, rtol=1e-4)
    plain = make({"type": "mean", "pca": 3}).fit(train)
    np.testing.assert_allclose(
        np.concatenate([plain.project(s) for s in train]).var(axis=0), plain._pca["variances"], rtol=1e-4
    )


# ---------------------------------------------------------------- fitting: isolation, determinism, subsampling
@pytest.mark.parametrize("name", ["fisher", "vlad", "meanstd_pca"])
def test_model_depends_only_on_fit_data(name):
    rng = np.random.default_rng(9)
    set_a = blobs(rng, d=6)
    set_b = [s * 3 + 5 for s in blobs(rng, d=6)]
    enc = make(SPECS[name]).fit(set_a)
    before = model_arrays(enc)
    enc.transform_many(set_b)
    enc.transform(set_b[0][:1])
    after = model_arrays(enc)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    enc.fit(set_b)
    refit_b = model_arrays(enc)
    assert any(not np.allclose(before[k], refit_b[k]) for k in before)
    enc.fit(set_a)
    assert all(np.array_equal(before[k], v) for k, v in model_arrays(enc).items())


@pytest.mark.parametrize("name", ["fisher", "vlad"])
def test_fitting_is_deterministic_with_seed(name):
    rng = np.random.default_rng(10)
    train = blobs(rng, n_videos=10, d=6, centres=(0.0, 4.0, 8.0))
    total = sum(len(s) for s in train)
    spec = {**SPECS[name], "max_frames": total // 2}
    a, b = make(spec).fit(train), make(spec).fit(train)
    for k, v in model_arrays(a).items():
        assert np.array_equal(v, model_arrays(b)[k]), k
    np.testing.assert_array_equal(a.transform_many(train), b.transform_many(train))
    c = make({**spec, "seed": 1}).fit(train)  # another seed draws other frames -> another model
    assert any(not np.array_equal(v, model_arrays(c)[k]) for k, v in model_arrays(a).items())
    full = make({**SPECS[name], "max_frames": total}).fit(train)
    huge = make({**SPECS[name], "max_frames": 10**9}).fit(train)
    for k, v in model_arrays(full).items():
        assert np.array_equal(v, model_arrays(huge)[k])


def test_training_frames_subsampling():
    rng = np.random.default_rng(11)
    seqs = [rng.normal(size=(n, 2)).astype(np.float32) for n in (7, 1, 30, 12)]
    allx = np.concatenate(seqs)
    np.testing.assert_array_equal(training_frames(seqs, 50, 0), allx)
    sub = training_frames(seqs, 20, 3)
    assert sub.shape == (20, 2)
    rows = {tuple(r) for r in allx}
    assert all(tuple(r) in rows for r in sub) and len({tuple(r) for r in sub}) == 20
    np.testing.assert_array_equal(sub, training_frames(seqs, 20, 3))
    chosen = np.sort(np.random.default_rng(3).choice(len(allx), size=20, replace=False))
    np.testing.assert_array_equal(sub, allx[chosen])  # same draw as indexing the stacked frames
    assert not np.array_equal(sub, training_frames(seqs, 20, 4))


# ---------------------------------------------------------------- persistence and dims
@pytest.mark.parametrize("name", sorted(SPECS))
def test_save_load_round_trip(tmp_path, name):
    rng = np.random.default_rng(12)
    train = blobs(rng, d=7)
    enc = make(SPECS[name]).fit(train)
    path = enc.save(tmp_path / f"{name}.npz")
    assert path == tmp_path / f"{name}.npz" and path.exists()
    with np.load(path, allow_pickle=False) as z:
        assert str(z["type"]) == SPECS[name]["type"]
    for again in (load(path), Encoder.load(path), type(enc).load(path)):
        assert type(again) is type(enc) and again.params == enc.params and again.fitted
        np.testing.assert_array_equal(again.transform_many(train), enc.transform_many(train))
    other = VladEncoder if name != "vlad" else FisherEncoder
    with pytest.raises(ValueError, match="holds a"):
        other.load(path)


def test_dims_as_documented():
    rng = np.random.default_rng(13)
    train = blobs(rng, d=7)
    fisher = make({"type": "fisher", "clusters": 3, "pca": 4})
    assert fisher.dim(7) == 2 * 3 * 4  # known before fitting from d_in
    fisher.fit(train)
    assert fisher.dim() == fisher.transform(train[0]).shape[0] == 2 * 3 * 4
    vlad = make({"type": "vlad", "clusters": 3, "pca": 4}).fit(train)
    assert vlad.dim() == vlad.transform(train[0]).shape[0] == 3 * 4
    big_pca = make({"type": "fisher", "clusters": 2, "pca": 64}).fit(train)  # D = min(pca, d)
    assert big_pca.dim() == big_pca.transform(train[0]).shape[0] == 2 * 2 * 7
    assert make({"type": "meanstd", "pca": 3}).fit(train).transform_many(train).shape == (len(train), 6)
    assert fisher.transform_many([]).shape == (0, 24)
    with pytest.raises(ValueError, match="fitted on 7"):
        fisher.dim(5)


# ---------------------------------------------------------------- degenerate inputs
@pytest.mark.parametrize("name", sorted(SPECS))
def test_degenerate_videos_give_finite_output(name):
    rng = np.random.default_rng(14)
    train = blobs(rng, d=6)
    enc = make(SPECS[name]).fit(train)
    cases = {
        "single frame": train[0][:1],
        "all-zero frame": np.zeros((1, 6), np.float32),
        "constant frames": np.full((9, 6), 3.5, np.float32),
        "far outlier": np.full((2, 6), 1e4, np.float32),
    }
    for label, video in cases.items():
        out = enc.transform(video)
        assert out.dtype == np.float32 and out.shape == (enc.dim(6),), label
        assert np.all(np.isfinite(out)), label
        if name in ("fisher", "vlad"):
            assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-5) or not out.any(), label


def test_vlad_frame_on_a_centre_gives_zero_vector():
    rng = np.random.default_rng(15)
    enc = make({"type": "vlad", "clusters": 2, "pca": None}).fit(blobs(rng))
    out = enc.transform(enc.centres[:1])
    assert np.all(np.isfinite(out)) and not out.any()


@pytest.mark.parametrize("name", ["fisher", "vlad", "meanstd_pca"])
def test_degenerate_training_data(name):
    # constant column, duplicated frames, fewer frames than the PCA dims
    x = np.zeros((6, 10), np.float32)
    x[:3, 0] = 1.0
    x[3:, 1] = 2.0
    spec = {**SPECS[name], "pca": 8}
    if "clusters" in spec:
        spec["clusters"] = 2
    enc = make(spec).fit([x[:4], x[4:]])
    out = enc.transform_many([x, x[:1], np.ones((3, 10), np.float32)])
    assert out.shape[1] == enc.dim() and np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(v)) for v in model_arrays(enc).values())
    if name == "fisher":
        assert enc.covars.min() > 0


# ---------------------------------------------------------------- errors
def test_spec_errors():
    with pytest.raises(ValueError) as err:
        make({"type": "bow"})
    assert all(t in str(err.value) for t in ("fisher", "vlad", "mean", "max", "meanstd"))
    assert set(TYPES) == {"fisher", "vlad", "mean", "max", "meanstd"}
    with pytest.raises(ValueError, match="clusters"):
        make({"type": "fisher", "clusters": 0})
    with pytest.raises(ValueError, match="clusters"):
        make({"type": "vlad", "clusters": True})
    with pytest.raises(ValueError, match="max_frames"):
        make({"type": "fisher", "max_frames": 2.5})
    with pytest.raises(ValueError, match="var_floor"):
        make({"type": "fisher", "var_floor": -1})
    with pytest.raises(ValueError, match="whiten"):
        make({"type": "mean", "whiten": "yes"})
    with pytest.raises(ValueError, match="frobnicate"):
        make({"type": "vlad", "frobnicate": 1})
    assert make({"type": "fisher", "pca": 0}).params["pca"] is None


def test_usage_errors():
    rng = np.random.default_rng(16)
    enc = make({"type": "fisher", "clusters": 2, "pca": 2})
    with pytest.raises(RuntimeError, match="fit"):
        enc.transform(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="fewer than clusters"):
        make({"type": "fisher", "clusters": 5}).fit([np.ones((4, 3), np.float32)])
    enc.fit(blobs(rng, d=4))
    with pytest.raises(ValueError, match="fitted on 4"):
        enc.transform(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        enc.transform(np.full((2, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="at least one frame"):
        enc.transform(np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="no training"):
        make({"type": "vlad"}).fit([])
