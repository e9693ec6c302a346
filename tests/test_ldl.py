"""Label-distribution learning for the frame CNN (issue 20): the uncertainty-aware target
on a constructed case, the direction λ learns in, FER+ vote targets, the label flipper,
the occluders, the scores, and one real (tiny) training run through the shared loop."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import Interrupted, stop_training_in_epoch
from emoflow.errors import EmoflowError
from emoflow.nets import ldl
from emoflow.robustness import metrics
from emoflow.robustness.noise import flip_labels
from emoflow.robustness.occlude import face_box, occlude, region, template

REPO = Path(__file__).resolve().parents[1]
FER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _ferplus_map():
    from emoflow.dataset.labels import label_map

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    return label_map(cfg, "ferplus8", "fer2013")


# --------------------------------------------------------------------------- the target


def test_target_is_lambda_onehot_plus_similarity_weighted_neighbour_average():
    onehot = torch.tensor([[1.0, 0.0, 0.0]])
    p_nb = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # two neighbours, sure of classes 1 and 2
    dist = torch.tensor([[0.1, 0.5]])  # L1 distances in the auxiliary space
    knn_w = torch.exp(-dist / 0.5)
    sim = torch.tensor([[0.5, 1.0]])
    lam = torch.tensor([0.3])
    t = ldl.target_distribution(onehot, p_nb, knn_w, sim, lam)
    w1, w2 = math.exp(-0.2) * 0.5, math.exp(-1.0) * 1.0
    expected = [0.3, 0.7 * w1 / (w1 + w2), 0.7 * w2 / (w1 + w2)]
    assert t[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert float(t.sum()) == pytest.approx(1.0)


def test_nearest_finds_the_known_neighbours_and_skips_faces_without_a_point():
    aux = np.array([[0, 0], [0.1, 0], [0, 0.3], [5, 5], [5.2, 5], [9, 9]], np.float32)
    has = np.array([True, True, True, True, True, False])
    nb, w = ldl.nearest(aux, has, k=2, kernel=0.5, chunk=2)  # chunks of 2: the self-exclusion per chunk
    assert nb[0].tolist() == [1, 2] and nb[3].tolist() == [4, 2]
    assert 5 not in nb[:5] and nb[5].tolist() == [-1, -1] and w[5].tolist() == [0, 0]
    assert w[0].tolist() == pytest.approx([math.exp(-0.1 / 0.5), math.exp(-0.3 / 0.5)], rel=1e-5)


def _objective(labels, neighbours, cached_probs, feat_dim=4):
    obj = ldl.UncertaintyLDL(
        np.array(labels),
        np.array(neighbours),
        np.ones(np.shape(neighbours), np.float32),
        n_classes=3,
        feat_dim=feat_dim,
        layer="fc",
        batch_size=1,
    )
    obj.probs = torch.tensor(cached_probs, dtype=torch.float32)
    obj.feats = torch.randn(len(labels), feat_dim, generator=torch.Generator().manual_seed(0))
    return obj


@pytest.mark.parametrize("agrees", [False, True])
def test_lambda_falls_for_a_label_its_neighbours_disagree_with(agrees):
    # face 0 is labelled class 0; its neighbours 1 and 2 are predicted class 0 (agree) or 1 (disagree),
    # and so is face 0 itself: the label's weight λ must fall when they disagree, rise when they agree
    c = 0 if agrees else 1
    sure = [0.05, 0.05, 0.05]
    sure[c] = 0.9
    obj = _objective([0, c, c], [[1, 2], [0, 2], [0, 1]], [sure, sure, sure])
    logits = torch.log(torch.tensor([sure]))
    feats = torch.randn(1, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    before = obj.lam()[0]
    obj.zero_grad()
    loss = obj.loss(logits, feats, np.array([0]), torch.tensor([0]))
    loss.backward()
    grad = float(obj.lam_hat.grad[0])
    obj.step()
    after = obj.lam()[0]
    if agrees:
        assert grad < 0 and after > before
    else:
        assert grad > 0 and after < before
    assert obj.lam_hat.grad[1:].abs().sum() == 0  # only the batch's own λ moves


def test_a_face_without_neighbours_keeps_its_hard_label():
    obj = _objective([2, 0, 0], [[-1, -1], [0, 2], [0, 1]], [[1 / 3] * 3] * 3)
    t, lam = obj.targets(torch.zeros(1, 4), torch.tensor([0]), torch.tensor([2]))
    assert t[0].tolist() == pytest.approx([0, 0, 1]) and float(lam[0].detach()) == 1.0
    assert obj.lam()[0] == 1.0


def test_pseudo_va_places_votes_on_the_circumplex():
    counts = np.zeros((3, 8), np.float32)
    counts[0, 1] = 10  # all happiness
    counts[1, [0, 3]] = 5  # half neutral (origin), half sadness
    va, has = ldl.pseudo_va(counts)
    assert has.tolist() == [True, True, False]
    happy, sad = ldl.CIRCUMPLEX[1], ldl.CIRCUMPLEX[3]
    assert va[0] == pytest.approx(happy) and happy[0] > 0.9  # pleasant, mildly aroused
    assert va[1] == pytest.approx(sad / 2) and sad[0] < 0 and sad[1] < 0


# --------------------------------------------------------------------------- FER+ votes


def test_vote_targets_map_contempt_drop_it_and_fall_back_to_the_hard_label():
    fmap = _ferplus_map()
    assert fmap["contempt"] is None and fmap["happiness"] == "happy"
    cols = list(ldl.VOTE_COLUMNS)
    counts = np.zeros((3, 8), np.float32)
    counts[0, cols.index("happiness")], counts[0, cols.index("anger")], counts[0, cols.index("contempt")] = 6, 2, 2
    counts[1, cols.index("contempt")] = 10  # only a class the label space lacks
    # row 2: unmatched (no votes)
    t, has = ldl.vote_targets(counts, np.array([3, 4, 5]), FER, fmap)
    assert t[0].tolist() == pytest.approx([0.25, 0, 0, 0.75, 0, 0, 0])  # contempt dropped, renormalised
    assert has.tolist() == [True, False, False]
    assert t[1].tolist() == np.eye(7)[4].tolist() and t[2].tolist() == np.eye(7)[5].tolist()
    assert ldl.majority(counts, FER, fmap).tolist() == [3, -1, -1]


def _tables(tmp_path, n=3, swap=False):
    names = [f"Training_{i}.jpg" for i in range(n)]
    fer = pa.table({"split": ["train"] * n, "label": ["happy"] * n, "source_file": names, "pixels": [bytes(2304)] * n})
    votes = {
        "source_file": names[::-1] if swap else names,
        "split": ["train"] * n,
        "fer_label": ["happy"] * n,
        "matched": [True, True, False],
    }
    for c in (*ldl.VOTE_COLUMNS, "unknown", "not_face"):
        votes[c] = pa.array([0] * n, pa.int16())
    votes["happiness"] = pa.array([7, 0, 9], pa.int16())
    votes["unknown"] = pa.array([3, 4, 1], pa.int16())
    votes["not_face"] = pa.array([0, 6, 0], pa.int16())
    pq.write_table(fer, tmp_path / "fer.parquet")
    pq.write_table(pa.table(votes), tmp_path / "votes.parquet")
    return tmp_path / "fer.parquet", tmp_path / "votes.parquet"


def test_read_votes_drops_unknown_and_not_a_face_and_zeroes_unmatched(tmp_path):
    fer, votes = _tables(tmp_path)
    counts, matched = ldl.read_votes(votes, fer)
    assert counts.shape == (3, 8) and matched.tolist() == [True, True, False]
    assert counts.sum(1).tolist() == [7, 0, 0]  # unknown / not_face never counted; unmatched all zero
    t, has = ldl.vote_targets(counts, np.array([3, 0, 1]), FER, _ferplus_map())
    assert t[0].tolist() == np.eye(7)[3].tolist() and has.tolist() == [True, False, False]
    assert t[1].tolist() == np.eye(7)[0].tolist()  # only unknown / not-a-face votes: the hard label


def test_read_votes_rejects_rows_in_another_order(tmp_path):
    fer, votes = _tables(tmp_path, swap=True)
    with pytest.raises(EmoflowError, match="votes.parquet.*fer.parquet"):
        ldl.read_votes(votes, fer)


def test_real_votes_align_with_fer2013(data_root):
    counts, matched = ldl.read_votes(data_root / "ferplus/ferplus_votes.parquet", data_root / "fer2013/fer2013.parquet")
    assert counts.shape == (32298, 8) and int(matched.sum()) == 32116


# --------------------------------------------------------------------------- label noise


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2, 0.3])
def test_label_flipper_has_the_exact_rate_and_is_reproducible(rate):
    y = np.random.default_rng(5).integers(0, 7, 1001)
    noisy, flipped = flip_labels(y, rate, 7, seed=3)
    assert flipped.sum() == round(rate * 1001)
    assert np.all(noisy[flipped] != y[flipped]) and np.all(noisy[~flipped] == y[~flipped])
    again, flipped2 = flip_labels(y, rate, 7, seed=3)
    assert np.array_equal(again, noisy) and np.array_equal(flipped, flipped2)
    if rate:
        other, _ = flip_labels(y, rate, 7, seed=4)
        assert not np.array_equal(other, noisy)


def test_flips_go_to_every_other_class():
    y = np.zeros(7000, np.int64)
    noisy, flipped = flip_labels(y, 0.9, 7, seed=0)
    counts = np.bincount(noisy[flipped], minlength=7)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * counts[1:].mean()


# --------------------------------------------------------------------------- occluders


def test_occluders_land_where_the_landmarks_say():
    size = 48
    lm = template(size) + np.array([3.0, 2.0], np.float32)  # a face shifted right and down
    img = np.full((1, size, size), 200, np.uint8)
    eye = occlude(img, "eye_bar", lm)[0]
    for x, y in lm[:2]:
        assert eye[int(y), int(x)] == 0  # both eyes covered
    assert eye[int(lm[3, 1]), int(lm[3, 0])] == 200 and eye[int(lm[2, 1]), int(lm[2, 0])] == 200  # mouth, nose free
    low = occlude(img, "lower_face", lm)[0]
    for x, y in lm[2:]:
        assert low[int(y), int(x)] == 0  # nose tip and mouth corners covered
    assert low[int(lm[0, 1]), int(lm[0, 0])] == 200  # eyes free
    x0, y0, x1, y1 = face_box(lm, size)
    for frac in (25, 50):
        patch = occlude(img, f"patch{frac}", lm, seed=1)[0]
        ys, xs = np.nonzero(patch == 0)
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1  # inside the face box
        assert len(xs) / ((x1 - x0) * (y1 - y0)) == pytest.approx(frac / 100, abs=0.03)
        assert np.array_equal(occlude(img, f"patch{frac}", lm, seed=1)[0], patch)  # same seed, same patch
    assert region("eye_bar", lm, size) != region("eye_bar", template(size), size)


# --------------------------------------------------------------------------- scores


def test_distribution_scores_and_auroc():
    q = np.array([[0.5, 0.5, 0.0]])
    s = metrics.distribution_scores(q, q)
    assert s["kl_ferplus"] == pytest.approx(0) and s["intersection_ferplus"] == pytest.approx(1)
    assert s["cosine_ferplus"] == pytest.approx(1) and s["chebyshev_ferplus"] == pytest.approx(0)
    s = metrics.distribution_scores(q, np.array([[1.0, 0.0, 0.0]]))
    assert s["intersection_ferplus"] == pytest.approx(0.5) and s["chebyshev_ferplus"] == pytest.approx(0.5)
    assert s["kl_ferplus"] > 5  # log(0.5 / 1e-7) / 2
    rng = np.random.default_rng(0)
    sc, pos = rng.normal(size=200).round(1), rng.random(200) < 0.3
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in sc[pos] for b in sc[~pos]])
    assert metrics.auroc(sc, pos) == pytest.approx(brute)
    assert metrics.auroc(sc, np.zeros(200, bool)) is None


# --------------------------------------------------------------------------- a real tiny fit


def _tiny_uncertainty(y, counts):
    """Uncertainty targets for a tiny 3-class VGG (bottleneck fc of 16), K = 4, one warm-up epoch."""
    return ldl.build_objective(
        "uncertainty",
        labels=y,
        classes=["a", "b", "c"],
        counts=counts,
        layer="fc",
        feat_dim=16,
        batch_size=16,
        cfg={"uncertainty": {"k": 4, "warmup_epochs": 1}},
    )


def test_uncertainty_targets_train_through_the_shared_loop():
    from emoflow.nets.frame import build
    from emoflow.nets.train import fit

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, classes = 48, 3
    y = rng.integers(0, classes, n)
    x = (rng.random((n, 16, 16)) * 60 + y[:, None, None] * 60).astype(np.uint8)  # class shows in brightness
    counts = np.zeros((n, 8), np.float32)
    counts[np.arange(n), y] = 10
    obj = _tiny_uncertainty(y, counts)
    model = build("vgg", classes, size=16, widths=(8, 16), convs=1, fc=16)
    cfg = {"epochs": 3, "batch_size": 16, "lr": 0.05, "precision": "fp32", "augment": {"erase": 0.0}}
    res = fit(model, x, y, x[:12], y[:12], cfg, torch.device("cpu"), 0.5, 0.25, objective=obj)
    assert len(res.history) == 3 and np.isfinite(res.history[-1]["loss"])
    lam = obj.lam()
    assert lam.shape == (n,) and not np.allclose(lam, 1 / (1 + math.exp(-0.5)))  # λ learned
    assert obj.centres.abs().sum() > 0  # the centres moved


def _fer_with_votes(tmp_path, n_train=42, n_test=14):
    """A small FER2013 table and its FER+ votes (real computations on constructed faces)."""
    rng = np.random.default_rng(1)
    n = n_train + n_test
    y = np.arange(n) % 7
    pix = [(rng.random((48, 48)) * 80 + 20 * y[i]).astype(np.uint8).tobytes() for i in range(n)]
    split = ["train"] * n_train + ["public_test"] * n_test
    names = [f"face_{i}.jpg" for i in range(n)]
    labels = [FER[k] for k in y]
    pq.write_table(
        pa.table({"split": split, "label": labels, "source_file": names, "pixels": pix}), tmp_path / "fer.parquet"
    )
    fplus = {"happy": "happiness", "sad": "sadness", "angry": "anger"}
    votes = {"source_file": names, "split": split, "fer_label": labels, "matched": [i % 10 != 3 for i in range(n)]}
    for c in (*ldl.VOTE_COLUMNS, "unknown", "not_face"):
        votes[c] = pa.array(
            [8 if fplus.get(lab, lab) == c else (2 if c == "neutral" else 0) for lab in labels], pa.int16()
        )
    pq.write_table(pa.table(votes), tmp_path / "votes.parquet")
    return tmp_path / "fer.parquet", tmp_path / "votes.parquet"


@pytest.mark.parametrize("target", ["votes", "uncertainty"])
def test_robustness_fit_and_score_a_tiny_grid_cell(tmp_path, target):
    from emoflow.robustness import stage

    fer, votes = _fer_with_votes(tmp_path)
    cfg = {
        "net": {
            "arch": "vgg",
            "net": {"widths": [8, 16], "convs": 1, "fc": 16},
            "epochs": 1,
            "train": {"source": "fer2013", "path": str(fer), "val_fraction": 0.2},
            "training": {"batch_size": 16, "precision": "fp32", "uncertainty": {"k": 3, "warmup_epochs": 0}},
        },
        "label_map": _ferplus_map(),
        "votes": str(votes),
        "seed": 0,
    }
    meta = stage.fit_one(
        target,
        20,
        str(tmp_path / "m.json"),
        str(tmp_path / "faces.parquet"),
        cfg,
        FER,
        1,
        __import__("logging").getLogger("t"),
    )
    assert meta["targets"] == target and meta["training"]["label_noise"] == {"rate": 0.2, "seed": 0}
    faces = pq.read_table(tmp_path / "faces.parquet").to_pandas()
    assert (
        faces["flipped"].sum() == round(0.2 * len(faces))
        and (faces["given"] != faces["label"]).sum() == faces["flipped"].sum()
    )
    assert faces["lam"].notna().any() == (target == "uncertainty")
    test = stage.load_public_test(str(fer), str(votes), _ferplus_map())
    res = stage.score_model(str(tmp_path / "m.json"), test, ["eye_bar"], str(tmp_path / "faces.parquet"))
    pt = res["public_test"]
    assert 0 <= pt["accuracy"] <= 1 and pt["n_votes"] == 12 and pt["kl_ferplus"] >= 0  # rows 43 and 53 unmatched
    assert set(res["occlusion"]) == {"eye_bar"} and (res["lambda_auroc"] is None) == (target == "votes")


def test_uncertainty_with_frozen_feature_space():
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(0, 1, (20, 40)), rng.normal(6, 1, (20, 40))]).astype(np.float32)
    obj = ldl.build_objective(
        "uncertainty",
        labels=np.repeat([0, 1], 20),
        classes=["a", "b"],
        counts=None,
        layer="fc",
        feat_dim=8,
        batch_size=4,
        cfg={"uncertainty": {"aux": "features", "k": 5}},
        aux_features=feats,
    )
    nb = obj.neighbours.numpy()
    assert np.all((nb < 20) == (np.arange(40) < 20)[:, None])  # neighbours from the face's own cluster
    assert obj.knn_w.numpy().mean() == pytest.approx(np.exp(-1 / 0.5), rel=0.5)  # distances scaled to mean 1


def test_warmup_epochs_train_on_hard_labels_and_skip_the_cache():
    obj = _objective([0, 1, 1], [[1, 2], [0, 2], [0, 1]], [[0.05, 0.9, 0.05]] * 3)
    obj.cfg["warmup_epochs"] = 1
    obj.begin_epoch(None, None, 0.5, 0.25, torch.device("cpu"), "fp32", epoch=0)  # no model needed: nothing cached
    t, lam = obj.targets(torch.zeros(1, 4), torch.tensor([0]), torch.tensor([0]))
    assert t[0].tolist() == [1.0, 0.0, 0.0] and float(lam[0].detach()) == 1.0


def test_uncertainty_on_a_frozen_frame_cnn_feature_space(tmp_path):
    from emoflow.robustness import stage

    fer, votes = _fer_with_votes(tmp_path)
    net = {
        "arch": "vgg",
        "net": {"widths": [8, 16], "convs": 1, "fc": 16},
        "epochs": 1,
        "train": {"source": "fer2013", "path": str(fer), "val_fraction": 0.2},
        "training": {"batch_size": 16, "precision": "fp32"},
    }
    cfg = {"net": net, "label_map": _ferplus_map(), "votes": str(votes), "seed": 0}
    log = __import__("logging").getLogger("t")
    stage.fit_one("hard", 0, str(tmp_path / "frozen.json"), str(tmp_path / "f0.parquet"), cfg, FER, 1, log)
    u = {"k": 3, "warmup_epochs": 0, "aux": "features", "aux_model": str(tmp_path / "frozen.json")}
    cfg["net"] = {**net, "training": {**net["training"], "uncertainty": u}}
    meta = stage.fit_one("uncertainty", 10, str(tmp_path / "u.json"), str(tmp_path / "u.parquet"), cfg, FER, 1, log)
    assert meta["targets"] == "uncertainty" and meta["training"]["uncertainty"]["aux"] == "features"
    assert pq.read_table(tmp_path / "u.parquet")["lam"].null_count == 0  # every face has neighbours in feature space


def test_an_interrupted_uncertainty_fit_resumes_with_its_lambdas(tmp_path, monkeypatch):
    from emoflow.nets import train as trainer
    from emoflow.nets.frame import build

    rng = np.random.default_rng(0)
    n = 40
    y = rng.integers(0, 3, n)
    x = (rng.random((n, 16, 16)) * 60 + y[:, None, None] * 60).astype(np.uint8)
    counts = np.zeros((n, 8), np.float32)
    counts[np.arange(n), y] = 10
    cfg = {"epochs": 3, "batch_size": 16, "lr": 0.05, "precision": "fp32", "augment": {"erase": 0.0}}

    def run(resume):
        torch.manual_seed(0)
        obj = _tiny_uncertainty(y, counts)
        net = build("vgg", 3, size=16, widths=(8, 16), convs=1, fc=16)
        return obj, trainer.fit(net, x, y, x[:10], y[:10], cfg, torch.device("cpu"), 0.5, 0.25, resume, objective=obj)

    ref_obj, ref = run(None)

    real_info = stop_training_in_epoch(monkeypatch, 3)  # after epoch 2 was checkpointed
    with pytest.raises(Interrupted):
        run(str(tmp_path / "resume"))
    monkeypatch.setattr(trainer.log, "info", real_info)
    obj, res = run(str(tmp_path / "resume"))
    assert res.resumed_from == 2
    assert np.allclose([h["loss"] for h in res.history], [h["loss"] for h in ref.history])
    assert np.allclose(obj.lam(), ref_obj.lam(), atol=1e-6) and torch.allclose(obj.centres, ref_obj.centres, atol=1e-6)
