"""Expression similarity (emoflow.similarity): the triplet loss, mining and accuracy, the
held-out split, a real fit on tiny synthetic triplets, the extractor, the index and search,
the workflow wiring; and, with the shared data, the metric against the data's own baseline."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from emoflow.faces.read import Clip
from emoflow.nets.frame import build
from emoflow.similarity import index as I
from emoflow.similarity import model as M
from emoflow.similarity import search as S
from emoflow.similarity import triplets as T
from emoflow.similarity.extractor import ExpressionEmbedding
from emoflow.similarity.fit import fit

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
TINY = {"widths": [8, 8, 16, 16], "fc": 32}


# --------------------------------------------------------------------------- helpers


def bars(kind: int, rng, size: int = 48) -> np.ndarray:
    """Grey 48x48 stripes: kind 0 dark horizontal, 1 mid-grey vertical, 2 bright diagonal
    (random level, phase, period, noise)."""
    yy, xx = np.mgrid[0:size, 0:size]
    coord = [yy, xx, (xx + yy) / 1.4][kind]
    level = (70, 128, 186)[kind] + rng.uniform(-15, 15)
    img = level + rng.uniform(25, 45) * np.sign(np.sin(2 * np.pi * coord / rng.uniform(5, 9) + rng.uniform(0, 6.3)))
    return np.clip(img + rng.normal(0, 15, img.shape), 0, 255).astype(np.uint8)


def trunk_fit(tmp: Path, seed: int = 0) -> Path:
    """A (random) tiny VGG frame CNN saved as a fit_frame_cnn fit: JSON + .pt."""
    torch.manual_seed(seed)
    net = build("vgg", len(CLASSES), size=48, **TINY)
    path = tmp / "trunk.json"
    torch.save({"state_dict": net.state_dict()}, path.with_suffix(".pt"))
    path.write_text(json.dumps({"arch": "vgg", "net": TINY, "size": 48, "classes": CLASSES, "mean": 0.5, "std": 0.25}))
    return path


def embedding_fit(tmp: Path, framing=None, tune="fc", seed=0) -> Path:
    """An (untrained) expression embedding saved as a fit: JSON + .pt, as fit() writes them."""
    trunk, tmeta = M.load_trunk(trunk_fit(tmp, seed))
    torch.manual_seed(seed)
    net = M.Embedder(trunk, "vgg", tune=tune, hidden=16, dim=16).eval()
    meta = {
        "trunk": {k: tmeta[k] for k in ("arch", "net", "size", "classes", "mean", "std")},
        "head": {"tune": tune, "inputs": net.inputs, "hidden": 16, "dim": 16, "dropout": 0.2},
        "framing": framing,
        "flip_tta": True,
    }
    path = tmp / "emb.json"
    torch.save({"state_dict": net.state_dict()}, path.with_suffix(".pt"))
    path.write_text(json.dumps(meta))
    return path


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def faces_rgb(n: int, seed: int = 0) -> np.ndarray:
    """Distinct 112x112 colour 'crops' (smooth random blobs, so JPEG keeps them apart)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((112, 112), Image.BICUBIC)) for s in small])


def write_crops(path: Path, videos: dict[str, np.ndarray]) -> Path:
    rows = {"video_id": [], "frame": [], "time": [], "color": [], "grey": []}
    for vid, rgb in videos.items():
        for k, im in enumerate(rgb):
            rows["video_id"].append(vid)
            rows["frame"].append(k)
            rows["time"].append(k * 0.2)
            rows["color"].append(jpeg(im))
            rows["grey"].append(np.asarray(Image.fromarray(im).convert("L").resize((48, 48))).tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)
    return path


# --------------------------------------------------------------------------- loss, mining, metric


def test_loss_is_zero_beyond_the_margin_and_positive_inside_it():
    ea, ep = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    far = torch.tensor([[0.0, 1.0]])  # d(a,n) = d(p,n) = 2 > 0 + 0.1
    loss, (d_ap, d_an, d_pn) = T.triplet_losses(ea, ep, far, 0.1)
    assert float(loss) == 0.0 and float(d_ap) == 0.0 and float(d_an) == pytest.approx(2.0)
    # separated, but by less than the margin: positive
    near = torch.tensor([[0.99, 0.141]])
    loss, (d_ap, d_an, _) = T.triplet_losses(ea, ep, near, 0.1)
    assert 0 < float(d_an) < 0.1 and float(loss) == pytest.approx(2 * (0.1 - float(d_an)), abs=1e-6)
    # both terms: the pair must beat a-n and p-n; here only p-n violates
    a, p, n = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.5, 0.0]]), torch.tensor([[0.0, 1.0]])
    loss, (d_ap, d_an, d_pn) = T.triplet_losses(a, p, n, torch.tensor([1.2]))
    expect = max(0.0, 0.25 - 1.0 + 1.2) + max(0.0, 0.25 - 1.25 + 1.2)
    assert float(loss) == pytest.approx(expect)
    # per-type margins
    assert T.margins(
        {"one_class": 0.1, "two_class": 0.2, "three_class": 0.3}, np.array(["two_class", "one_class"])
    ).tolist() == pytest.approx([0.2, 0.1])
    with pytest.raises(ValueError, match="three_class"):
        T.margins({"one_class": 0.1, "two_class": 0.2}, np.array(["one_class"]))


def test_mining_picks_the_triplets_it_names():
    loss = torch.tensor([0.0, 0.3, 0.05, 0.9])
    d_ap = torch.tensor([0.1, 0.5, 0.1, 0.9])
    d_other = torch.tensor([1.0, 0.4, 0.12, 0.5])  # triplet 2: right order, inside the margin
    dists = (d_ap, d_other, d_other)
    assert float(T.mined_mean(loss, dists, "none")) == pytest.approx(loss.mean().item())
    assert float(T.mined_mean(loss, dists, "active")) == pytest.approx((0.3 + 0.05 + 0.9) / 3)
    assert float(T.mined_mean(loss, dists, "semihard")) == pytest.approx(0.05)
    assert float(T.mined_mean(loss, dists, "hard", 0.5)) == pytest.approx((0.9 + 0.3) / 2)
    with pytest.raises(ValueError, match="unknown mining"):
        T.mined_mean(loss, dists, "batch_all")


def test_triplet_accuracy_on_a_constructed_case():
    # faces on a line: 0 at 0.0, 1 at 0.1, 2 at 1.0, 3 at 1.05, 4 at 3.0
    emb = np.array([[0.0], [0.1], [1.0], [1.05], [3.0]])
    t = T.Triplets(
        faces=np.array([[0, 1, 2], [0, 1, 2], [2, 3, 4], [4, 2, 3], [0, 2, 4]]),
        odd=np.array([2, 0, 2, 0, 1]),  # right, wrong, right, right (pair b-c), wrong
        type=np.array(["one_class", "one_class", "two_class", "two_class", "three_class"], dtype=object),
    )
    acc = T.accuracy(emb, t)
    assert acc["all"] == pytest.approx(3 / 5) and acc["n"] == 5
    assert (
        acc["one_class"] == pytest.approx(0.5) and acc["two_class"] == pytest.approx(1.0) and acc["three_class"] == 0.0
    )
    # ties count as a random choice among the tied pairs: a constant embedding scores 1/3
    assert T.accuracy(np.zeros((5, 4)), t)["all"] == pytest.approx(1 / 3)
    # two pairs tied for closest, the annotated one among them: 1/2
    sym = np.array([[0.0], [1.0], [2.0]])
    half = T.Triplets(
        np.array([[0, 1, 2]]), np.array([0]), np.array(["two_class"], dtype=object)
    )  # pair b-c, tied with a-b
    assert T.triplet_scores(sym, half).tolist() == [0.5]
    # the roles: anchor and positive are the annotated pair, negative the odd face
    a, p, n = T.pair_roles(t)
    assert (a.tolist(), p.tolist(), n.tolist()) == ([0, 1, 2, 2, 0], [1, 2, 3, 3, 4], [2, 0, 4, 4, 2])


def test_holdout_split_keeps_held_out_faces_out_of_the_fit():
    rng = np.random.default_rng(0)
    faces = np.stack([rng.choice(300, 3, replace=False) for _ in range(4000)])
    t = T.Triplets(faces, rng.integers(0, 3, 4000), np.array(["one_class"] * 4000, dtype=object))
    fit_rows, held_rows = T.holdout_split(t, 300, 0.1, seed=1)
    assert len(fit_rows) + len(held_rows) == len(t) and not set(fit_rows) & set(held_rows)
    fit_faces = set(t.faces[fit_rows].ravel())
    # every held-out triplet has a face the fit never sees
    assert all(set(t.faces[r]) - fit_faces for r in held_rows)
    assert T.holdout_split(t, 300, 0.1, seed=1)[1].tolist() == held_rows.tolist()  # seeded
    # min_held=2: two or three faces the fit never sees; the rest (one) in neither part
    fit2, held2 = T.holdout_split(t, 300, 0.2, seed=1, min_held=2)
    fit_faces = set(t.faces[fit2].ravel())
    assert len(held2) > 50 and all(len(set(t.faces[r]) - fit_faces) >= 2 for r in held2)
    assert len(fit2) + len(held2) < len(t)


# --------------------------------------------------------------------------- a real fit, tiny data


def tiny_fer(tmp: Path, n_per_class: int = 30, seed: int = 0):
    """A FER2013-like table of stripe 'faces' (3 kinds) and two-class triplets over them."""
    rng = np.random.default_rng(seed)
    rows = {"split": [], "label": [], "source_file": [], "pixels": []}
    kinds = {}
    for split, prefix in (("train", "Training"), ("public_test", "PublicTest")):
        for k in range(3):
            for i in range(n_per_class):
                name = f"{prefix}_{k}{i:04d}.jpg"
                rows["split"].append(split)
                rows["label"].append(CLASSES[k])
                rows["source_file"].append(name)
                rows["pixels"].append(bars(k, rng).tobytes())
                kinds[name] = k
    images = tmp / "fer2013.parquet"
    pq.write_table(pa.table(rows), images)
    # FER+-style votes: mostly the face's own kind (as emotion column k), some noise
    votes = {"source_file": rows["source_file"], "split": rows["split"], "matched": [True] * len(rows["split"])}
    for j, col in enumerate(T.VOTE_COLUMNS):
        votes[col] = [int(8 * (kinds[f] == j)) + int(rng.integers(0, 2)) for f in rows["source_file"]]
    pq.write_table(pa.table(votes), tmp / "ferplus_votes.parquet")
    paths = {}
    for split, prefix, n in (("train", "Training", 300), ("val", "PublicTest", 60)):
        names = [f for f in kinds if f.startswith(prefix)]
        trips = []
        for j in range(n):
            k1, k2 = rng.choice(3, 2, replace=False)
            same = rng.choice([f for f in names if kinds[f] == k1], 2, replace=False)
            odd = rng.choice([f for f in names if kinds[f] == k2])
            pos = j % 3
            three = list(same)
            three.insert(pos, odd)
            trips.append({"a": three[0], "b": three[1], "c": three[2], "odd": "abc"[pos], "type": T.TYPES[j % 3]})
        paths[split] = tmp / f"triplets_{split}.parquet"
        pq.write_table(pa.Table.from_pylist(trips), paths[split])
    return images, paths


def test_fit_learns_tiny_triplets_and_writes_a_self_contained_model(tmp_path):
    images, trips = tiny_fer(tmp_path)
    trunk = trunk_fit(tmp_path)
    out = tmp_path / "models" / "emb.json"
    params = {
        "images": str(images),
        "triplets": str(trips["train"]),
        "val_triplets": str(trips["val"]),
        "epochs": 8,
        "batch_size": 32,
        "lr": 0.01,
        "holdout": 0.2,
        "hidden": 32,
        "margin": {"one_class": 0.1, "two_class": 0.2, "three_class": 0.2},
        "mining": "active",
        "framing": {"crop": 0.6, "center_y": 0.55},
        "votes": str(tmp_path / "ferplus_votes.parquet"),
        "votes_weight": 0.5,
    }
    meta = fit(str(trunk), str(out), params, threads=1)
    assert out.is_file() and out.with_suffix(".pt").is_file()
    assert (
        1 <= meta["best_epoch"] <= 8 and len(meta["history"]) == 8 and len(meta["refit_history"]) == meta["best_epoch"]
    )
    assert 0 < meta["data"]["held_triplets"] < 300 - meta["data"]["fit_triplets"]
    assert meta["history"][-1]["loss"] < meta["history"][0]["loss"]
    # unseen faces (public_test), scored once at the end: far above chance (1/3)
    assert meta["val"]["all"] > 0.6, meta["val"]
    assert meta["framing"] == {"crop": 0.6, "center_y": 0.55} and meta["head"]["tune"] == "fc"
    # the JSON + .pt alone rebuild the network (trunk included): same embeddings
    net, meta2 = M.load(out)
    vfaces, vtrip = T.load(images, trips["val"], "public_test")
    e = M.embed(net, vfaces.images, meta2["trunk"]["mean"], meta2["trunk"]["std"], flip_tta=True)
    assert T.accuracy(e, vtrip)["all"] == pytest.approx(meta["val"]["all"])
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_votes_are_the_training_faces_own_distributions(tmp_path):
    images, trips = tiny_fer(tmp_path)
    faces, _ = T.load(images, trips["train"], "train")
    dist, valid = T.load_votes(tmp_path / "ferplus_votes.parquet", faces, "train")
    assert dist.shape == (len(faces), 8) and valid.all()
    assert np.allclose(dist.sum(1), 1.0)
    kinds = np.array([CLASSES.index(lab) for lab in faces.labels])  # stripe kind k <-> vote column k
    assert (dist.argmax(1) == kinds).all()


def test_frozen_trunk_stays_frozen_and_only_the_tuned_part_trains(tmp_path):
    trunk, _ = M.load_trunk(trunk_fit(tmp_path))
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    for tune, moved in (("none", set()), ("fc", {"fc."}), ("block", {"fc.", "stages.3."})):
        trunk.load_state_dict(before)
        net = M.Embedder(trunk, "vgg", tune=tune, hidden=8)
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
        x = torch.randn(6, 1, 48, 48)
        net.train()
        net.tail(net.frozen(x)).sum().backward()
        opt.step()
        changed = {k for k, v in trunk.state_dict().items() if not torch.equal(v, before[k])}
        assert all(any(k.startswith(m) for m in moved) for k in changed), (tune, changed)
        assert bool(changed) == bool(moved), tune
        # the split network equals the whole one
        net.eval()
        assert torch.allclose(net(x), net.tail(net.frozen(x)))


# --------------------------------------------------------------------------- extractor, index, search


@pytest.mark.parametrize("framing", [None, {"crop": 0.6, "center_y": 0.55}])
def test_extractor_gives_unit_16d_vectors_per_frame(tmp_path, framing):
    model = embedding_fit(tmp_path, framing)
    ext = ExpressionEmbedding({"extractor": "expression_embedding", "model": str(model), "trunk": "frame_cnn"})
    assert ext.level == "frame" and ext.dim == 16
    rgb = faces_rgb(5)
    grey = np.stack([np.asarray(Image.fromarray(c).convert("L").resize((48, 48))) for c in rgb])
    clip = Clip(
        "v",
        np.arange(5) * 2,
        np.arange(5) * 0.4,
        grey,
        [jpeg(c) for c in rgb],
        np.zeros((5, 5, 2)),
        np.zeros((5, 4)),
        (256, 256),
    )
    out = ext.extract(clip)
    assert out.values.shape == (5, 16) and out.values.dtype == np.float32
    assert np.allclose(np.linalg.norm(out.values, axis=1), 1.0, atol=1e-5)
    assert out.frames.tolist() == [0, 2, 4, 6, 8] and out.times.tolist() == pytest.approx([0, 0.4, 0.8, 1.2, 1.6])
    with pytest.raises(ValueError, match="unknown parameter"):
        ExpressionEmbedding({"model": str(model), "colour": True})


def test_nearest_neighbour_of_an_indexed_face_is_itself(tmp_path):
    model = embedding_fit(tmp_path, {"crop": 0.6, "center_y": 0.55})
    run = tmp_path / "run"
    videos = {"a": faces_rgb(4, 1), "b": faces_rgb(3, 2), "c": faces_rgb(5, 3)}
    crops = [
        write_crops(run / "crops" / "s000.parquet", {"a": videos["a"], "b": videos["b"]}),
        write_crops(run / "crops" / "s001.parquet", {"c": videos["c"]}),
    ]
    stages = {"probe": {}, "frames": {}, "faces": {}}
    # the fit as Snakemake's output cache leaves it: links in the run's models/ folder to
    # files of other names in the cache
    cache, fit = tmp_path / "cache", run / "models" / "expression_embedding"
    cache.mkdir(), fit.mkdir(parents=True)
    for suffix, name in ((".json", "h1_meta.json"), (".pt", "h1_model.pt")):
        model.with_suffix(suffix).rename(cache / name)
        (fit / f"expression_embedding{suffix}").symlink_to(cache / name)
    model = fit / "expression_embedding.json"
    meta = I.build(run / "similarity" / "index.parquet", model, [str(c) for c in crops], stages)
    assert meta["n"] == 12 and meta["videos"] == 3 and meta["crops"] == ["crops/s000.parquet", "crops/s001.parquet"]
    assert meta["model"] == "models/expression_embedding/expression_embedding.json"
    index = I.Index.load(run)
    assert index.x.shape == (12, 16) and np.allclose(np.linalg.norm(index.x, axis=1), 1.0, atol=1e-5)
    emb = I.Embedding(index.path(index.meta["model"]))
    for vid, rgb in videos.items():
        grey = np.stack([np.asarray(Image.fromarray(c).convert("L").resize((48, 48))) for c in rgb])
        q = emb.crops(I.decode_colour([jpeg(c) for c in rgb]), grey)
        for k in range(len(rgb)):
            hit = S.nearest(index, q[k], k=1, per_video=0).iloc[0]
            assert (hit["video_id"], int(hit["frame"])) == (vid, k) and hit["distance"] < 1e-8
    # at most per_video hits of one video, ranked by distance
    hits = S.nearest(index, index.x[0], k=3, per_video=1)
    assert hits["video_id"].tolist()[0] == "a" and hits["video_id"].nunique() == 3
    assert hits["rank"].tolist() == [1, 2, 3] and hits["distance"].is_monotonic_increasing
    assert "a" not in S.nearest(index, index.x[0], k=2, exclude=["a"])["video_id"].tolist()
    sheet = S.contact_sheet(videos["a"][0], "query.png", hits, S.neighbour_crops(index, hits), tmp_path / "sheet.png")
    with Image.open(sheet) as im:
        assert im.size[0] > 4 * 144 and im.size[1] >= 144


def test_similar_command_on_an_image_without_a_face(tmp_path):
    """`emoflow similar` end to end: the run's stages find no face in a tight 48x48 face
    image, so it is embedded whole; neighbours and a contact sheet come back."""
    model = embedding_fit(tmp_path)
    run = tmp_path / "run"
    rgb = faces_rgb(6, 4)
    crops = write_crops(run / "crops" / "s000.parquet", {"v1": rgb[:3], "v2": rgb[3:]})
    stages = I.stages_of([str(REPO / "config.yaml")])
    I.build(run / "similarity" / "index.parquet", model, [str(crops)], stages)
    query = tmp_path / "face.png"
    Image.fromarray(np.asarray(Image.fromarray(rgb[4]).convert("L").resize((48, 48)))).save(query)
    sheet = tmp_path / "out" / "sheet.png"
    proc = subprocess.run(
        [sys.executable, "-m", "emoflow", "similar", "--run", str(run), str(query), "--k", "2", "--sheet", str(sheet)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "whole image" in proc.stdout and sheet.is_file()
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert len(lines) == 2 and {ln.split()[-1] for ln in lines} == {"v1", "v2"}


# --------------------------------------------------------------------------- workflow wiring


def test_workflow_fits_and_indexes_only_when_the_embedding_is_on(tmp_path):
    from conftest import job_counts, snakemake

    off = snakemake(REPO, tmp_path / "off", "-n", "--quiet", "rules")
    assert "fit_expression_embedding" not in job_counts(off.stdout) and "similarity_index" not in job_counts(off.stdout)
    cfg = tmp_path / "on.yaml"
    cfg.write_text(
        "features:\n  expression_embedding: {extractor: expression_embedding, trunk: frame_cnn}\n"
        "experiments:\n  expression_embedding_mean_lr: {feature: expression_embedding, encoding: mean, classifier: logistic}\n"
    )
    on = snakemake(REPO, tmp_path / "on", "-n", "--quiet", "rules", "--configfile", str(REPO / "config.yaml"), str(cfg))
    counts = job_counts(on.stdout)
    assert counts["fit_expression_embedding"] == 1 and counts["similarity_index"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("features:\n  expression_embedding: {extractor: expression_embedding, trunk: hog}\n")
    proc = snakemake(REPO, tmp_path / "bad", "-n", "--configfile", str(REPO / "config.yaml"), str(bad), check=False)
    assert proc.returncode != 0 and "not a frame_cnn entry" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- shared data


def test_metric_reproduces_the_data_readme_label_baseline(data_root):
    """The FER2013-label one-hot embedding on triplets_val: the data README's figures."""
    faces, trip = T.load(
        data_root / "fer2013/fer2013.parquet", data_root / "fer_similarity/triplets_val.parquet", "public_test"
    )
    assert len(trip) == 3000 and len(faces) == 2841
    onehot = np.eye(len(CLASSES))[[CLASSES.index(lab) for lab in faces.labels]]
    acc = T.accuracy(onehot, trip)
    assert round(100 * acc["all"], 1) == 51.4
    assert [round(100 * acc[k], 1) for k in T.TYPES] == [45.1, 63.2, 46.0]


def test_training_triplets_name_train_faces_only(data_root):
    df = T.read_triplets(data_root / "fer_similarity/triplets_train.parquet")
    names = T.face_names(df)
    assert len(df) == 30000 and len(names) == 24315 and all(n.startswith("Training_") for n in names)
    faces = T.load_faces(data_root / "fer2013/fer2013.parquet", "train", names)
    trip = T.to_triplets(df, faces)
    fit_rows, held_rows = T.holdout_split(trip, len(faces), 0.05)
    unseen = set(trip.faces[held_rows].ravel()) - set(trip.faces[fit_rows].ravel())
    assert all(set(trip.faces[r]) & unseen for r in held_rows)
    assert 0.1 < len(held_rows) / len(trip) < 0.2
