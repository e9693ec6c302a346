"""On the shared real data (skipped cleanly when the data root is absent)."""

import pandas as pd
import pytest

from conftest import REPO
from emoflow.config import load_config
from emoflow.dataset import labels, shards
from emoflow.dataset.manifest import validate_manifest
from emoflow.media import audio, frames, probe
from emoflow.media.frames import FrameReader
from emoflow.storage import read_table

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def cfg(data_root):
    return load_config(
        [REPO / "config.yaml", REPO / "configs" / "paired_av.yaml"], overrides={"data_root": str(data_root)}
    )


def test_paired_av_manifest_validates_and_shards(cfg):
    df = validate_manifest(cfg["dataset"]["manifest"], labels.classes(cfg))
    assert len(df) == 1040
    assert df.groupby("split").size().to_dict() == {"test": 156, "train": 728, "val": 156}
    assert not set(df[df.split == "train"].speaker) & set(df[df.split != "train"].speaker)
    plan = shards.plan(df, cfg["sharding"]["n_shards"])
    assert sum(len(v) for v in plan.values()) == 1040 and len(plan) == 8


def test_media_stages_on_real_clips(cfg, tmp_path, data_root):
    df = validate_manifest(cfg["dataset"]["manifest"], labels.classes(cfg)).head(3)
    crowd = data_root / "real_video" / "crowd_1080p.mp4"
    sheet = pd.concat([df[["video_id", "path"]], pd.DataFrame({"video_id": ["crowd"], "path": [str(crowd)]})])
    shards.write_sheet(sheet, str(tmp_path / "sheet.parquet"))
    s = str(tmp_path / "sheet.parquet")
    probe.run(s, str(tmp_path / "p.parquet"), str(tmp_path / "ps.parquet"), cfg)
    rows = {r["video_id"]: r for r in read_table(tmp_path / "p.parquet").to_pylist()}
    assert rows["crowd"]["width"] == 1920 and rows["crowd"]["has_audio"]
    assert all(rows[v]["fps"] == 25 and rows[v]["width"] == 256 for v in df["video_id"])
    cfg = {**cfg, "frames": {**cfg["frames"], "max_side": 640}}
    frames.run(s, str(tmp_path / "p.parquet"), str(tmp_path / "f.parquet"), str(tmp_path / "fs.parquet"), cfg)
    reader = FrameReader(str(tmp_path / "f.parquet"))
    times, imgs = reader.frames("crowd")
    assert imgs[0].shape == (360, 640, 3)
    assert len(imgs) == pytest.approx(rows["crowd"]["duration_s"] * 5, abs=1)
    audio.run(
        s,
        str(tmp_path / "p.parquet"),
        str(tmp_path / "a.parquet"),
        str(tmp_path / "wav"),
        str(tmp_path / "as.parquet"),
        cfg,
    )
    a = {r["video_id"]: r for r in read_table(tmp_path / "a.parquet").to_pylist()}
    for vid in df["video_id"]:
        assert a[vid]["has_audio"] and a[vid]["duration_s"] == pytest.approx(rows[vid]["duration_s"], abs=0.15)
        assert a[vid]["rms_dbfs"] > -60  # real speech, not silence


def test_crowd_video_gives_several_tracks_and_one_main(data_root, tmp_path):
    """The real 1080p crowd video, with the benchmark's settings (bench/crowd.yaml)."""
    from emoflow.faces import stage

    cfg = load_config([REPO / "config.yaml", REPO / "bench" / "crowd.yaml"], overrides={"data_root": str(data_root)})
    cfg["faces"]["device"] = "cpu"
    sheet = str(tmp_path / "sheet.parquet")
    shards.write_sheet(
        pd.DataFrame({"video_id": ["crowd"], "path": [str(data_root / "real_video" / "crowd_1080p.mp4")]}), sheet
    )
    p = {
        k: str(tmp_path / f"{k}.parquet") for k in ("probe", "ps", "frames", "fs", "faces", "videos", "crops", "skips")
    }
    probe.run(sheet, p["probe"], p["ps"], cfg)
    frames.run(sheet, p["probe"], p["frames"], p["fs"], cfg, 2)
    rows, skips = stage.run(sheet, p["probe"], p["frames"], p["faces"], p["videos"], p["crops"], p["skips"], cfg, 2)
    assert rows[0]["n_frames"] == 105 and rows[0]["n_tracks"] >= 4
    assert rows[0]["coverage"] >= 0.95 and not skips
    faces = read_table(p["faces"]).to_pandas()
    main = faces[faces["is_main"]]
    assert main["track"].nunique() == 1 and main["frame"].is_unique
    assert (faces["prob"] >= 0.7).all()  # every reported face carries its own O-Net probability
