"""ASR stage, one shard: transcripts (``tables.TRANSCRIPTS``) from the shard's wavs.
No audio or silence gives an explicit missing row (empty text), as does a recogniser
that hears nothing.

``python -m emoflow.asr.stage INDEX WAVDIR OUT SKIPS --config JSON``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoflow import logs, tables, warm
from emoflow.asr.backends import make
from emoflow.media.audio import read_wav
from emoflow.storage import read_table, write_rows

STAGE = "asr"


def run(index: str, wav_dir: str, out: str, skips_out: str, cfg: dict) -> tuple[list[dict], list[dict]]:
    acfg = cfg["asr"]
    backend = warm.model(
        "asr", acfg, lambda: make(acfg["backend"], **acfg["params"])
    )  # once per shard (or per predictor)
    rows, skips = [], []
    for r in logs.progress(read_table(index).to_pylist(), "asr"):
        vid = r["video_id"]
        row = {"video_id": vid, "text": "", "confidence": 0.0, "n_words": 0, "missing": True, "backend": backend.name}
        if not r["has_audio"]:
            skips.append(tables.skip(vid, STAGE, "missing", "no audio"))
        elif r["rms_dbfs"] < cfg["feature_inputs"]["min_audio_dbfs"]:
            skips.append(tables.skip(vid, STAGE, "missing", f"silent audio ({r['rms_dbfs']:.1f} dBFS)"))
        else:
            samples, rate = read_wav(Path(wav_dir) / r["wav"])
            text, conf = backend.transcribe(samples, rate)
            row.update(text=text, confidence=conf, n_words=len(text.split()), missing=not text)
            if not text:
                skips.append(tables.skip(vid, STAGE, "missing", "nothing recognised"))
        rows.append(row)
    write_rows(rows, out, tables.TRANSCRIPTS)
    write_rows(skips, skips_out, tables.SKIPS)
    return rows, skips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emoflow asr", description="Transcribe the audio of one shard.")
    for name in ("index", "wav_dir", "out", "skips"):
        ap.add_argument(name)
    ap.add_argument("--config", required=True, help="JSON with 'asr' and 'feature_inputs'")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.asr")
    rows, skips = run(args.index, args.wav_dir, args.out, args.skips, json.loads(args.config))
    log.info("%d videos, %d transcribed, %d missing", len(rows), sum(not r["missing"] for r in rows), len(skips))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
