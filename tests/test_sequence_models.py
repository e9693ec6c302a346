"""Sequence classifiers on frame-feature sequences: pooling heads against direct numpy
formulas, padding invariance, the recurrent head's last state, and a small training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoflow.classify import sequence as sq


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _full_mask(b: int, t: int) -> torch.Tensor:
    return torch.ones(b, t, dtype=torch.bool)


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)


def _vlad_norm(v: np.ndarray) -> np.ndarray:
    """Intra-normalisation per row (cluster) then L2 of the flattened vector."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    v = np.where(n > 0, v / np.maximum(n, 1e-12), 0).ravel()
    return v / np.linalg.norm(v)


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 2, (4, 5)).astype(np.float32)
    x = rng.normal(0, 2, (25, 5)).astype(np.float32)
    return x, centers, _nearest(x, centers)


def test_netvlad_hard_equals_numpy_vlad(data):
    x, c, lab = data
    expect = np.stack([(x[lab == k] - c[k]).sum(0) for k in range(len(c))])
    assert len(set(lab)) > 1
    head = sq.NetVLAD(5, 4, hard=True, normalize=False)
    head.init_from_centers(c)
    with torch.no_grad():
        got = head(_t(x)[None], _full_mask(1, len(x)))[0].numpy()
    assert head.out_dim == 20 and got.shape == (20,)
    np.testing.assert_allclose(got, expect.ravel(), rtol=1e-5, atol=1e-4)
    head.normalize = True
    with torch.no_grad():
        got = head(_t(x)[None], _full_mask(1, len(x)))[0].numpy()
    np.testing.assert_allclose(got, _vlad_norm(expect), rtol=1e-5, atol=1e-5)


def test_softdbow_hard_and_sharp_equal_histogram(data):
    x, c, lab = data
    hist = np.bincount(lab, minlength=4).astype(np.float32)
    head = sq.SoftDBoW(5, 4, hard=True, normalize=False)
    head.init_from_centers(c)
    with torch.no_grad():
        np.testing.assert_allclose(head(_t(x)[None], _full_mask(1, len(x)))[0].numpy(), hist, atol=1e-6)
    # soft assignment with a very large sharpness: softmax(-alpha ||x - c||^2) -> one-hot
    soft = sq.SoftDBoW(5, 4, hard=False, normalize=True)
    soft.init_from_centers(c, alpha=1e3)
    with torch.no_grad():
        got = soft(_t(x)[None], _full_mask(1, len(x)))[0].numpy()
    np.testing.assert_allclose(got, hist / np.linalg.norm(hist), atol=1e-4)


def test_netrvlad_hard_sums_frames_per_cluster(data):
    x, c, lab = data
    expect = np.stack([x[lab == k].sum(0) for k in range(len(c))])
    head = sq.NetRVLAD(5, 4, hard=True, normalize=False)
    head.init_from_centers(c)
    with torch.no_grad():
        got = head(_t(x)[None], _full_mask(1, len(x)))[0].numpy()
    np.testing.assert_allclose(got, expect.ravel(), rtol=1e-5, atol=1e-4)
    assert "centers" not in dict(head.named_parameters())  # not learned: no residuals


def test_netfv_one_cluster_direct_formula():
    rng = np.random.default_rng(2)
    x = rng.normal(0.5, 1.5, (9, 6)).astype(np.float32)
    c = rng.normal(0, 1, (1, 6)).astype(np.float32)
    sigma = rng.uniform(0.5, 2.0, (1, 6)).astype(np.float32)
    head = sq.NetFV(6, 1, normalize=False)
    head.init_from_centers(c)
    head.set_sigma(sigma)
    np.testing.assert_allclose(head.sigma.detach().numpy(), sigma, rtol=1e-5)
    z = (x - c) / sigma
    first, second = z.sum(0), (z * z - 1).sum(0)
    with torch.no_grad():
        got = head(_t(x)[None], _full_mask(1, len(x)))[0].numpy()
    assert head.out_dim == 12
    np.testing.assert_allclose(got, np.concatenate([first, second]), rtol=1e-4, atol=1e-4)
    head.normalize = True
    with torch.no_grad():
        got = head(_t(x)[None], _full_mask(1, len(x)))[0].numpy()
    v = np.concatenate([first / np.linalg.norm(first), second / np.linalg.norm(second)])
    np.testing.assert_allclose(got, v / np.linalg.norm(v), rtol=1e-4, atol=1e-5)


SPECS = [
    {"head": "netvlad", "clusters": 3},
    {"head": "netvlad", "clusters": 3, "hard": True},
    {"head": "netrvlad", "clusters": 3},
    {"head": "softdbow", "clusters": 3},
    {"head": "netfv", "clusters": 3},
    {"head": "lstm", "hidden": 7},
    {"head": "lstm", "hidden": 7, "bidirectional": True},
    {"head": "gru", "hidden": 7, "layers": 2},
    {"head": "mean"},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_padding_does_not_change_output(spec):
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    head = sq.make_head(spec, 4).eval()
    if isinstance(head, sq.NetVLAD | sq.NetRVLAD | sq.SoftDBoW | sq.NetFV):
        head.init_from_centers(rng.normal(0, 1, (3, 4)), alpha=0.7)
    a = _t(rng.normal(0, 1, (5, 4)))
    b = _t(rng.normal(0, 1, (11, 4)))
    batch = _t(rng.normal(0, 50, (2, 11, 4)))  # garbage in the padding
    batch[0, :5], batch[1] = a, b
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[0, :5], mask[1] = True, True
    with torch.no_grad():
        alone = head(a[None], _full_mask(1, 5))
        padded = head(batch, mask)
        b_alone = head(b[None], _full_mask(1, 11))
    assert padded.shape == (2, head.out_dim)
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[1], b_alone[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(padded[0], padded[1], atol=1e-3)


@pytest.mark.parametrize(
    "spec",
    [
        {"head": "netvlad", "clusters": 2, "norm": "layernorm", "gating": True, "proj": 6},
        {"head": "lstm", "hidden": 5, "norm": "standardize"},
    ],
    ids=["netvlad", "lstm"],
)
def test_classifier_padding_invariance(spec):
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    model = sq.SequenceClassifier(4, 3, spec).eval()
    model.set_standardization(rng.normal(0, 1, 4), rng.uniform(0.5, 2, 4))
    seqs = [rng.normal(0, 1, (n, 4)).astype(np.float32) for n in (3, 8)]
    x, m = sq.collate(seqs)
    with torch.no_grad():
        both = model(x, m)
        alone = model(_t(seqs[0])[None], _full_mask(1, 3))
    torch.testing.assert_close(both[0], alone[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind,bidirectional,layers", [("lstm", False, 1), ("lstm", True, 2), ("gru", False, 2)])
def test_recurrent_head_returns_last_valid_state(kind, bidirectional, layers):
    torch.manual_seed(0)
    head = sq.RecurrentHead(4, 6, kind=kind, bidirectional=bidirectional, layers=layers).eval()
    rng = np.random.default_rng(5)
    lengths = [4, 9, 1]
    x = torch.zeros(3, 9, 4)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    seqs = [_t(rng.normal(0, 1, (n, 4))) for n in lengths]
    for i, s in enumerate(seqs):
        x[i, : len(s)], mask[i, : len(s)] = s, True
    with torch.no_grad():
        got = head(x, mask)
        for i, s in enumerate(seqs):
            out, _ = head.rnn(s[None])  # unpadded run: (1, n, dirs * H)
            expect = out[0, -1, :6]
            if bidirectional:  # backward direction ends at frame 0
                expect = torch.cat([expect, out[0, 0, 6:]])
            torch.testing.assert_close(got[i], expect, rtol=1e-5, atol=1e-6)
    assert got.shape == (3, head.out_dim) and head.out_dim == 6 * (2 if bidirectional else 1)


def test_make_head_rejects_unknown():
    with pytest.raises(ValueError, match="netvlad.*lstm"):
        sq.make_head({"head": "transformerish"}, 8)
    assert isinstance(sq.make_head({"head": "GRU", "hidden": 3}, 8), sq.RecurrentHead)
    assert sq.make_head({"head": "netfv", "clusters": 5}, 8).out_dim == 80


def test_kmeans_and_frame_choice():
    rng = np.random.default_rng(6)
    true = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    x = np.concatenate([t + rng.normal(0, 0.3, (50, 2)) for t in true])
    c, labels = sq.kmeans(x, 3, seed=0)
    order = _nearest(true, c)
    np.testing.assert_allclose(c[order], true, atol=0.2)
    assert len(set(labels[:50])) == 1 and len(set(labels)) == 3
    np.testing.assert_array_equal(sq._frame_index(100, 5, None), [0, 25, 50, 74, 99])
    idx = sq._frame_index(100, 8, np.random.default_rng(0))
    assert len(idx) == 8 and np.all(np.diff(idx) > 0) and idx.max() < 100
    np.testing.assert_array_equal(sq._frame_index(6, 8, np.random.default_rng(0)), np.arange(6))


def test_init_head_from_kmeans():
    """Centres (as the head sees the frames: standardised), assignment and NetFV std come from k-means."""
    rng = np.random.default_rng(9)
    true = rng.normal(0, 4, (3, 5))
    labels = rng.integers(0, 3, 300)
    frames = (true[labels] + rng.normal(0, 0.5, (300, 5))).astype(np.float32)
    seqs = np.split(frames, 30)
    mean, std = frames.mean(0), frames.std(0)
    model = sq.SequenceClassifier(5, 2, {"head": "netfv", "clusters": 3})
    model.set_standardization(mean, std)
    sq.init_head(model, seqs, seed=0)
    head = model.head
    z_true = (true - mean) / std
    c = head.centers.detach().numpy()
    order = _nearest(z_true, c)
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(c[order], z_true, atol=0.15)
    np.testing.assert_allclose(head.sigma.detach().numpy()[order], 0.5 / std[None].repeat(3, 0), rtol=0.3)
    with torch.no_grad():
        soft = torch.softmax(head.assign(_t((frames - mean) / std)), dim=1).numpy()
    assert (order[labels] == soft.argmax(1)).mean() > 0.97  # soft assignment follows the clusters
    top2 = np.sort(soft, axis=1)[:, -2:]
    assert np.median(np.log(top2[:, 1] / top2[:, 0])) == pytest.approx(np.log(10.0), rel=0.05)  # sharpness rule


def _task(n: int, rng: np.random.Generator, means: np.ndarray):
    y = np.arange(n) % len(means)
    seqs = [(means[c] + rng.normal(0, 1.0, (int(rng.integers(5, 31)), means.shape[1]))).astype(np.float32) for c in y]
    return seqs, y


@pytest.mark.parametrize(
    "spec", [{"head": "netvlad", "clusters": 8}, {"head": "lstm", "hidden": 32}], ids=["netvlad", "lstm"]
)
def test_training_learns_and_round_trips(spec, tmp_path):
    rng = np.random.default_rng(7)
    means = rng.normal(0, 1.0, (3, 8)) + 3.0  # offset: standardisation must cope
    tr_x, tr_y = _task(60, rng, means)
    va_x, va_y = _task(30, rng, means)
    model, hist = sq.fit(
        tr_x,
        tr_y,
        va_x,
        va_y,
        3,
        spec,
        epochs=30,
        batch_size=16,
        lr=3e-3,
        max_len=16,
        patience=8,
        seed=0,
        device="cpu",
        log=None,
    )
    assert hist and set(hist[0]) >= {"epoch", "loss", "val_acc"}
    assert [h["epoch"] for h in hist] == list(range(1, len(hist) + 1))
    best = max(h["val_acc"] for h in hist)
    assert best >= 0.9, hist
    probs = sq.predict_proba(model, va_x, max_len=16, device="cpu")
    assert probs.shape == (30, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == va_y).mean() == pytest.approx(best)  # the best epoch's weights are kept
    path = sq.save(model, tmp_path / "m.pt", {"feature": "synthetic", "classes": ["a", "b", "c"]})
    loaded, meta = sq.load(path)
    assert meta == {"feature": "synthetic", "classes": ["a", "b", "c"]}
    assert loaded.spec["head"] == spec["head"] and not loaded.training
    np.testing.assert_array_equal(sq.predict_proba(loaded, va_x, max_len=16, device="cpu"), probs)


def test_fit_is_seeded():
    rng = np.random.default_rng(8)
    means = rng.normal(0, 1.0, (2, 4))
    x, y = _task(16, rng, means)
    runs = [
        sq.fit(
            x,
            y,
            x[:6],
            y[:6],
            2,
            {"head": "softdbow", "clusters": 4},
            epochs=3,
            batch_size=8,
            seed=s,
            device="cpu",
            log=None,
        )[1]
        for s in (0, 0, 1)
    ]
    losses = [[h["loss"] for h in r] for r in runs]
    assert losses[0] == losses[1] and losses[0] != losses[2]
