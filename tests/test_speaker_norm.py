"""Speaker normalisation (experiment option ``normalize: speaker``): known answers, order
independence, the population fallback, the predictor's path equal to the workflow's, and
what it buys on speakers whose voices differ more than their emotions do."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from emoflow.classify import speaker_norm as sn
from emoflow.config import ConfigError, load_config
from emoflow.config import repo_root


def corpus(n_speakers=10, per=12, dim=4, seed=0):
    """Two classes shifting features by +-1; every speaker adds its own offset (sd 4) and
    scale: speaker identity dominates the raw features."""
    rng = np.random.default_rng(seed)
    X, y, spk, ids = [], [], [], []
    for s in range(n_speakers):
        offset, scale = rng.normal(0, 4, dim), rng.uniform(0.5, 2.0, dim)
        for j in range(per):
            c = j % 2
            X.append(offset + scale * ((2 * c - 1) * 1.0 + rng.normal(0, 0.6, dim)))
            y.append(c)
            spk.append(f"s{s}")
            ids.append(f"s{s}_{j:02d}")
    return np.array(X, np.float32), np.array(y), np.array(spk, object), np.array(ids, object)


def test_each_speaker_gets_mean_zero_and_unit_std():
    X, _, spk, ids = corpus()
    present, train = np.ones(len(X), bool), np.array([s not in ("s8", "s9") for s in spk])
    Z, state = sn.fit_transform(X, ids, spk, present, train)
    for s in np.unique(spk):
        m = spk == s
        np.testing.assert_allclose(Z[m].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(Z[m].std(0), 1, atol=1e-5)
    assert state["speakers_own"] == 10 and state["videos_population"] == 0
    # population statistics: mean of the 8 training speakers' means, root mean of their variances
    tr_means = np.stack([X[spk == f"s{s}"].astype(np.float64).mean(0) for s in range(8)])
    tr_vars = np.stack([X[spk == f"s{s}"].astype(np.float64).var(0) for s in range(8)])
    np.testing.assert_allclose(state["mean"], tr_means.mean(0), rtol=1e-12)
    np.testing.assert_allclose(state["std"], np.sqrt(tr_vars.mean(0)), rtol=1e-12)


def test_result_does_not_depend_on_row_order():
    X, _, spk, ids = corpus()
    present, train = np.ones(len(X), bool), np.ones(len(X), bool)
    Z, state = sn.fit_transform(X, ids, spk, present, train)
    perm = np.random.default_rng(1).permutation(len(X))
    Zp, statep = sn.fit_transform(X[perm], ids[perm], spk[perm], present, train)
    np.testing.assert_array_equal(Zp, Z[perm])  # bit-identical
    assert statep == state


def test_small_speakers_and_missing_rows_use_population_statistics():
    X, _, spk, ids = corpus()
    spk = spk.copy()
    spk[:3] = "lonely"  # 3 videos < MIN_VIDEOS
    present = np.ones(len(X), bool)
    present[5] = False  # a video without the feature: left as it is, not in any statistics
    Z, state = sn.fit_transform(X, ids, spk, present, np.ones(len(X), bool))
    pop_mean, pop_std = np.asarray(state["mean"]), np.asarray(state["std"])
    np.testing.assert_allclose(Z[:3], (X[:3].astype(np.float64) - pop_mean) / pop_std, rtol=1e-5)
    np.testing.assert_array_equal(Z[5], X[5])
    s0 = (spk == "s0") & present
    np.testing.assert_allclose(Z[s0].mean(0), 0, atol=1e-5)
    assert state["videos_population"] == 3


def test_predictor_path_equals_the_workflows():
    """emoflow predict normalises new videos with sn.apply and the kept state: on the same
    test speakers' videos (in another order, with extra rows that are not references) it gives
    the workflow's numbers."""
    X, _, spk, ids = corpus()
    train = np.array([s not in ("s8", "s9") for s in spk])
    Z, state = sn.fit_transform(X, ids, spk, np.ones(len(X), bool), train)
    test = np.flatnonzero(~train)[::-1]
    windows = X[test[:4]] * 0.9  # timeline windows of the first clips: normalised by their speaker
    Xp = np.concatenate([X[test], windows])
    ids_p = np.concatenate([ids[test], [f"w{i}" for i in range(4)]])
    spk_p = np.concatenate([spk[test], spk[test[:4]]])
    ref = np.r_[np.ones(len(test), bool), np.zeros(4, bool)]
    Zp, own = sn.apply(Xp, ids_p, spk_p, state, ref)
    np.testing.assert_array_equal(Zp[: len(test)], Z[test])
    assert own.all()
    # a lone clip (no speaker given): population statistics
    Zl, own_l = sn.apply(X[test[:1]], ids[test[:1]], np.array(["video:x"], object), state)
    assert not own_l[0]
    np.testing.assert_allclose(Zl[0], (X[test[0]] - np.asarray(state["mean"])) / np.asarray(state["std"]), rtol=1e-5)


def test_it_helps_when_speakers_differ_more_than_emotions():
    X, y, spk, ids = corpus(n_speakers=12, seed=3)
    train = np.array([int(s[1:]) < 8 for s in spk])
    Z, _ = sn.fit_transform(X, ids, spk, np.ones(len(X), bool), train)
    acc = {}
    for name, F in (("raw", X), ("speaker", Z)):
        clf = LogisticRegression(max_iter=2000).fit(F[train], y[train])
        acc[name] = (clf.predict(F[~train]) == y[~train]).mean()
    assert acc["speaker"] >= 0.95 and acc["speaker"] > acc["raw"] + 0.15, acc


def test_config_refuses_speaker_normalisation_of_a_sequence_model(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments:\n  x: {feature: mfcc, classifier: lstm, normalize: speaker}\n")
    with pytest.raises(ConfigError, match="normalize: speaker applies to video vectors"):
        load_config([repo_root() / "config.yaml", bad])
    bad.write_text("experiments:\n  x: {feature: egemaps, classifier: logistic, normalize: gender}\n")
    with pytest.raises(ConfigError, match="normalize"):
        load_config([repo_root() / "config.yaml", bad])
