"""Expression similarity on the shared data's ``triplets_val``: the trained 16-d embedding
against the frame CNN's own representations and the data README's baselines.

  python bench/similarity.py [--trunk results/paired_av/models/frame_cnn/frame_cnn.json]
                             [--threads 2] [--variants] [--model OUT_JSON]

Embeddings scored (triplet prediction accuracy, overall and per triplet type, on the 3000
``triplets_val`` triplets of FER2013 ``public_test`` faces):

``trained``               the expression embedding fitted with the default settings
                          (:data:`emoflow.similarity.fit.DEFAULTS`) on the trunk; its
                          training time on this machine is recorded
``trunk_bottleneck``      the trunk's ``fc`` bottleneck (256-d), L2-normalised (when the trunk
                          is not the baseline: paired_av's trunk is its FER+ vote-trained CNN)
``trunk_probs``           the trunk's class probabilities (softmax, 7-d)
``frame_cnn_bottleneck``  the same of ``--baseline``, the preset's FER2013 (hard-label) frame
``frame_cnn_probs``       CNN: what the issue measured (66.7%) and the goal compares with
``fer_label``             the face's FER2013 label, one-hot (the data README: 51.4%)
``chance``                1/3

``--variants`` also fits the settings tried on the way (margins, mining, how much of the
trunk trains, head size, augmentation, the refit, an auxiliary FER+-vote loss) and records each one's held-out accuracy (a part of the
*training* triplets: what chose the defaults) beside its ``triplets_val`` accuracy (reported
only).  Writes bench/out/similarity.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import resolve_data_root  # noqa: E402
from emoflow.similarity import triplets as T  # noqa: E402

TYPE_NAMES = ("all", *T.TYPES)
FEC_MARGINS = {"one_class": 0.1, "two_class": 0.2, "three_class": 0.2}

#: settings tried beside the defaults (each overrides DEFAULTS)
VARIANTS = {
    "type_margins": {"margin": FEC_MARGINS},
    "mining_active": {"mining": "active"},
    "mining_semihard": {"mining": "semihard"},
    "mining_hard": {"mining": "hard"},
    "frozen_trunk": {"tune": "none"},
    "frozen_trunk_fc_logits": {"tune": "none", "inputs": ["fc", "logits"]},
    "linear_head": {"hidden": 0},
    "no_flip": {"flip": False, "flip_tta": False},
    "no_refit": {"refit": False},
    "no_ferplus_votes": {"votes_weight": 0.0},  # the triplet loss alone
    "ferplus_votes_0.5": {"votes_weight": 0.5},
    "ferplus_votes_5": {"votes_weight": 5.0},
    "tune_last_block": {"tune": "block", "epochs": 12, "precision": "bf16"},
}
SLOW = {"tune_last_block"}  # hours on 2 busy cores: only when named in --only


def trunk_embeddings(trunk_path: str, images: np.ndarray, threads: int) -> dict[str, np.ndarray]:
    """The frame CNN's L2-normalised bottleneck and its softmax, per image."""
    import torch

    from emoflow.nets.common import batches, setup_torch
    from emoflow.nets.train import to_tensor
    from emoflow.similarity.model import load_trunk

    setup_torch(threads, seed=0)
    net, meta = load_trunk(trunk_path)
    layer = "fc" if meta["arch"] == "vgg" else "pool"
    fc, probs = [], []
    with torch.no_grad():
        for s in batches(len(images), 512):
            f = net.features(to_tensor(images[s], meta["mean"], meta["std"], "cpu"), (layer, "logits"))
            fc.append(torch.nn.functional.normalize(f[layer], dim=1).numpy())
            probs.append(torch.softmax(f["logits"], 1).numpy())
    return {"frame_cnn_bottleneck": np.concatenate(fc), "frame_cnn_probs": np.concatenate(probs)}


class DiskCaches(dict):
    """The fits' frozen-trunk caches, also kept on disk (one file per key) between runs."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, key) -> Path:
        import hashlib

        return self.folder / (hashlib.sha1(repr(key).encode()).hexdigest()[:16] + ".pt")

    def __contains__(self, key) -> bool:
        return super().__contains__(key) or self._file(key).is_file()

    def __getitem__(self, key):
        if not super().__contains__(key):
            import torch

            super().__setitem__(key, tuple(torch.load(self._file(key), weights_only=True)))
        return super().__getitem__(key)

    def __setitem__(self, key, value) -> None:
        import torch

        super().__setitem__(key, value)
        torch.save(list(value), self._file(key))


def row(name: str, acc: dict) -> str:
    return f"| {name} | " + " | ".join(f"{100 * acc[k]:.1f}%" for k in TYPE_NAMES) + " |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--trunk",
        default=str(REPO / "results/paired_av/models/frame_cnn/frame_cnn_votes.json"),
        help="the frame CNN fit the embedding is trained on (paired_av: frame_cnn_votes)",
    )
    ap.add_argument(
        "--baseline",
        default=str(REPO / "results/paired_av/models/frame_cnn/frame_cnn.json"),
        help="the frame CNN scored as frame_cnn_bottleneck / frame_cnn_probs (the preset's FER2013 one)",
    )
    ap.add_argument("--data-root", help="shared data root (default: as the workflow resolves it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", action="store_true", help="also fit and score the settings tried (VARIANTS)")
    ap.add_argument("--only", nargs="*", help="variants to run (default: all)")
    ap.add_argument("--model", help="also write the trained embedding (JSON + .pt) here")
    ap.add_argument(
        "--fitted",
        help="take `trained` from this fit (a run's models/expression_embedding/<name>.json, "
        "fitted with the defaults on the same trunk) instead of fitting it again",
    )
    ap.add_argument(
        "--other-fit",
        nargs="*",
        default=[],
        metavar="NAME=FIT_JSON",
        help="other embedding fits (e.g. on another trunk) whose held-out and val scores go beside `trained` "
        "under other_fits: what chose the trunk",
    )
    ap.add_argument("--cache", help="keep the frozen trunk's values of the faces in this folder between runs")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "similarity.json"))
    args = ap.parse_args(argv)
    from emoflow import logs
    from emoflow.similarity.fit import DEFAULTS, fit, resolve

    log = logs.setup("bench.similarity")
    root = Path(args.data_root) if args.data_root else resolve_data_root({})
    images = root / "fer2013" / "fer2013.parquet"
    vfaces, vtrip = T.load(images, root / "fer_similarity" / "triplets_val.parquet", "public_test")
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    scores = {"chance": {k: 1 / 3 for k in TYPE_NAMES} | {"n": len(vtrip)}}
    scores["fer_label"] = T.accuracy(np.eye(7)[[classes.index(c) for c in vfaces.labels]], vtrip)
    # the baseline: the preset's FER2013 (hard-label) frame CNN; and the trunk's own
    # representations when the trunk is another network (the FER+ vote-trained one)
    for name, emb in trunk_embeddings(args.baseline, vfaces.images, args.threads).items():
        scores[name] = T.accuracy(emb, vtrip)
    if Path(args.trunk).resolve() != Path(args.baseline).resolve():
        for name, emb in trunk_embeddings(args.trunk, vfaces.images, args.threads).items():
            scores[name.replace("frame_cnn", "trunk")] = T.accuracy(emb, vtrip)
    base = resolve({}, str(root))
    caches = DiskCaches(args.cache) if args.cache else {}
    t0 = time.time()
    if args.fitted:
        meta = json.loads(Path(args.fitted).read_text())
        if Path(meta["trunk"]["model"]).resolve() != Path(args.trunk).resolve():
            raise SystemExit(f"{args.fitted}: fitted on trunk {meta['trunk']['model']}, not {args.trunk}")
    else:
        meta = fit(args.trunk, args.model, base, args.threads, log, caches)
    wall = meta["seconds"]["total"] if args.fitted else time.time() - t0
    scores["trained"] = meta["val"]
    result = {
        "triplets_val": scores,
        "trained": {
            "settings": {
                k: v
                for k, v in DEFAULTS.items()
                if k not in ("model", "trunk", "trunk_model", "images", "triplets", "val_triplets")
            },
            "best_epoch": meta["best_epoch"],
            "held_out": meta["held_out"],
            "seconds": meta["seconds"],
            "wall_seconds": round(wall, 1),
            "history": meta["history"],
            "data": meta["data"],
        },
        "trunk": args.trunk,
        "baseline": args.baseline,
        "machine": {
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
            "note": "2 CPU cores shared with a workflow run",
        },
    }
    if args.other_fit:
        result["other_fits"] = {}
        for item in args.other_fit:
            name, path = item.split("=", 1)
            m = json.loads(Path(path).read_text())
            result["other_fits"][name] = {
                "trunk": m["trunk"]["model"],
                "held_out": m["held_out"],
                "val": m.get("val"),
                "best_epoch": m["best_epoch"],
                "seconds": m["seconds"],
            }
    if args.variants:
        variants = {}
        for name, over in VARIANTS.items():
            if (args.only and name not in args.only) or (not args.only and name in SLOW):
                continue
            t1 = time.time()
            m = fit(args.trunk, None, {**base, **over}, args.threads, log, caches)
            variants[name] = {
                "settings": over,
                "held_out": m["held_out"],
                "val": m["val"],
                "best_epoch": m["best_epoch"],
                "train_seconds": m["seconds"]["train"],
                "wall_seconds": round(time.time() - t1, 1),
            }
            log.info("%s: held-out %.4f, val %.4f", name, m["held_out"]["all"], m["val"]["all"])
        result["variants"] = variants
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print("| embedding | all | one-class | two-class | three-class |\n|---|---|---|---|---|")
    for name in (
        "trained",
        "trunk_bottleneck",
        "trunk_probs",
        "frame_cnn_bottleneck",
        "frame_cnn_probs",
        "fer_label",
        "chance",
    ):
        if name not in scores:
            continue
        print(row(name, scores[name]))
    print(f"\ntraining: {meta['seconds']} (s; wall {wall:.0f} s), best epoch {meta['best_epoch']}")
    for name, v in result.get("variants", {}).items():
        print(
            f"{name}: held-out {100 * v['held_out']['all']:.1f}%  val "
            + " / ".join(f"{100 * v['val'][k]:.1f}" for k in TYPE_NAMES)
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
