"""Peak memory and wall time of the per-video stages on large inputs: a 4K video and a
10-minute video (and a 30-minute one, to show how memory grows with length), against a
10-second reference clip of the same content.

Each input is one shard of one video; every stage runs as its own process exactly as the
workflow runs it (``python -m emoflow.<stage> ...``, the default config), and its peak
resident memory is read from ``wait4`` (the largest RSS of the stage process and of every
child it waited for, e.g. ffmpeg; not a sum).  Stages: probe, frames, audio, faces, and one
extractor per input kind (``egemaps`` on the audio, ``hog`` on the face crops).

Inputs are generated with ffmpeg from a still photo of a face (scikit-image's astronaut,
slightly zoomed over time so frames differ) and a tone: cheap to encode, and every sampled
frame has a face, so the face stage does its full work.

  python bench/bad_inputs.py [--out bench/out/bad_inputs.json] [--keep DIR]

Writes JSON; prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import load_config  # noqa: E402
from emoflow.media.ffmpeg import command  # noqa: E402
from emoflow.storage import read_table  # noqa: E402

INPUTS = {  # name -> (seconds, width, height, fps)
    "reference_10s_640x360": (10, 640, 360, 25),
    "video_4k_10s": (10, 3840, 2160, 25),
    "long_10min_640x360": (600, 640, 360, 25),
    "long_30min_640x360": (1800, 640, 360, 25),  # how memory grows with length
}


def make_input(path: Path, png: Path, seconds: int, width: int, height: int, fps: int) -> float:
    """A face photo slowly zooming (every frame differs) with a tone; returns encode seconds.
    Longer than 10 s: a 10-second piece, repeated without re-encoding (seconds, not minutes)."""
    t0 = time.perf_counter()
    if seconds > 10:
        piece = path.with_name(path.stem + ".piece.mp4")
        make_input(piece, png, 10, width, height, fps)
        loop = command(
            "-stream_loop",
            str(seconds // 10 - 1),
            "-i",
            str(piece),
            "-c",
            "copy",
            str(path),
        )
        subprocess.run(loop, check=True)
        piece.unlink()
        return time.perf_counter() - t0
    side = height
    zoom = f"scale={side}:{side},zoompan=z='1+0.0005*on':d=1:s={side}x{side}:fps={fps},pad={width}:{height}:{(width - side) // 2}:0"
    cmd = command(
        "-loop",
        "1",
        "-framerate",
        str(fps),
        "-i",
        str(png),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=22050",
        "-t",
        str(seconds),
        "-vf",
        zoom,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        str(path),
    )
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def run_stage(args: list[str]) -> dict:
    """Run ``python -m <args>``; its wall time and peak RSS (stage process and waited-for children)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def bench_input(name: str, video: Path, work: Path, cfg: dict) -> dict:
    from emoflow.config import stage_slice
    from emoflow.dataset.sheet import write_sheet

    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    p = {
        k: str(work / f"{k}.parquet")
        for k in (
            "sheet",
            "probe",
            "probe_skips",
            "frames",
            "frames_skips",
            "audio",
            "audio_skips",
            "faces",
            "videos",
            "crops",
            "faces_skips",
            "egemaps",
            "egemaps_skips",
            "hog",
            "hog_skips",
        )
    }
    write_sheet(pd.DataFrame({"video_id": [name], "path": [str(video)]}), p["sheet"])
    wavs = str(work / "wavs")
    feature_cfg = {
        "feature_inputs": cfg["feature_inputs"],
        "crops": {k: cfg["faces"][k] for k in ("color_size", "grey_size", "margin")},
    }
    stages = {
        "probe": [
            "emoflow.media.probe",
            p["sheet"],
            p["probe"],
            p["probe_skips"],
            "--config",
            stage_slice(cfg, "probe"),
        ],
        "frames": [
            "emoflow.media.frames",
            p["sheet"],
            p["probe"],
            p["frames"],
            p["frames_skips"],
            "--config",
            stage_slice(cfg, "frames"),
            "--threads",
            "2",
        ],
        "audio": [
            "emoflow.media.audio",
            p["sheet"],
            p["probe"],
            p["audio"],
            wavs,
            p["audio_skips"],
            "--config",
            stage_slice(cfg, "audio"),
        ],
        "faces": [
            "emoflow.faces.stage",
            p["sheet"],
            p["probe"],
            p["frames"],
            p["faces"],
            p["videos"],
            p["crops"],
            p["faces_skips"],
            "--config",
            stage_slice(cfg, "faces"),
            "--threads",
            "2",
        ],
        "features egemaps": [
            "emoflow.features.base",
            "egemaps",
            p["egemaps"],
            p["egemaps_skips"],
            p["audio"],
            wavs,
            "--config",
            json.dumps({"features": {"egemaps": cfg["features"]["egemaps"]}, **feature_cfg}),
        ],
        "features hog": [
            "emoflow.features.base",
            "hog",
            p["hog"],
            p["hog_skips"],
            p["sheet"],
            p["videos"],
            p["crops"],
            p["faces"],
            "--config",
            json.dumps({"features": {"hog": cfg["features"]["hog"]}, **feature_cfg}),
        ],
    }
    out = {"stages": {}}
    for stage, args in stages.items():
        out["stages"][stage] = run_stage(args)
        print(f"  {name}: {stage}: {out['stages'][stage]}", flush=True)
    prow = read_table(p["probe"]).to_pylist()[0]
    videos = read_table(p["videos"]).to_pylist()[0]
    arow = read_table(p["audio"]).to_pylist()[0]
    skips = sum(read_table(p[k]).num_rows for k in p if k.endswith("_skips"))
    out["facts"] = {
        "duration_s": prow["duration_s"],
        "size": f"{prow['width']}x{prow['height']}",
        "file_mb": round(video.stat().st_size / 2**20, 2),
        "sampled_frames": videos["n_frames"],
        "frames_with_main_face": videos["n_main"],
        "stored_frame": f"{videos['frame_width']}x{videos['frame_height']}",
        "frames_table_mb": round(Path(p["frames"]).stat().st_size / 2**20, 2),
        "audio_s": round(arow["duration_s"], 2),
        "skips": skips,
    }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "bad_inputs.json"))
    ap.add_argument("--keep", help="keep the generated inputs and outputs in this folder")
    ap.add_argument("--only", nargs="*", choices=sorted(INPUTS), help="run only these inputs")
    args = ap.parse_args(argv)
    cfg = load_config([REPO / "config.yaml"])
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="emoflow-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    from PIL import Image
    from skimage import data

    png = root / "face.png"
    Image.fromarray(data.astronaut()).save(png)
    results = {}
    for name, spec in INPUTS.items():
        if args.only and name not in args.only:
            continue
        video = root / f"{name}.mp4"
        encode_s = make_input(video, png, *spec) if not video.exists() else None
        print(f"{name}: encoded in {encode_s} s", flush=True)
        results[name] = bench_input(name, video, root / name, cfg)
        results[name]["facts"]["encode_s"] = None if encode_s is None else round(encode_s, 1)
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "note": "2 cores shared with other work",
    }
    report = {
        "machine": machine,
        "config": "config.yaml defaults (frames: 5 fps, max_side 256; faces: detect_every 5)",
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    stages = list(next(iter(results.values()))["stages"])
    print("\n| input | " + " | ".join(stages) + " |")
    print("|---|" + "---|" * len(stages))
    for name, r in results.items():
        cells = [f"{r['stages'][s]['peak_rss_mb']:.0f} MB, {r['stages'][s]['wall_s']:.1f} s" for s in stages]
        print(f"| {name} ({r['facts']['sampled_frames']} frames) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
