"""Scale properties of the DAG, on the paired_av preset (every stage) with generated
manifests whose clips are empty placeholder files (enough for dry runs and shard sheets):

- the job count grows with shards, not with videos;
- adding one video changes exactly one shard: a real run of the shard sheets, then one more
  video, and Snakemake reruns that shard's sheet only (params digest, manifest ancient);
- a fit that reads no dataset labels (the frame CNN trained on FER2013) is not retrained
  when the manifest changes; a fit on the training split (the audio CNN) is.

The preset runs no ASR (RAVDESS actors read two fixed sentences), so no ``asr`` jobs.

Timings are not asserted here: they are in bench/scale.py and bench/out/scale_*.json.
"""

import os
import time

import pytest
import yaml

from conftest import REPO, job_counts, snakemake
from emoflow.config import load_config
from emoflow.dataset.shards import assign

pytestmark = pytest.mark.workflow
OUT = "results/synthetic"


def corpus(root, n, extra=()):
    """A manifest of ``n`` (+ ``extra``) videos with empty placeholder clips, and a data root
    holding empty placeholders of the shared tables the preset's fits read (FER2013 for the
    frame CNNs, the FER+ votes for the one trained on them, the FER2013 face triplets for the
    expression embedding; never read here)."""
    classes = load_config([REPO / "config.yaml"])["label_spaces"]["fer2013"]
    (root / "clips").mkdir(parents=True, exist_ok=True)
    (root / "fer2013").mkdir(exist_ok=True)
    (root / "fer2013" / "fer2013.parquet").touch()
    (root / "fer_similarity").mkdir(exist_ok=True)
    (root / "fer_similarity" / "triplets_train.parquet").touch()
    (root / "ferplus").mkdir(exist_ok=True)
    (root / "ferplus" / "ferplus_votes.parquet").touch()
    ids = [f"v{i:05d}" for i in range(n)] + list(extra)
    lines = ["video_id,path,label,split,speaker"]
    for i, vid in enumerate(ids):
        (root / "clips" / f"{vid}.mp4").touch()
        spk = i % 20
        split = "train" if spk < 14 else "val" if spk < 17 else "test"
        lines.append(f"{vid},clips/{vid}.mp4,{classes[i % len(classes)]},{split},spk{spk:02d}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return ids


def configs(tmp_path, root, n_shards):
    cfg = tmp_path / f"case_{n_shards}.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "outdir": OUT,
                "data_root": str(root),
                "dataset": {"name": "synthetic", "manifest": str(root / "manifest.csv")},
                "sharding": {"n_shards": n_shards},
            }
        )
    )
    return ("--configfile", str(REPO / "configs" / "paired_av.yaml"), str(cfg))


def dry_counts(tmp_path, work, root, n_shards, *targets, options=()):
    """Per-rule job counts of a dry run (targets first: options after them take lists)."""
    proc = snakemake(REPO, work, *targets, *options, "-n", "--quiet", "rules", *configs(tmp_path, root, n_shards))
    return job_counts(proc.stdout + proc.stderr), proc.stdout + proc.stderr


def test_job_count_grows_with_shards_not_videos(tmp_path):
    small, large = tmp_path / "small", tmp_path / "large"
    corpus(small, 120)
    corpus(large, 1200)
    a, _ = dry_counts(tmp_path, tmp_path / "wa", small, 6)
    b, _ = dry_counts(tmp_path, tmp_path / "wb", large, 6)
    assert a == b and a["probe"] == 6
    c, _ = dry_counts(tmp_path, tmp_path / "wc", large, 12)
    per_shard = {r for r in c if c[r] != a[r]}
    # per-shard rules (e2e_tta: the e2e face TTA cache) double with the shards; corpus-level
    # ones (fits, experiments) do not
    assert {"shard_sheet", "probe", "frames", "audio", "faces", "features", "e2e_tta"} == per_shard
    assert all(c[r] == 2 * a[r] for r in per_shard)


def test_adding_one_video_reruns_one_shard(tmp_path):
    root, work = tmp_path / "data", tmp_path / "work"
    n_shards = 6
    ids = corpus(root, 300)
    sheets = [f"{OUT}/shards/{s}.parquet" for s in sorted(set(assign(ids, n_shards)))]
    assert len(sheets) == n_shards
    snakemake(REPO, work, *sheets, f"{OUT}/splits/main.parquet", "--quiet", "rules", *configs(tmp_path, root, n_shards))
    counts, _ = dry_counts(tmp_path, work, root, n_shards, *sheets, f"{OUT}/splits/main.parquet")
    assert counts == {}

    new = "zz-added"
    corpus(root, 300, extra=[new])
    counts, out = dry_counts(tmp_path, work, root, n_shards, *sheets, f"{OUT}/splits/main.parquet")
    # the new video's shard sheet (its digest param changed) and the splits (labels changed)
    assert counts == {"shard_sheet": 1, "splits": 1}
    proc = snakemake(REPO, work, *sheets, "-n", *configs(tmp_path, root, n_shards))
    assert f"shard={assign([new], n_shards)[0]}" in proc.stdout + proc.stderr


def test_manifest_change_retrains_label_fits_only(tmp_path):
    """Outputs present and newer than their inputs (no run recorded: Snakemake then judges
    by modification times), then the manifest gains a row: which fits are out of date."""
    root, work = tmp_path / "data", tmp_path / "work"
    corpus(root, 60)
    models = {
        "fit_frame_cnn": [f"{OUT}/models/frame_cnn/frame_cnn.json", f"{OUT}/models/frame_cnn/frame_cnn.pt"],
        "fit_audio_cnn": [f"{OUT}/models/audio_cnn/audio_cnn.json", f"{OUT}/models/audio_cnn/audio_cnn.keras"],
    }
    shards = sorted(set(assign([f"v{i:05d}" for i in range(60)], 4)))
    for shard in shards:  # the audio stage's outputs: an index and a wav folder per shard
        (work / OUT / "audio" / shard).mkdir(parents=True, exist_ok=True)
        (work / OUT / "audio" / f"{shard}.parquet").touch()
    for path in [p for ps in models.values() for p in ps]:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).touch()
    later = time.time() + 1000  # outputs after every input (the code files included) ...
    for path in [p for ps in models.values() for p in ps]:
        os.utime(work / path, (later, later))
    targets = [models["fit_frame_cnn"][0], models["fit_audio_cnn"][0]]
    only = ("--allowed-rules", "fit_frame_cnn", "fit_audio_cnn")  # the audio stage's outputs are given
    counts, _ = dry_counts(tmp_path, work, root, 4, *targets, options=only)
    assert counts == {}

    corpus(root, 60, extra=["zz-added"])  # ... and the manifest after them
    os.utime(root / "manifest.csv", (later + 10, later + 10))
    counts, out = dry_counts(tmp_path, work, root, 4, *targets, options=only)
    assert counts == {"fit_audio_cnn": 1}, out
