"""The frame CNN: architectures, the resumable trainer, image sources, the extractor."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from conftest import Interrupted, stop_training_in_epoch
from emoflow.errors import EmoflowError
from emoflow.features import face_images
from emoflow.faces.read import Clip
from emoflow.features.frame_cnn import FrameCNN, fit
from emoflow.nets.common import load_matching as load_init
from emoflow.nets import train as trainer
from emoflow.nets.frame import build

torch.set_num_threads(1)
LOG = logging.getLogger("test")
FAST = {"batch_size": 32, "lr": 0.05, "precision": "fp32", "augment": {"erase": 0.0}}


def bars(n: int, size: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes that survive flips and small rotations: horizontal vs vertical bars,
    random phase, period and contrast, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    yy, xx = np.mgrid[0:size, 0:size]
    x = np.empty((n, size, size), np.uint8)
    for i in range(n):
        coord = yy if y[i] == 0 else xx
        period = rng.uniform(4, 8)
        img = 128 + rng.uniform(40, 90) * np.sign(np.sin(2 * np.pi * coord / period + rng.uniform(0, 6.3)))
        x[i] = np.clip(img + rng.normal(0, 20, img.shape), 0, 255)
    return x, y


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
@pytest.mark.parametrize("size", [24, 48])
def test_architectures_shapes_and_named_layers(arch, size):
    net = build(arch, 5, size=size, widths=(8, 16, 16, 32)).eval()
    x = torch.randn(3, 1, size, size)
    assert net(x).shape == (3, 5)
    feats = net.features(x, tuple(net.dims))
    assert set(feats) == set(net.dims)
    for name, f in feats.items():
        assert f.shape == (3, net.dims[name]), name
    # the logits of features() are forward()'s
    assert torch.allclose(feats["logits"], net(x))


def test_unknown_architecture_and_too_small_input():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("alexnet", 3)
    with pytest.raises(ValueError, match="too small"):
        build("vgg", 3, size=8)


def test_augment_is_reproducible_and_keeps_range():
    x = torch.rand(6, 1, 24, 24)
    cfg = trainer.DEFAULTS["augment"]
    a = trainer.augment(x.clone(), cfg, torch.Generator().manual_seed(1))
    b = trainer.augment(x.clone(), cfg, torch.Generator().manual_seed(1))
    c = trainer.augment(x.clone(), cfg, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and a.shape == x.shape
    # flip only: every image is itself or its mirror
    f = trainer.augment(x.clone(), {"flip": True}, torch.Generator().manual_seed(0))
    for i in range(len(x)):
        assert torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(2))


def test_fit_learns_and_keeps_the_best_epoch():
    x, y = bars(160, seed=0)
    vx, vy = bars(60, seed=1)
    torch.manual_seed(0)
    net = build("vgg", 2, size=24, widths=(8, 16, 16, 16), fc=32)
    res = trainer.fit(net, x, y, vx, vy, {**FAST, "epochs": 4}, torch.device("cpu"), 0.5, 0.25)
    assert res.best_val_acc == max(h["val_acc"] for h in res.history)
    assert res.best_val_acc >= 0.9, res.history
    # the returned model holds the best epoch's weights
    probs = trainer.predict(net, vx, 0.5, 0.25, torch.device("cpu"))
    assert np.isclose(np.mean(probs.argmax(1) == vy), res.best_val_acc)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)


def test_resume_continues_where_training_stopped(tmp_path, monkeypatch):
    x, y = bars(64, seed=3)
    vx, vy = bars(20, seed=4)
    cfg = {**FAST, "epochs": 3}

    def run(resume):
        torch.manual_seed(0)
        net = build("resnet", 2, size=24, widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1))
        return net, trainer.fit(net, x, y, vx, vy, cfg, torch.device("cpu"), 0.5, 0.25, resume)

    ref_net, ref = run(None)

    real_info = stop_training_in_epoch(monkeypatch, 3)  # after epoch 2 was checkpointed
    resume = tmp_path / "resume"
    with pytest.raises(Interrupted):
        run(str(resume))
    monkeypatch.setattr(trainer.log, "info", real_info)
    net, res = run(str(resume))
    assert res.resumed_from == 2
    assert [h["val_acc"] for h in res.history] == [h["val_acc"] for h in ref.history]
    assert np.allclose([h["loss"] for h in res.history], [h["loss"] for h in ref.history])
    for k, v in ref_net.state_dict().items():
        assert torch.allclose(v.float(), net.state_dict()[k].float(), atol=1e-6), k


def test_stratified_split_holds_out_every_class():
    y = np.array([0] * 50 + [1] * 10 + [2] * 2)
    keep, held = face_images.stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(y)
    assert [int(np.sum(y[held] == k)) for k in range(3)] == [10, 2, 1]
    k2, h2 = face_images.stratified_split(y, 0.2, seed=0)
    assert np.array_equal(held, h2)


def write_fer_parquet(path, n_train=40, n_test=12):
    x, y = bars(n_train + n_test, size=48, seed=5)
    names = ["angry", "happy"]  # two of the seven classes
    split = ["train"] * n_train + ["public_test"] * n_test
    t = pa.table({"split": split, "label": [names[v] for v in y], "pixels": [im.tobytes() for im in x]})
    pq.write_table(t, path)
    return x, y


def test_fer2013_source_and_errors(tmp_path):
    p = tmp_path / "fer.parquet"
    write_fer_parquet(p)
    d = face_images.fer2013(str(p), val_fraction=0.25, seed=0)
    assert d.classes == face_images.FER2013_CLASSES
    assert d.counts() == {"train": 30, "val": 10, "test": 12}
    assert d.train_x.shape[1:] == (48, 48) and d.train_x.dtype == np.uint8
    assert set(np.unique(d.train_y)) == {0, 3}  # angry, happy
    small = face_images.fer2013(str(p), 0.25, 0, size=32)
    assert small.train_x.shape[1:] == (32, 32)
    with pytest.raises(EmoflowError, match="not found"):
        face_images.fer2013(str(tmp_path / "nope.parquet"))
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"split": ["train"], "label": ["joy"], "pixels": [b"\0" * 2304]}), bad)
    with pytest.raises(EmoflowError, match="outside the FER2013 classes"):
        face_images.fer2013(str(bad))


def test_image_folder_source(tmp_path):
    x, y = bars(20, size=30, seed=6)
    for i, (im, k) in enumerate(zip(x, y)):
        d = tmp_path / "faces" / ["horizontal", "vertical"][k]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{i}.png")
    (tmp_path / "faces" / "vertical" / "notes.txt").write_text("not an image")
    s = face_images.image_folder(str(tmp_path / "faces"), size=24, val_fraction=0.2)
    assert s.classes == ["horizontal", "vertical"]
    assert s.counts()["train"] + s.counts()["val"] == 20 and s.train_x.shape[1:] == (24, 24)
    (tmp_path / "faces" / "vertical" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(EmoflowError, match="broken.png"):
        face_images.image_folder(str(tmp_path / "faces"))


def clip_of(images: np.ndarray) -> Clip:
    n = len(images)
    jpegs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(np.repeat(im[..., None], 3, 2)).save(buf, format="JPEG")
        jpegs.append(buf.getvalue())
    return Clip(
        "v", np.arange(n) * 2, np.arange(n) * 0.4, images, jpegs, np.zeros((n, 5, 2)), np.zeros((n, 4)), (48, 48)
    )


def test_fit_cli_and_extractor(tmp_path):
    p = tmp_path / "fer.parquet"
    write_fer_parquet(p, n_train=60, n_test=20)
    out = tmp_path / "models" / "cnn.json"
    params = {
        "arch": "vgg",
        "net": {"widths": [8, 16, 16, 16], "fc": 32},
        "train": {"source": "fer2013", "path": str(p)},
        "epochs": 2,
        "training": FAST,
    }
    meta = fit("unused.csv", str(out), [], params, ["angry", "happy"], str(tmp_path / "resume"), 1, LOG)
    assert out.is_file() and out.with_suffix(".pt").is_file()
    saved = json.loads(out.read_text())
    assert saved["best_epoch"] in (1, 2) and len(saved["history"]) == 2
    assert saved["test"]["n"] == 20 and 0 <= saved["test"]["accuracy"] <= 1 and "uar" in saved["test_flip_tta"]
    assert meta["classes"] == face_images.FER2013_CLASSES

    ext = FrameCNN({**params, "model": str(out), "probs": True})
    x, _ = bars(5, size=48, seed=9)
    a = ext.extract(clip_of(x))
    assert a.values.shape == (5, ext.dim) and ext.dim == 32 + 7
    assert np.array_equal(a.frames, np.arange(5) * 2) and np.allclose(a.times, np.arange(5) * 0.4)
    assert np.allclose(a.values[:, -7:].sum(1), 1, atol=1e-4)
    b = FrameCNN({**params, "model": str(out), "probs": True}).extract(clip_of(x))
    assert np.array_equal(a.values, b.values)  # deterministic
    # other layers, and crops of another size are resized to the model's input
    ext2 = FrameCNN({**params, "model": str(out), "layers": ["pool2", "pool4"]})
    assert ext2.dim == 16 + 16
    big = np.stack([np.asarray(Image.fromarray(im).resize((64, 64))) for im in x])
    assert ext2.extract(clip_of(big)).values.shape == (5, 32)
    with pytest.raises(ValueError, match="unknown layer"):
        FrameCNN({**params, "model": str(out), "layers": ["conv9"]})
    with pytest.raises(ValueError, match="needs a trained model"):
        FrameCNN(params)


def test_init_checkpoint_reinitialises_a_head_of_another_size(tmp_path):
    src = build("vgg", 7, size=24, widths=(8, 8, 8, 8), fc=16)
    path = tmp_path / "init.pt"
    torch.save({"state_dict": src.state_dict()}, path)
    dst = build("vgg", 3, size=24, widths=(8, 8, 8, 8), fc=16)
    left = load_init(dst, str(path))
    assert left == ["head.1.bias", "head.1.weight"]
    assert torch.equal(dst.state_dict()["fc.2.weight"], src.state_dict()["fc.2.weight"])
    with pytest.raises(EmoflowError, match="no tensor"):
        load_init(build("resnet", 3, size=24, widths=(4, 4, 4, 4), blocks=(1, 1, 1, 1)), str(path))


def test_fer2013_shared_data(data_root):
    path = data_root / "fer2013" / "fer2013.parquet"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    d = face_images.fer2013(str(path), val_fraction=0.1, seed=0)
    assert d.counts()["train"] + d.counts()["val"] == 28709 and d.counts()["test"] == 3589
    # stratified: every class's share of the validation part matches train's within 1 point
    share = lambda y: np.bincount(y, minlength=7) / len(y)  # noqa: E731
    assert np.abs(share(d.val_y) - share(d.train_y)).max() < 0.01


def test_resume_state_is_keyed_on_the_data_and_removed_when_the_fit_completes(tmp_path, monkeypatch):
    """A stale checkpoint never stands in for a fit: with the same counts but flipped labels
    the refit trains afresh (weights of a fresh fit on the flipped labels, not the old ones),
    and a finished fit leaves no resume state behind."""
    x, y = bars(64, seed=3)
    vx, vy = bars(20, seed=4)
    cfg = {**FAST, "epochs": 2}

    def run(labels, resume):
        torch.manual_seed(0)
        net = build("vgg", 2, size=24, widths=(8, 8, 8, 8), fc=16)
        res = trainer.fit(net, x, labels, vx, vy, cfg, torch.device("cpu"), 0.5, 0.25, resume)
        return net, res

    resume = tmp_path / "resume"
    first, res = run(y, str(resume))
    assert res.resumed_from == 0 and not (resume / "resume.pt").exists()  # done: no resume state outlives it

    # an interrupted fit on the original labels leaves a checkpoint after epoch 1 ...
    class Stop(Exception):
        pass

    real_info = trainer.log.info

    def interrupt(msg, *args):
        real_info(msg, *args)
        if msg.startswith("epoch") and args[0] == 2:
            raise Stop

    monkeypatch.setattr(trainer.log, "info", interrupt)
    with pytest.raises(Stop):
        run(y, str(resume))
    monkeypatch.setattr(trainer.log, "info", real_info)
    assert (resume / "resume.pt").exists()
    # ... which a fit on relabelled data (same counts) must not resume from
    flipped = 1 - y
    net, res = run(flipped, str(resume))
    assert res.resumed_from == 0
    fresh, _ = run(flipped, None)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k
    assert any(not torch.equal(v, first.state_dict()[k]) for k, v in net.state_dict().items() if v.is_floating_point())
    assert not (resume / "resume.pt").exists()


def test_data_digest_sees_every_input():
    x, y = bars(16, seed=0)
    base = trainer.data_digest({"epochs": 2}, x, y, None)
    assert trainer.data_digest({"epochs": 2}, x, y, None) == base
    assert trainer.data_digest({"epochs": 2}, x, 1 - y, None) != base  # labels
    x2 = x.copy()
    x2[0, 0, 0] ^= 1
    assert trainer.data_digest({"epochs": 2}, x2, y, None) != base  # one pixel
    assert trainer.data_digest({"epochs": 3}, x, y, None) != base  # settings
    assert trainer.data_digest({"epochs": 2}, x, y, None, extra="code v2") != base  # code
