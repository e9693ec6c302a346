"""Generate the embedded demo corpus: labelled mp4 clips (H.264 + AAC) and a manifest.

Every speaker has a face (a real photo, see :mod:`emoflow.demo.faces`) and a voice
(an espeak-ng variant with its own pitch and rate, see :mod:`emoflow.demo.speech`).
Each clip says one sentence with the prosody of its class while the face shows the
class's expression (building up over the first third of the clip), drifting and
"breathing" slightly so consecutive frames differ.  Speakers are split into
train/val/test, so the demo is speaker-independent like the real presets.

The plan (ids, labels, splits) is a pure function of the ``demo`` config, so the
workflow knows the demo manifest before generating it.  Output is deterministic
(seeded; single-threaded bit-exact encoding).

``python -m emoflow.demo.generate OUTDIR --config JSON``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from emoflow import logs
from emoflow.demo import faces as face_lib
from emoflow.demo import speech
from emoflow.media.ffmpeg import command
from emoflow.storage import atomic_path

SAMPLE_RATE = 22050
MANIFEST = "manifest.csv"


def plan(demo: dict) -> pd.DataFrame:
    """The demo manifest (paths relative to the demo folder), without generating it."""
    splits = demo["speakers"]
    n = splits["train"] + splits["val"] + splits["test"]
    order = np.random.default_rng(demo["seed"]).permutation(n)
    split_of = {}
    for rank, spk in enumerate(order):
        split_of[int(spk)] = (
            "train" if rank < splits["train"] else ("val" if rank < splits["train"] + splits["val"] else "test")
        )
    rows = []
    for spk in range(n):
        for label in demo["classes"]:
            for j, _ in enumerate(demo["sentences"]):
                vid = f"spk{spk:02d}-{label}-{j}"
                rows.append(
                    {
                        "video_id": vid,
                        "path": f"clips/{vid}.mp4",
                        "label": label,
                        "split": split_of[spk],
                        "speaker": f"spk{spk:02d}",
                        "sentence": j,
                    }
                )
    return pd.DataFrame(rows)


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    top, bottom = rng.integers(40, 215, 3), rng.integers(40, 215, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    grad = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    return Image.fromarray(np.broadcast_to(grad, (size, size, 3)).copy())


def render_clip(face, label: str, n_frames: int, demo: dict, speaker: int, rng: np.random.Generator):
    """Yield ``n_frames`` RGB frames (size x size x 3 uint8)."""
    size, fps = demo["size"], demo["fps"]
    spk_rng = np.random.default_rng(2000 + speaker)
    background = _background(size, spk_rng)
    mirror = bool(spk_rng.integers(0, 2))
    face_px = int(size * spk_rng.uniform(0.56, 0.64))
    intensity = float(rng.uniform(0.85, 1.15))
    levels = [face_lib.express(face, label, intensity * f) for f in (0.35, 0.6, 0.8, 1.0)]
    if mirror:
        levels = [lv[:, ::-1].copy() for lv in levels]
    mask = face_lib.soft_mask()
    phase = rng.uniform(0, 2 * np.pi, 3)
    onset = max(1, int(n_frames * 0.35))
    for k in range(n_frames):
        t = k / fps
        patch = Image.fromarray(levels[min(3, k * 4 // onset)])
        scale = 1.0 + 0.02 * np.sin(2 * np.pi * 0.7 * t + phase[0])
        side = max(8, int(round(face_px * scale)))
        dx = 4.0 * np.sin(2 * np.pi * 0.31 * t + phase[1])
        dy = 3.0 * np.sin(2 * np.pi * 0.23 * t + phase[2])
        x0 = int(round((size - side) / 2 + dx))
        y0 = int(round((size - side) / 2 + dy))
        frame = background.copy()
        frame.paste(patch.resize((side, side), Image.BILINEAR), (x0, y0), mask.resize((side, side), Image.BILINEAR))
        yield np.asarray(frame)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def encode(frames, n_frames: int, size: int, fps: int, wav: Path, out: Path) -> None:
    """Mux rgb24 frames and a wav into a bit-exact H.264/AAC mp4 (single-threaded)."""
    cmd = command(
        "-threads",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{size}x{size}",
        "-r",
        str(fps),
        "-i",
        "pipe:",
        "-i",
        str(wav),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-x264-params",
        "threads=1",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ac",
        "1",
        "-ar",
        "16000",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-map_metadata",
        "-1",
        "-f",
        "mp4",
        str(out),
    )
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in frames:
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode("utf-8", "replace")
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {out}: {err.strip()}")


def generate_clip(row: dict, demo: dict, out: Path, index: int) -> None:
    rng = np.random.default_rng([demo["seed"], index])
    spk = int(row["speaker"][3:])
    voice = speech.synthesize(demo["sentences"][row["sentence"]], row["label"], spk, rng, SAMPLE_RATE)
    pad = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
    voice = np.concatenate([pad, voice, pad])
    voice = voice + rng.normal(0, 10 ** (-55 / 20), voice.size).astype(np.float32)  # room noise, -55 dBFS
    n_frames = int(round(voice.size / SAMPLE_RATE * demo["fps"]))
    faces = face_lib.base_faces()
    face = faces[spk % len(faces)]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        _write_wav(wav, voice, SAMPLE_RATE)
        with atomic_path(out, suffix=".mp4") as tmp_out:
            encode(
                render_clip(face, row["label"], n_frames, demo, spk, rng),
                n_frames,
                demo["size"],
                demo["fps"],
                wav,
                tmp_out,
            )


def generate(outdir: str | Path, demo: dict) -> pd.DataFrame:
    """Write every clip of the plan and then the manifest (last, atomically)."""
    outdir = Path(outdir)
    speech.espeak()  # a missing system espeak-ng stops here, before any clip
    (outdir / "clips").mkdir(parents=True, exist_ok=True)
    rows = plan(demo)
    for i, row in enumerate(logs.progress(rows.to_dict("records"), "demo clips", total=len(rows), unit="clip")):
        generate_clip(row, demo, outdir / row["path"], i)
    with atomic_path(outdir / MANIFEST) as tmp:
        rows.to_csv(tmp, index=False)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow demo", description="Generate the embedded demo corpus.")
    ap.add_argument("outdir", help="folder for clips/ and manifest.csv")
    ap.add_argument("--config", default="{}", help="JSON with the 'demo' section (defaults otherwise)")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.demo")
    from emoflow.config import schema, validate

    cfg = validate({"outdir": "x", **json.loads(args.config)}, schema("config"), "--config")
    rows = generate(args.outdir, cfg["demo"])
    log.info("wrote %d clips (%s) to %s", len(rows), ", ".join(cfg["demo"]["classes"]), args.outdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
