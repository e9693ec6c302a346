"""Corpus adapters (emoflow.dataset.corpora) on placeholder files with the corpora's real
naming and on paired_av's RAVDESS-named clips; the shipped evaluation protocols
(speaker-disjoint, covering every speaker of their corpus); partitions refusing a shared
speaker; the per-fold report; and the corpus presets' dry runs on a generated corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from conftest import REPO, job_counts, snakemake
from emoflow import cli
from emoflow.config import load_config
from emoflow.dataset import corpora, splits
from emoflow.dataset.manifest import validate_manifest
from emoflow.errors import ConfigError, EmoflowError

RAVDESS8 = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
ACTORS = [f"actor{a:02d}" for a in range(1, 25)]
CREMAD_SPEAKERS = [str(s) for s in range(1001, 1092)]


def ravdess_names(actors=range(1, 25), modalities=("01", "02", "03"), channels=("01", "02")):
    """Every file name of the real RAVDESS (7356 with all actors, modalities and channels):
    neutral has no strong intensity, song has no disgust or surprised, actor 18 no song."""
    out = []
    for a in actors:
        for vc in channels:
            if vc == "02" and a == 18:
                continue
            for em in range(1, 9):
                if vc == "02" and em > 6:
                    continue
                for it in ("01",) if em == 1 else ("01", "02"):
                    for st in ("01", "02"):
                        for rep in ("01", "02"):
                            for mo in modalities:
                                out.append(f"{mo}-{vc}-{em:02d}-{it}-{st}-{rep}-{a:02d}")
    return out


def make_ravdess(root: Path, **kw) -> Path:
    """Empty placeholder files laid out as the RAVDESS downloads are."""
    for stem in ravdess_names(**kw):
        mo, vc, *_, a = stem.split("-")
        if mo == "03":
            folder = f"Audio_{'Speech' if vc == '01' else 'Song'}_Actors_01-24/Actor_{a}"
            name = f"{stem}.wav"
        else:
            folder = f"Video_{'Speech' if vc == '01' else 'Song'}_Actor_{a}/Actor_{a}"
            name = f"{stem}.mp4"
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).touch()
    return root


def make_cremad(root: Path, exts=(".flv",), speakers=CREMAD_SPEAKERS) -> Path:
    """Empty CREMA-D files: every speaker, six emotions, two sentences (IEO at level HI, DFA
    unspecified XX), in each format's folder as downloaded."""
    folders = {".flv": "VideoFlash", ".mp4": "VideoMP4", ".wav": "AudioWAV", ".mp3": "AudioMP3"}
    for ext in exts:
        (root / folders[ext]).mkdir(parents=True, exist_ok=True)
        for s in speakers:
            for emo in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"):
                for sen, lev in (("IEO", "HI"), ("DFA", "XX")):
                    (root / folders[ext] / f"{s}_{sen}_{emo}_{lev}{ext}").touch()
    return root


# --------------------------------------------------------------------------- RAVDESS


def test_ravdess_decodes_every_field():
    f = corpora.decode_ravdess("02-02-06-01-02-01-12")
    assert f == {
        "modality": "video",
        "vocal_channel": "song",
        "emotion": "fearful",
        "intensity": "normal",
        "statement": "dogs",
        "repetition": 1,
        "actor": 12,
        "speaker": "actor12",
        "gender": "female",
    }
    f = corpora.decode_ravdess("03-01-08-02-01-02-07")
    assert (f["modality"], f["vocal_channel"], f["emotion"], f["intensity"], f["statement"], f["repetition"]) == (
        "audio",
        "speech",
        "surprised",
        "strong",
        "kids",
        2,
    )
    assert (f["speaker"], f["gender"]) == ("actor07", "male")
    assert corpora.decode_ravdess("01-01-02-01-01-01-24")["modality"] == "av"
    emotions = [corpora.decode_ravdess(f"03-01-{e:02d}-01-01-01-01")["emotion"] for e in range(1, 9)]
    assert emotions == RAVDESS8


def test_ravdess_corpus_scan_counts_fields_and_filters(tmp_path):
    root = make_ravdess(tmp_path / "RAVDESS")
    everything = corpora.scan("ravdess", root)
    assert len(everything.rows) == 7356 and everything.unmatched.empty  # the real corpus's file count
    speech = corpora.scan("ravdess", root, {"modalities": ["audio"], "channels": ["speech"]})
    rows = speech.rows
    assert len(rows) == 1440 and set(rows["modality"]) == {"audio"} and set(rows["vocal_channel"]) == {"speech"}
    assert sorted(rows["speaker"].unique()) == ACTORS and (rows.groupby("speaker").size() == 60).all()
    assert rows["label"].value_counts().to_dict() == {c: (96 if c == "neutral" else 192) for c in RAVDESS8}
    assert set(rows["label"]) == set(rows["emotion"])  # native labels
    assert (rows["gender"] == np.where(rows["actor"] % 2 == 1, "male", "female")).all()
    assert rows["path"].map(lambda p: Path(p).is_absolute() and Path(p).is_file()).all()
    assert speech.excluded == {"modality av": 1440 + 1012, "modality video": 1440 + 1012, "vocal channel song": 1012}
    again = corpora.scan("ravdess", root, {"modalities": ["audio"], "channels": ["speech"]})
    pd.testing.assert_frame_equal(rows, again.rows)  # speaker ids and order are stable
    song_av = corpora.scan("ravdess", root, {"modalities": ["av"], "channels": ["song"]}).rows
    assert len(song_av) == 23 * 44 and "actor18" not in set(song_av["speaker"])


def test_ravdess_labels_onto_fer2013_with_calm_kept_or_dropped(tmp_path):
    root = make_ravdess(tmp_path / "R", actors=[1, 2], modalities=("03",), channels=("01",))
    kept = corpora.scan("ravdess", root, {"labels": "fer2013"}).rows
    fer = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert set(kept["label"]) == set(fer)
    assert kept.loc[kept["emotion"] == "calm", "label"].eq("neutral").all()
    assert kept.loc[kept["emotion"] == "fearful", "label"].eq("fear").all()
    assert kept.loc[kept["emotion"] == "surprised", "label"].eq("surprise").all()
    dropped = corpora.scan("ravdess", root, {"labels": "fer2013", "calm": "drop"})
    assert "calm" not in set(dropped.rows["emotion"]) and len(dropped.rows) == len(kept) - 16
    assert dropped.excluded == {"calm dropped (calm: drop)": 16}


BAD_RAVDESS = {
    "03-01-09-01-01-01-01.wav": "emotion 09",
    "04-01-01-01-01-01-01.wav": "modality 04",
    "03-01-01-02-01-01-01.wav": "neutral has no strong intensity",
    "03-02-07-01-01-01-01.wav": "song has no disgust",
    "03-01-03-01-01-03-01.wav": "repetition 03",
    "03-01-03-01-01-01-25.wav": "actor 25",
    "03-01-03-01-01-01.wav": "not a RAVDESS name",
    "notes.wav": "not a RAVDESS name",
    "3-1-3-1-1-1-1.mp4": "not a RAVDESS name",
}


def test_ravdess_malformed_names_are_listed_not_guessed(tmp_path, capsys):
    root = make_ravdess(tmp_path / "R", actors=[1, 2], modalities=("03",), channels=("01",))
    for name in BAD_RAVDESS:
        (root / "odd" / name).parent.mkdir(exist_ok=True)
        (root / "odd" / name).touch()
    (root / "README.txt").write_text("not media")
    (root / "copy").mkdir()
    (root / "copy" / "03-01-05-01-01-01-01.wav").touch()  # the same recording twice (Kaggle's zip has both)
    out = tmp_path / "out" / "ravdess.csv"
    assert cli.main(["manifest", "ravdess", str(root), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NOT USED: 10 media files" in printed and "ignored: 1 files that are not media" in printed
    unmatched = pd.read_csv(tmp_path / "out" / "ravdess.unmatched.csv")
    reasons = dict(zip(unmatched["path"].map(lambda p: Path(p).name), unmatched["reason"]))
    for name, why in BAD_RAVDESS.items():
        assert why in reasons[name], (name, reasons[name])
    dup = unmatched[unmatched["reason"].str.startswith("duplicate of 03-01-05-01-01-01-01")]
    assert len(dup) == 1 and "copy" in dup["path"].iloc[0]  # the first by path order is kept
    df = validate_manifest(out, RAVDESS8)  # paths relative to the manifest, resolved back
    assert len(df) == 120 and not set(df["video_id"]) & {Path(n).stem for n in BAD_RAVDESS}
    assert df["split"].eq("").all()  # no official split: the protocol makes them


def test_ravdess_through_paired_av_clips(data_root):
    clips = data_root / "paired_av"
    if not (clips / "manifest.csv").is_file():
        pytest.skip("paired_av not in the shared data root")
    found = corpora.scan("ravdess", clips, {"labels": "fer2013", "calm": "drop"})
    paired = pd.read_csv(clips / "manifest.csv", dtype=str).set_index("video_id")
    rows = found.rows.set_index("video_id")
    assert found.unmatched.empty and len(rows) == len(paired) == 1040  # every clip is RAVDESS-named
    assert sorted(rows.index) == sorted(paired.index)
    paired = paired.loc[rows.index]
    assert (rows["speaker"] == paired["speaker"]).all()  # actorNN, as paired_av's own manifest
    assert (rows["label"] == paired["label"]).all()  # calm dropped, fearful/surprised mapped, as built
    assert (rows["intensity"] == paired["intensity"]).all() and (rows["statement"] == paired["statement"]).all()
    assert set(rows["modality"]) == {"audio"} and set(rows["vocal_channel"]) == {"speech"}  # 03-01-*, in mp4
    assert sorted(rows["speaker"].unique()) == ACTORS[:20]


# --------------------------------------------------------------------------- CREMA-D


def test_cremad_decodes_every_field():
    assert corpora.decode_cremad("1001_DFA_ANG_XX") == {
        "speaker": "1001",
        "sentence": "DFA",
        "emotion": "angry",
        "level": "XX",
    }
    assert corpora.decode_cremad("1091_IEO_HAP_LO")["level"] == "LO"
    assert corpora.decode_cremad("1040_ITH_SAD_X")["level"] == "X"  # the corpus's one-letter level
    emotions = [
        corpora.decode_cremad(f"1050_TIE_{e}_MD")["emotion"] for e in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    ]
    assert emotions == ["angry", "disgust", "fear", "happy", "neutral", "sad"]
    for bad, why in {
        "1000_DFA_ANG_XX": "speaker 1000",
        "1092_DFA_ANG_XX": "speaker 1092",
        "1001_ABC_ANG_XX": "sentence ABC",
        "1001_DFA_JOY_XX": "emotion JOY",
        "1001_DFA_ANG_ZZ": "level ZZ",
        "1001-DFA-ANG-XX": "not a CREMA-D name",
    }.items():
        with pytest.raises(ValueError, match=why):
            corpora.decode_cremad(bad)


def test_cremad_scan_picks_one_file_per_clip_and_lists_the_rest(tmp_path):
    root = make_cremad(tmp_path / "CREMA-D", exts=(".flv", ".wav", ".mp3"))
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n"
        + "".join(f"{s},30,{'Male' if int(s) % 2 else 'Female'},x,y\n" for s in CREMAD_SPEAKERS)
    )
    (root / "AudioWAV" / "1001_XYZ_ANG_XX.wav").touch()
    video = corpora.scan("cremad", root, {"media": "video"})
    assert len(video.rows) == 91 * 12 and set(video.rows["path"].map(lambda p: Path(p).suffix)) == {".flv"}
    assert sorted(video.rows["speaker"].unique()) == CREMAD_SPEAKERS
    assert video.rows.loc[video.rows["speaker"] == "1001", "gender"].eq("male").all()
    assert set(video.rows["label"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad"}
    assert set(video.rows["sentence"]) == {"IEO", "DFA"} and set(video.rows["level"]) == {"HI", "XX"}
    assert video.excluded == {".wav files (media: video)": 91 * 12, ".mp3 files (media: video)": 91 * 12}
    assert list(video.unmatched["reason"]) == ["sentence XYZ is not one of " + "/".join(corpora.CREMAD_SENTENCES)]
    audio = corpora.scan("cremad", root, {"media": "audio"})
    assert set(audio.rows["path"].map(lambda p: Path(p).suffix)) == {".wav"}  # wav preferred over mp3
    alternates = audio.unmatched[audio.unmatched["reason"].str.startswith("another format of")]
    assert len(alternates) == 91 * 12 and alternates["path"].str.endswith(".mp3").all()
    assert list(video.rows["video_id"]) == list(audio.rows["video_id"])  # ids: the clip's name, whatever the format


# --------------------------------------------------------------------------- generic folders


def test_folder_layouts_and_speaker_regex(tmp_path):
    root = tmp_path / "mine"
    for split, label, name in [
        ("train", "happy", "spk1_a.wav"),
        ("train", "sad", "spk1_b.wav"),
        ("val", "happy", "spk2_a.mp4"),
        ("test", "sad", "spk3_a.wav"),
        ("test", "sad", "x y.wav"),
    ]:
        (root / split / label).mkdir(parents=True, exist_ok=True)
        (root / split / label / name).touch()
    (root / "loose.wav").touch()
    found = corpora.scan("folder", root, {"speaker_regex": r"^(?P<speaker>spk\d+)_"})
    rows = found.rows.set_index("video_id")
    assert rows.loc["spk1_a", ["label", "split", "speaker"]].tolist() == ["happy", "train", "spk1"]
    assert rows.loc["spk2_a", ["label", "split", "speaker"]].tolist() == ["happy", "val", "spk2"]
    assert len(rows) == 4
    reasons = dict(zip(found.unmatched["path"].map(lambda p: Path(p).name), found.unmatched["reason"]))
    assert "does not match" in reasons["x y.wav"] and "not in ROOT/<split>/<label>/" in reasons["loose.wav"]
    flat = tmp_path / "flat"
    for label, name in [("angry", "a.wav"), ("angry", "b.wav"), ("neutral", "a.wav")]:
        (flat / label).mkdir(parents=True, exist_ok=True)
        (flat / label / name).touch()
    rows = corpora.scan("folder", flat).rows
    assert sorted(rows["video_id"]) == ["angry__a", "b", "neutral__a"]  # a repeated stem gets its folder
    assert rows["split"].eq("").all() and rows["speaker"].eq("").all()


# --------------------------------------------------------------------------- protocols


@pytest.mark.parametrize("name", [n for n in splits.protocol_names() if n != splits.LOSO])
def test_shipped_protocols_are_speaker_disjoint_and_cover_their_corpus(name):
    p = splits.load_protocol(name)
    assert p["name"] == name and p["version"] >= 1 and p["source"]["citation"] and p["source"]["repository"]
    assert p["source"]["commit"] and len(p["source"]["commit"]) == 40
    everyone = {"ravdess": ACTORS, "cremad": CREMAD_SPEAKERS}[p["corpus"]]
    assert sorted(p["speakers"]) == everyone
    for f in p["folds"]:
        assert not set(f["test"]) & set(f.get("val", [])), f["name"]
    if p["val"] == "next_fold":  # cross-validation: the test folds partition the speakers
        tested = [s for f in p["folds"] for s in f["test"]]
        assert sorted(tested) == everyone
    else:  # repeated partitions, each covering every speaker: 63 train / 14 val / 14 test
        for f in p["folds"]:
            train = set(everyone) - set(f["test"]) - set(f["val"])
            assert (len(train), len(f["val"]), len(f["test"])) == (63, 14, 14)
    # every partition of a complete corpus is speaker-disjoint with train, val and test
    m = pd.DataFrame(
        [
            {"video_id": f"{s}_{i}", "path": "x", "label": ["a", "b"][i % 2], "split": "", "speaker": s}
            for s in everyone
            for i in range(2)
        ]
    )
    ev = {"protocol": name}
    parts = splits.partitions(ev, m)
    assert parts == [f"f{i}" for i in range(len(p["folds"]))]
    for part in parts:
        t = splits.partition(m, part, ev)
        assert set(t["split"]) == {"train", "val", "test"} and not splits.shared_speakers(t)
        assert len(t) == len(m)


def test_published_protocol_lists():
    luna = splits.load_protocol("ravdess_luna5")
    assert [sorted(int(s[5:]) for s in f["test"]) for f in luna["folds"]] == [
        [2, 5, 14, 15, 16],
        [3, 6, 7, 13, 18],
        [10, 11, 12, 19, 20],
        [8, 17, 21, 23, 24],
        [1, 4, 9, 22],
    ]
    emobox = splits.load_protocol("ravdess_emobox6")
    assert [sorted(int(s[5:]) for s in f["test"]) for f in emobox["folds"]] == [
        [1, 11, 20, 21],
        [4, 10, 12, 14],
        [8, 9, 19, 23],
        [3, 5, 7, 24],
        [2, 15, 16, 18],
        [6, 13, 17, 22],
    ]
    assert {(p["metric"], p["value"]) for p in emobox["published"]} == {("uar", 54.3), ("uar", 72.0), ("uar", 75.3)}
    assert ("accuracy", 86.7) in {(p["metric"], p["value"]) for p in luna["published"]}


def test_protocol_restricted_to_the_speakers_present():
    m = pd.DataFrame(
        [
            {"video_id": f"{s}_{i}", "path": "x", "label": ["a", "b"][i % 2], "split": "", "speaker": s}
            for s in ACTORS[:20]
            for i in range(2)
        ]
    )
    ev = {"protocol": "ravdess_luna5"}
    info = splits.describe(ev, m)
    assert info["speakers_present"] == 20 and info["speakers_total"] == 24
    assert "absent: actor21, actor22, actor23, actor24" in info["restrictions"][0]
    f3 = info["folds"][3]
    assert f3["test"] == ["actor08", "actor17"] and f3["test_absent"] == ["actor21", "actor23", "actor24"]
    assert info["folds"][2]["val"] == ["actor08", "actor17"]  # the next fold's test speakers present
    # a fold with no test speaker left is dropped; validation moves on to the next fold left
    few = m[~m["speaker"].isin(["actor01", "actor04", "actor09"])]
    assert splits.partitions(ev, few) == ["f0", "f1", "f2", "f3"]
    assert splits.describe(ev, few)["folds"][-1]["val"] == ["actor02", "actor05", "actor14", "actor15", "actor16"]
    with pytest.raises(EmoflowError, match="not speakers of the protocol: 'spk9'"):
        splits.partitions(ev, pd.concat([m, m.head(1).assign(video_id="z", speaker="spk9")]))


def test_a_corpus_manifest_needs_a_protocol_not_the_fixed_scheme():
    m = pd.DataFrame(
        [
            {"video_id": f"{s}_{i}", "path": "x", "label": ["a", "b"][i % 2], "split": "", "speaker": s}
            for s in ACTORS
            for i in range(2)
        ]
    )
    with pytest.raises(EmoflowError, match="no split .*pick a protocol"):
        splits.partition(m, "main", {"scheme": "fixed"})
    assert len(splits.partition(m, "f0", {"scheme": "kfold", "folds": 5})) == len(m)  # kfold pools them


def test_leave_one_speaker_out():
    m = pd.DataFrame(
        [
            {"video_id": f"{s}_{i}", "path": "x", "label": ["a", "b"][i % 2], "split": "", "speaker": s}
            for s in ["p1", "p2", "p3", "p4"]
            for i in range(2)
        ]
    )
    ev = {"protocol": "loso"}
    assert splits.partitions(ev, m) == ["f0", "f1", "f2", "f3"]
    t = splits.partition(m, "f1", ev)
    assert t.groupby("split")["speaker"].unique().map(list).to_dict() == {
        "test": ["p2"],
        "train": ["p1", "p4"],
        "val": ["p3"],
    }
    with pytest.raises(EmoflowError, match="needs every video's speaker"):
        splits.partitions(ev, pd.concat([m, m.head(1).assign(video_id="z", speaker="")]))


def test_a_shared_speaker_fails_with_a_clear_error(tmp_path):
    m = pd.DataFrame(
        [
            {"video_id": f"{s}_{i}", "path": "x", "label": ["a", "b"][i % 2], "split": split, "speaker": s}
            for s, split in [("p1", "train"), ("p2", "train"), ("p3", "val"), ("p4", "test")]
            for i in range(4)
        ]
    )
    m.loc[m["video_id"] == "p2_0", "split"] = "test"  # speaker p2: 3 videos in train, 1 in test
    m.loc[m["video_id"] == "p3_1", "split"] = "train"
    with pytest.raises(EmoflowError) as info:
        splits.partition(m, "main", {"scheme": "fixed"})
    text = str(info.value)
    assert "partition 'main': 2 speaker(s) in more than one split" in text
    assert "'p2' (train 3, test 1)" in text and "'p3' (train 1, val 3)" in text
    assert "splits.allow_shared_speakers: true" in text
    assert len(splits.partition(m, "main", {"scheme": "fixed"}, allow_shared_speakers=True)) == 16
    # the splits job: refused, or accepted with the config key (and a warning in its log)
    path = tmp_path / "m.csv"
    m.to_csv(path, index=False)
    out = tmp_path / "main.parquet"
    assert splits.main([str(path), "main", str(out), "--config", json.dumps({"evaluation": {"scheme": "fixed"}})]) == 2
    ok = {"evaluation": {"scheme": "fixed"}, "splits": {"allow_shared_speakers": True}}
    assert splits.main([str(path), "main", str(out), "--config", json.dumps(ok)]) == 0 and out.is_file()
    # a protocol file whose folds share a speaker is refused when loaded
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "name": "bad",
                "version": 1,
                "corpus": "x",
                "title": "t",
                "source": {"citation": "me"},
                "val": "given",
                "speakers": ["p1", "p2", "p3", "p4"],
                "folds": [{"test": ["p1"], "val": ["p1", "p2"]}, {"test": ["p3"], "val": ["p4"]}],
            }
        )
    )
    with pytest.raises(EmoflowError, match=r"folds\[0\]: speaker\(s\) \['p1'\] both in test and val"):
        splits.partitions({"protocol": str(bad)}, m)


def test_config_picks_a_protocol():
    cfg = load_config([REPO / "config.yaml"], {"evaluation": {"protocol": "ravdess_emobox6"}})
    assert cfg["evaluation"]["scheme"] == "protocol" and cfg["splits"] == {"allow_shared_speakers": False}
    with pytest.raises(ConfigError, match="neither a shipped protocol"):
        load_config([REPO / "config.yaml"], {"evaluation": {"protocol": "ravdess_nope"}})
    with pytest.raises(ConfigError, match="pick one"):
        load_config([REPO / "config.yaml"], {"evaluation": {"protocol": "loso", "scheme": "kfold"}})
    with pytest.raises(ConfigError, match="needs evaluation.protocol"):
        load_config([REPO / "config.yaml"], {"evaluation": {"scheme": "protocol"}})


def test_report_gives_per_fold_scores_with_mean_and_std(tmp_path):
    from emoflow.evaluate import report
    from emoflow.storage import write_table

    classes = ["a", "b"]
    paths = []
    for part, correct in (("f0", 4), ("f1", 3), ("f2", 2)):  # of 4 test videos each
        y = ["a", "b", "a", "b"]
        pred = y[:correct] + [("b" if v == "a" else "a") for v in y[correct:]]
        rows = [
            {
                "video_id": f"{part}_{i}",
                "split": "test",
                "label": y[i],
                "missing": False,
                "p_a": float(pred[i] == "a"),
                "p_b": float(pred[i] == "b"),
            }
            for i in range(4)
        ]
        rows.append({"video_id": f"{part}_v", "split": "val", "label": "a", "missing": False, "p_a": 1.0, "p_b": 0.0})
        path = tmp_path / "predictions" / part / "exp.parquet"
        path.parent.mkdir(parents=True)
        write_table(pa.Table.from_pylist(rows), path)
        paths.append(str(path))
    folds = report.fold_scores(paths, classes, {"f0": "Fold 0"})
    per = folds.set_index("part")
    assert per.loc["f0", "fold"] == "Fold 0" and list(per.loc[["f0", "f1", "f2"], "accuracy"]) == [1.0, 0.75, 0.5]
    assert per.loc["mean", "accuracy"] == pytest.approx(0.75) and per.loc["std", "accuracy"] == pytest.approx(0.25)
    protocol = splits.describe(
        {"protocol": "loso"},
        pd.DataFrame(
            [
                {"video_id": f"{s}_{i}", "path": "x", "label": "a", "split": "", "speaker": s}
                for s in ("p1", "p2", "p3")
                for i in range(2)
            ]
        ),
    )
    md = report.folds_markdown(folds, protocol)
    assert "Protocol **loso**" in md and "| exp | 75.0 ± 25.0 |" in md and "next fold's test speakers" in md


# --------------------------------------------------------------------------- presets


PRESETS = {  # preset -> (corpus maker, partitions, experiments)
    "ravdess_speech": (make_ravdess, 6, 4),
    "ravdess_av": (make_ravdess, 5, 7),
    "cremad": (make_cremad, 5, 7),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_corpus_presets_dry_run_on_a_generated_corpus(tmp_path, preset):
    make, folds, n_exp = PRESETS[preset]
    root = make(tmp_path / "corpus")
    cfg = load_config([REPO / "config.yaml", REPO / "configs" / f"{preset}.yaml"], {"data_root": str(root)})
    assert cfg["dataset"]["corpus"]["root"] == str(root) and len(cfg["experiments"]) == n_exp
    dry = snakemake(
        REPO,
        tmp_path / "work",
        "-n",
        "--configfile",
        str(REPO / "configs" / f"{preset}.yaml"),
        "--config",
        f"data_root={root}",
    )
    counts = job_counts(dry.stdout)
    assert counts["manifest"] == 1 and counts["splits"] == folds and counts["report"] == 1
    assert counts["classify"] == folds * n_exp and counts["fusion"] == folds * len(cfg["fusion"]["groups"])
    assert f"results/{preset}/manifest/manifest.csv" in dry.stdout


def test_corpus_preset_without_its_corpus_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.mp4").touch()
    dry = snakemake(
        REPO,
        tmp_path / "work",
        "-n",
        "--configfile",
        str(REPO / "configs" / "cremad.yaml"),
        "--config",
        f"data_root={empty}",
        check=False,
    )
    assert dry.returncode != 0 and "holds no cremad files to use" in dry.stdout + dry.stderr
    assert "notes.mp4: not a CREMA-D name" in dry.stdout + dry.stderr
    missing = snakemake(
        REPO,
        tmp_path / "work",
        "-n",
        "--configfile",
        str(REPO / "configs" / "ravdess_av.yaml"),
        "--config",
        f"data_root={tmp_path / 'nope'}",
        check=False,
    )
    assert missing.returncode != 0 and "does not exist (the ravdess corpus folder)" in missing.stdout + missing.stderr
