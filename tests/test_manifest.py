import pytest

from conftest import make_video, write_manifest
from emoflow.dataset.manifest import validate_manifest
from emoflow.errors import ManifestError

CLASSES = ["happy", "sad", "surprise"]


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "clips" / "a.mp4", duration=0.3)


def rows(**over):
    base = {"video_id": "a", "path": "clips/a.mp4", "label": "happy", "split": "train", "speaker": "p1"}
    base.update(over)
    return base


def problems(tmp_path, rs, **kw):
    path = write_manifest(tmp_path / "m.csv", rs)
    with pytest.raises(ManifestError) as info:
        validate_manifest(path, CLASSES, **kw)
    return info.value.problems, str(info.value)


def test_valid_manifest_resolves_paths_relative_to_it(tmp_path, clip):
    df = validate_manifest(write_manifest(tmp_path / "m.csv", [rows()]), CLASSES)
    assert df.loc[0, "path"] == str(clip)
    assert list(df.columns[:5]) == ["video_id", "path", "label", "split", "speaker"]


def test_tsv_and_optional_columns(tmp_path, clip):
    path = write_manifest(tmp_path / "m.tsv", [{"video_id": "a", "path": str(clip)}], sep="\t")
    df = validate_manifest(path, CLASSES, require_labels=False)
    assert df.loc[0, "label"] == "" and df.loc[0, "split"] == ""


def test_duplicate_and_case_colliding_ids(tmp_path, clip):
    found, text = problems(tmp_path, [rows(), rows(), rows(video_id="A")])
    assert found == [
        "line 3 (video_id 'a'): duplicate video_id (first on line 2)",
        "line 4 (video_id 'A'): video_id collides with 'a' (line 2) on case-insensitive file systems",
    ]
    assert "m.csv: 2 problem(s)" in text


@pytest.mark.parametrize("vid", ["../x", "a b", "a/b", ".hidden", "-rf", "x;rm", "é", "a" * 129])
def test_unsafe_ids(tmp_path, clip, vid):
    found, _ = problems(tmp_path, [rows(video_id=vid)])
    assert len(found) == 1 and "is unsafe as a file name" in found[0] and found[0].startswith("line 2")


def test_missing_file_label_split_and_missing_label(tmp_path, clip):
    found, _ = problems(
        tmp_path,
        [
            rows(video_id="b", path="clips/nope.mp4"),
            rows(video_id="c", label="joy"),
            rows(video_id="d", split="training"),
            rows(video_id="e", label=""),
            rows(video_id="f", path="clips"),
        ],
    )
    assert any(p.startswith("line 2 (video_id 'b'): file not found") and "nope.mp4" in p for p in found)
    assert "line 3 (video_id 'c'): label 'joy' is not in the configured class set (happy, sad, surprise)" in found
    assert any(p.startswith("line 4 (video_id 'd'): split 'training' must be one of train, val, test") for p in found)
    assert "line 5 (video_id 'e'): no label, but split is 'train' (labels are required for train/val/test)" in found
    assert any(p.startswith("line 6 (video_id 'f'): path") and "is a directory" in p for p in found)
    assert len(found) == 5


def test_prediction_only_rows_need_no_label(tmp_path, clip):
    df = validate_manifest(write_manifest(tmp_path / "m.csv", [rows(label="", split="")]), CLASSES)
    assert len(df) == 1


def test_structural_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ManifestError, match="(?s)empty.csv.*the file is empty"):
        validate_manifest(tmp_path / "empty.csv")
    (tmp_path / "cols.csv").write_text("id,file\nx,y\n")
    with pytest.raises(ManifestError, match=r"line 1: missing required column\(s\) video_id, path"):
        validate_manifest(tmp_path / "cols.csv")
    (tmp_path / "head.csv").write_text("video_id,path\n")
    with pytest.raises(ManifestError, match="no rows after the header"):
        validate_manifest(tmp_path / "head.csv")
    with pytest.raises(ManifestError, match="(?s)missing.csv.*file not found"):
        validate_manifest(tmp_path / "missing.csv")
    (tmp_path / "wide.csv").write_text("video_id,path\na,b,c\n")
    with pytest.raises(ManifestError, match="line 2: more fields than header columns"):
        validate_manifest(tmp_path / "wide.csv", check_files=False)


def test_paths_with_spaces_quotes_and_unicode_are_fine(tmp_path):
    name = "we ird 'q' \"d\" $(x) `y`;é.mp4"
    make_video(tmp_path / name, duration=0.3)
    path = tmp_path / "m.csv"
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video_id", "path", "label", "split"])
        w.writerow(["ok1", name, "sad", "test"])
    df = validate_manifest(path, CLASSES)
    assert df.loc[0, "path"] == str(tmp_path / name)
