"""Audio stage: every video's audio as a 16 kHz (configurable) mono 16-bit wav in
``audio/{shard}/{video_id}.wav``, indexed by ``audio/{shard}.parquet``
(``tables.AUDIO``).  A video without an audio stream is recorded (has_audio false,
skip kind ``missing``), not an error.

``python -m emoflow.media.audio SHEET PROBE INDEX WAVDIR SKIPS --config JSON``
"""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path

import ffmpeg
import numpy as np

from emoflow import logs, tables
from emoflow.items import Item
from emoflow.media.ffmpeg import Process, last_line, require
from emoflow.storage import atomic_dir, read_table, write_rows

STAGE = "audio"
SILENCE_DBFS = -120.0


def extract_command(path: str, out: str, sample_rate: int, threads: int = 1) -> list[str]:
    stream = ffmpeg.input(f"file:{path}").audio
    out_ = ffmpeg.output(stream, out, ac=1, ar=sample_rate, acodec="pcm_s16le", format="wav")
    return out_.global_args("-nostdin", "-loglevel", "error", "-y", "-threads", str(threads)).compile(
        cmd=require("ffmpeg")
    )


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 samples in [-1, 1], sample rate) of a 16-bit PCM wav."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        rate, channels = w.getframerate(), w.getnchannels()
    data = data.reshape(-1, channels).mean(axis=1) if channels > 1 else data
    return (data.astype(np.float32) / 32768.0), rate


def rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


def extract_one(video_id, path, probe_row, cfg, wav_dir: Path, threads=1):
    """(index row, skip row or None) for one video."""
    acfg = cfg["audio"]
    sr = acfg["sample_rate"]
    row = {"video_id": video_id, "has_audio": False}
    if not probe_row["has_audio"]:
        return row, tables.skip(video_id, STAGE, "missing", f"{path}: no audio stream")
    out = wav_dir / f"{video_id}.wav"
    timeout = acfg["timeout_base_s"] + acfg["timeout_per_media_s"] * (probe_row.get("duration_s") or 0.0)
    with Process(extract_command(path, str(out), sr, threads), timeout) as proc:
        rc, err = proc.finish()
    if proc.timed_out or rc != 0 or not out.is_file():
        out.unlink(missing_ok=True)
        why = f"time limit of {timeout:g} s exceeded" if proc.timed_out else (last_line(err, path) or f"exit code {rc}")
        return row, tables.skip(video_id, STAGE, "error", f"{path}: ffmpeg could not extract audio ({why})")
    samples, rate = read_wav(out)
    if samples.size == 0:
        out.unlink()
        return row, tables.skip(video_id, STAGE, "missing", f"{path}: the audio stream holds no samples")
    row.update(
        has_audio=True,
        wav=out.name,
        sample_rate=rate,
        n_samples=int(samples.size),
        duration_s=samples.size / rate,
        rms_dbfs=rms_dbfs(samples),
    )
    expected = probe_row.get("duration_s") or 0.0
    if err.strip() and row["duration_s"] < 0.9 * expected - 0.1:  # ffmpeg complained and the audio ends early
        why = f"decoding stopped early, at {row['duration_s']:.2f} of {expected:.2f} s (truncated? {last_line(err, path)})"
        return row, tables.skip(video_id, STAGE, "partial", f"{path}: {why}; kept the decoded part")
    return row, None


def run(sheet, probe, index_out, wav_dir_out, skips_out, cfg, threads=1) -> tuple[int, int, int]:
    from emoflow.dataset.sheet import read_sheet

    videos = read_sheet(sheet)
    probed = {r["video_id"]: r for r in read_table(probe).to_pylist()}
    rows, skips = [], []
    with atomic_dir(wav_dir_out) as tmp_dir:
        for vid, path in logs.progress(zip(videos["video_id"], videos["path"]), "audio", total=len(videos)):
            prow = probed.get(vid)
            if prow is None or not prow["ok"]:
                why = prow["error"] if prow else "not in the probe table"
                rows.append({"video_id": vid, "has_audio": False})
                skips.append(tables.skip(vid, STAGE, "upstream", f"probe: {why}"))
                continue
            row, skip = extract_one(vid, path, prow, cfg, Path(tmp_dir), threads)
            rows.append(row)
            if skip:
                skips.append(skip)
    write_rows(rows, index_out, tables.AUDIO)
    write_rows(skips, skips_out, tables.SKIPS)
    return len(rows), sum(r["has_audio"] for r in rows), len(skips)


def iter_audio(index_path: str, wav_dir: str, min_dbfs: float):
    for row in read_table(index_path).to_pylist():
        vid = row["video_id"]
        if not row["has_audio"]:
            yield Item(vid, None, "no audio")
        elif row["rms_dbfs"] is not None and row["rms_dbfs"] < min_dbfs:
            yield Item(vid, None, f"silent audio ({row['rms_dbfs']:.1f} dBFS)")
        else:
            yield Item(vid, read_wav(Path(wav_dir) / row["wav"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow audio", description="Extract 16 kHz mono wavs for one shard.")
    ap.add_argument("sheet", help="shard sheet (Parquet)")
    ap.add_argument("probe", help="the shard's probe table (Parquet)")
    ap.add_argument("index", help="audio index to write (Parquet)")
    ap.add_argument("wav_dir", help="folder to write the wavs into")
    ap.add_argument("skips", help="skip table to write (Parquet)")
    ap.add_argument("--config", required=True, help="JSON with the 'audio' section")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.audio")
    n, with_audio, bad = run(
        args.sheet, args.probe, args.index, args.wav_dir, args.skips, json.loads(args.config), args.threads
    )
    log.info("%d videos, %d with audio; %d skipped (see %s)", n, with_audio, bad, args.skips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
