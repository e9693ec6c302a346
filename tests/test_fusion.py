"""Late fusion: weight search (known answers, tie-break, exhaustive vs coordinate ascent),
stacking, fair cross-validated comparison, and the JSON-able choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emoflow.evaluate.metrics import scores
from emoflow.fusion.choose import apply, choose
from emoflow.fusion.search import cv_score_weights, cv_splits, fuse, greedy_select, search_weights
from emoflow.fusion.stacking import Stacker

FAST_STACK = {"Cs": (0.1, 1.0, 10.0)}


def peaked(cls, conf: float, n_classes: int) -> np.ndarray:
    """One row per entry of ``cls``: ``conf`` on that class, the rest spread evenly."""
    cls = np.asarray(cls)
    p = np.full((len(cls), n_classes), (1 - conf) / (n_classes - 1))
    p[np.arange(len(cls)), cls] = conf
    return p


def ab_case(n_per_half: int = 40, n_classes: int = 4, seed: int = 0):
    """A right (confident) on the first half only, B on the second half only, C confident noise.

    Every 5th sample is "tight": the right model is only a little more confident (0.55) than the
    wrong one (0.5), and C votes (1.0) for the wrong model's class.  Then accuracy 1 needs
    0.55 a > 0.5 b + c and 0.55 b > 0.5 a + c, i.e. c = 0 and a = b on the 0.05 grid.
    """
    rng = np.random.default_rng(seed)
    n = 2 * n_per_half
    y = np.arange(n) % n_classes
    wrong = (y + 1) % n_classes
    first = (np.arange(n) < n_per_half)[:, None]
    tight = (np.arange(n) % 5 == 0)[:, None]
    a = np.where(
        first, np.where(tight, peaked(y, 0.55, n_classes), peaked(y, 0.9, n_classes)), peaked(wrong, 0.5, n_classes)
    )
    b = np.where(
        first, peaked(wrong, 0.5, n_classes), np.where(tight, peaked(y, 0.55, n_classes), peaked(y, 0.9, n_classes))
    )
    noise_cls = np.where(tight[:, 0], wrong, (y + rng.integers(1, n_classes, n)) % n_classes)
    c = peaked(noise_cls, 1.0, n_classes)
    groups = np.arange(n) // 4  # 20 "speakers"
    return [a, b, c], y, groups


def permutation_case(n: int = 96, n_classes: int = 4, seed: int = 1):
    """Model A is informative but names the classes wrong (a cyclic permutation); N is noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    perm = (np.arange(n_classes) + 1) % n_classes
    a = 0.8 * peaked(perm[y], 0.7, n_classes) + 0.2 * rng.dirichlet(np.ones(n_classes), n)
    noise = rng.dirichlet(np.ones(n_classes), n)
    return [a, noise], y, np.arange(n) // 4


def noisy_models(seed: int, n_models: int = 3, n: int = 120, n_classes: int = 5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    probs = []
    for q in np.linspace(0.5, 0.3, n_models):
        hit = np.where(rng.random(n) < q, y, rng.integers(0, n_classes, n))
        probs.append(0.5 * peaked(hit, 0.6, n_classes) + 0.5 * rng.dirichlet(np.ones(n_classes), n))
    return probs, y


# -- fuse ------------------------------------------------------------------------------------


def test_fuse_normalises_weights():
    probs, _ = noisy_models(0)
    np.testing.assert_allclose(fuse(probs, [2, 2, 4]), fuse(probs, [0.25, 0.25, 0.5]))
    np.testing.assert_allclose(fuse(probs, [2, 2, 4]), 0.25 * probs[0] + 0.25 * probs[1] + 0.5 * probs[2])
    np.testing.assert_allclose(fuse(probs, [0, 3, 0]), probs[1])
    np.testing.assert_allclose(fuse(probs, [1, 1, 1]).sum(axis=1), 1.0)
    for bad in ([1, -1, 1], [0, 0, 0], [1, 1]):
        with pytest.raises(ValueError):
            fuse(probs, bad)
    with pytest.raises(ValueError):
        fuse([probs[0], probs[1][:-1]], [1, 1])


# -- weight search: known answers ------------------------------------------------------------


def test_search_needs_a_and_b_and_drops_noise():
    probs, y, _ = ab_case()
    w, score = search_weights(probs, y)
    np.testing.assert_allclose(w, [0.5, 0.5, 0.0])
    assert score == 1.0
    assert scores(y, fuse(probs, w).argmax(axis=1), 4)["accuracy"] == 1.0
    # neither model alone suffices, and any weight on C costs accuracy
    for single in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.45, 0.05], [0.45, 0.5, 0.05]):
        assert scores(y, fuse(probs, single).argmax(axis=1), 4)["accuracy"] < 1.0


def test_search_puts_all_weight_on_the_perfect_model():
    n_classes, n = 5, 50
    y = np.arange(n) % n_classes
    runner_up = (y + 2) % n_classes
    perfect = peaked(y, 0.6, n_classes)
    perfect[::5] = 0.35 / 3  # some samples barely right: 0.34 vs 0.31 for the runner-up
    perfect[np.arange(0, n, 5), y[::5]] = 0.34
    perfect[np.arange(0, n, 5), runner_up[::5]] = 0.31
    wrong1 = peaked(runner_up, 1.0, n_classes)  # confidently wrong everywhere
    wrong2 = peaked(np.where(np.arange(n) % 5 == 0, runner_up, (y + 1) % n_classes), 0.9, n_classes)
    for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1]):
        probs = [[perfect, wrong1, wrong2][i] for i in order]
        w, score = search_weights(probs, y)
        expected = np.array([1.0 if i == 0 else 0.0 for i in order])
        np.testing.assert_allclose(w, expected)
        assert score == 1.0


def test_tie_break_prefers_uniform_weights():
    probs, y, _ = ab_case()
    a = probs[0]
    # two copies of the same model: every mix scores alike, the most uniform one wins
    w, _ = search_weights([a, a.copy()], y)
    np.testing.assert_allclose(w, [0.5, 0.5])
    w, _ = search_weights([a, a.copy(), a.copy()], y, step=0.1, max_models_exhaustive=2)
    np.testing.assert_allclose(w, [0.4, 0.3, 0.3])  # closest to uniform on the 0.1 lattice, earlier first


def test_secondary_metric_breaks_accuracy_ties():
    # 6 samples of class 0, 2 of class 1, 2 of class 2
    y = np.array([0] * 6 + [1, 1, 2, 2])
    majority = peaked(np.zeros(10, dtype=int), 0.9, 3)  # accuracy 0.6, UAR 1/3
    balanced = peaked(np.array([0, 0, 1, 1, 2, 2, 1, 1, 2, 2]), 0.9, 3)  # accuracy 0.6, UAR 7/9
    grid = [[1, 0], [0, 1]]  # only the two single models
    w, score = search_weights([majority, balanced], y, grid=grid)
    np.testing.assert_allclose(w, [0, 1])
    assert score == pytest.approx(0.6)
    w, score = search_weights([majority, balanced], y, grid=grid, metric="uar")
    np.testing.assert_allclose(w, [0, 1])
    assert score == pytest.approx(7 / 9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exhaustive_and_coordinate_ascent_agree(seed):
    probs, y = noisy_models(seed)
    w_ex, s_ex = search_weights(probs, y, max_models_exhaustive=4)
    w_ca, s_ca = search_weights(probs, y, max_models_exhaustive=2, seed=seed)
    np.testing.assert_allclose(w_ca, w_ex)
    assert s_ca == s_ex
    assert np.isclose(w_ex.sum(), 1.0) and np.allclose(w_ex * 20, np.round(w_ex * 20))  # on the 0.05 lattice


def test_exhaustive_and_coordinate_ascent_agree_on_ab_case():
    probs, y, _ = ab_case()
    np.testing.assert_allclose(search_weights(probs, y, max_models_exhaustive=2)[0], [0.5, 0.5, 0.0])


def test_coordinate_ascent_many_models_is_deterministic_and_near_exhaustive():
    probs, y = noisy_models(3, n_models=5)
    w1, s1 = search_weights(probs, y, step=0.1, max_models_exhaustive=4, seed=7)
    w2, s2 = search_weights(probs, y, step=0.1, max_models_exhaustive=4, seed=7)
    np.testing.assert_array_equal(w1, w2)
    assert s1 == s2
    w_ex, s_ex = search_weights(probs, y, step=0.1, max_models_exhaustive=5)
    assert s1 <= s_ex  # a local optimum of the same lattice cannot beat the global one
    assert s1 >= s_ex - 0.02


def test_greedy_select_caruana():
    probs, y, _ = ab_case()
    w, score = greedy_select(probs, y)
    assert w[2] == 0 and w[0] == pytest.approx(w[1])
    assert score == 1.0


def test_invalid_search_arguments():
    probs, y = noisy_models(0)
    with pytest.raises(ValueError):
        search_weights(probs, y, step=0.3)  # does not divide 1
    with pytest.raises(ValueError):
        search_weights(probs, y, metric="f1")
    with pytest.raises(ValueError):
        search_weights(probs, y[:-1])


# -- honest (cross-validated) estimates ------------------------------------------------------


def test_cv_splits_group_by_speaker():
    _, y, groups = ab_case()
    splits = cv_splits(y, groups, folds=5, seed=0)
    assert len(splits) == 5
    seen = np.concatenate([te for _, te in splits])
    assert sorted(seen.tolist()) == list(range(len(y)))
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])


def test_cv_score_is_not_the_optimistic_in_sample_score():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 80)
    probs = [rng.dirichlet(np.ones(4), 80) for _ in range(3)]  # pure noise
    _, in_sample = search_weights(probs, y)
    cv = cv_score_weights(probs, y, np.arange(80) // 4, folds=4)
    assert in_sample > cv["accuracy"] + 0.05  # tuning on the scored samples flatters noise
    assert cv["n"] == 80 and cv["folds"] == 4 and len(cv["fold_weights"]) == 4


def test_cv_score_weights_ab_case():
    probs, y, groups = ab_case()
    cv = cv_score_weights(probs, y, groups, folds=5)
    assert cv["accuracy"] == 1.0 and cv["uar"] == 1.0
    for w in cv["fold_weights"]:
        assert w == [0.5, 0.5, 0.0]


# -- stacking --------------------------------------------------------------------------------


def test_stacking_learns_a_class_permutation_that_averaging_cannot():
    probs, y, groups = permutation_case()
    _, avg_score = search_weights(probs, y)
    assert avg_score < 0.5  # no convex combination can rename classes
    st = Stacker(**FAST_STACK, folds=4).fit(probs, y, groups)
    assert st.C in FAST_STACK["Cs"]
    assert st.cv_scores["accuracy"] >= 0.95 and st.cv_scores["uar"] >= 0.95
    assert st.cv_scores["nested"] and st.cv_scores["folds"] == 4
    p = st.predict_proba(probs)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert (p.argmax(axis=1) == y).mean() == 1.0
    cv_avg = cv_score_weights(probs, y, groups, folds=4)
    assert cv_avg["accuracy"] < st.cv_scores["accuracy"] - 0.4


def test_stacker_dict_round_trip_and_absent_class():
    probs, y, _ = permutation_case(n_classes=5)
    keep = y < 4  # class 4 never appears in validation
    probs, y = [p[keep] for p in probs], y[keep]
    st = Stacker(**FAST_STACK, folds=3, nested=False).fit(probs, y)
    d = json.loads(json.dumps(st.to_dict()))
    assert d["classes"] == [0, 1, 2, 3] and d["n_classes"] == 5 and d["C"] == st.C
    back = Stacker.from_dict(d)
    p = st.predict_proba(probs)
    assert p.shape == (len(y), 5)
    np.testing.assert_allclose(p[:, 4], 0.0)
    np.testing.assert_allclose(back.predict_proba(probs), p)
    with pytest.raises(ValueError):
        st.predict_proba(probs[:1])


def test_stacker_binary_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 60)
    probs = [
        0.7 * peaked(np.where(rng.random(60) < 0.8, y, 1 - y), 0.8, 2) + 0.3 * rng.dirichlet([1, 1], 60)
        for _ in range(2)
    ]
    st = Stacker(Cs=(1.0,), folds=3, nested=False).fit(probs, y)
    x = np.log(np.clip(np.concatenate(probs, axis=1), 1e-6, 1))
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(st.predict_proba(probs), ref, atol=1e-6)


# -- choosing and applying -------------------------------------------------------------------


def _consistent(choice: dict) -> None:
    metric = choice["metric"]
    best = max(row[f"cv_{metric}"] for row in choice["table"])
    chosen = next(row for row in choice["table"] if row["method"] == choice["method"])
    assert chosen[f"cv_{metric}"] == best
    tied = [row["method"] for row in choice["table"] if row[f"cv_{metric}"] == best]
    if len(tied) > 1 and len({choice["methods"][m]["cv"][choice["secondary_metric"]] for m in tied}) == 1:
        assert choice["method"] == tied[0]  # full tie: the earlier (simpler) method
    json.dumps(choice)  # plain JSON


def test_choose_stacking_for_permuted_classes_and_apply():
    probs, y, groups = permutation_case()
    val = {"video_perm": probs[0], "noise": probs[1]}
    choice = choose(val, y, groups, stacking_kw=FAST_STACK)
    _consistent(choice)
    assert choice["method"] == "stacking"
    assert choice["models"] == ["video_perm", "noise"]
    table = {row["method"]: row for row in choice["table"]}
    assert table["stacking"]["cv_accuracy"] > table["weighted"]["cv_accuracy"]
    choice = json.loads(json.dumps(choice))
    test_probs, y_test, _ = permutation_case(n=40, seed=9)
    fused = apply(choice, {"noise": test_probs[1], "video_perm": test_probs[0]})  # order of the mapping is irrelevant
    expected = Stacker.from_dict(choice["methods"]["stacking"]["model"]).predict_proba(test_probs)
    np.testing.assert_allclose(fused, expected)
    assert (fused.argmax(axis=1) == y_test).mean() >= 0.95


def test_choose_weighted_for_ab_case_and_apply():
    probs, y, groups = ab_case()
    val = dict(zip(["face", "audio", "noise"], probs))
    choice = choose(val, y, groups, methods=("weighted", "caruana", "stacking"), stacking_kw=FAST_STACK)
    _consistent(choice)
    table = {row["method"]: row for row in choice["table"]}
    assert table["weighted"]["cv_accuracy"] == 1.0
    assert choice["method"] == "weighted"  # best cv score; the simplest on ties
    assert choice["methods"]["weighted"]["weights"] == {"face": 0.5, "audio": 0.5, "noise": 0.0}
    choice = json.loads(json.dumps(choice))
    test_probs, _, _ = ab_case(n_per_half=10, seed=3)
    np.testing.assert_allclose(
        apply(choice, dict(zip(["face", "audio", "noise"], test_probs))), fuse(test_probs, [0.5, 0.5, 0])
    )
    # a zero-weight model need not be present at test time
    np.testing.assert_allclose(
        apply(choice, {"face": test_probs[0], "audio": test_probs[1]}), fuse(test_probs[:2], [1, 1])
    )
    with pytest.raises(KeyError):
        apply(choice, {"face": test_probs[0]})


def test_choose_rejects_unknown_method():
    probs, y, groups = ab_case()
    with pytest.raises(ValueError):
        choose(dict(zip("abc", probs)), y, groups, methods=("median",))
