import subprocess
import sys

from conftest import REPO, make_video, write_manifest


def emoflow(*args):
    return subprocess.run([sys.executable, "-m", "emoflow", *args], capture_output=True, text=True, cwd=REPO)


def test_help_lists_commands():
    out = emoflow("--help")
    assert out.returncode == 0
    for cmd in ("run", "validate", "shards", "probe", "frames", "audio", "demo"):
        assert cmd in out.stdout


def test_stage_help_is_reachable():
    out = emoflow("frames", "-h")
    assert out.returncode == 0 and "--config" in out.stdout


def test_validate_reports_manifest_problems_without_traceback(tmp_path):
    make_video(tmp_path / "a.mp4", duration=0.3)
    manifest = write_manifest(
        tmp_path / "m.csv",
        [
            {"video_id": "a", "path": "a.mp4", "label": "happy", "split": "train"},
            {"video_id": "a", "path": "b.mp4", "label": "joy", "split": "dev"},
        ],
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {{source: manifest, manifest: {manifest}}}\n")
    out = emoflow("validate", "-c", str(cfg))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "m.csv: 4 problem(s)" in out.stderr
    assert "line 3 (video_id 'a'): duplicate video_id (first on line 2)" in out.stderr
    assert "file not found" in out.stderr and "label 'joy'" in out.stderr and "split 'dev'" in out.stderr


def test_validate_summarises_a_good_manifest(tmp_path, tiny_videos):
    manifest, _ = tiny_videos
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {{source: manifest, manifest: {manifest}}}\nsharding: {{n_shards: 2}}\n")
    out = emoflow("validate", "-c", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "4 videos" in out.stdout and "train:      2" in out.stdout and "shards:" in out.stdout


def test_shards_command(tiny_videos):
    manifest, rows = tiny_videos
    out = emoflow("shards", str(manifest), "-n", "3")
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "video_id\tshard" and len(lines) == 1 + len(rows)
