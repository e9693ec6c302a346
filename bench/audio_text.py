"""Cost of every configured audio/text extractor and of ASR, in seconds per minute of
audio, on a sample of paired_av clips; and the ASR word error rate on paired_av
(RAVDESS says one of two known sentences) from a workflow run's transcripts.

  python bench/audio_text.py [--clips 60] [--transcripts results/paired_av/text]

Model loading is timed apart from extraction. Writes bench/out/audio_text.json and prints
a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.asr.backends import make, word_error_rate  # noqa: E402
from emoflow.config import load_config, resolve_data_root  # noqa: E402
from emoflow.dataset.sheet import write_sheet  # noqa: E402
from emoflow.features import registry  # noqa: E402
from emoflow.media import audio, probe  # noqa: E402
from emoflow.media.audio import read_wav  # noqa: E402
from emoflow.storage import read_table  # noqa: E402

SENTENCES = {"kids": "kids are talking by the door", "dogs": "dogs are sitting by the door"}


def corpus_wer(manifest: pd.DataFrame, transcripts_dir: Path) -> dict:
    paths = [p for p in sorted(transcripts_dir.glob("*.parquet")) if "text" in read_table(p).column_names]
    rows = pd.concat([read_table(p).to_pandas() for p in paths])
    ref = manifest.set_index("video_id")["statement"].map(SENTENCES)
    edits = words = 0
    exact = 0
    for r in rows.itertuples():
        e, n = word_error_rate(ref[r.video_id], r.text)
        edits, words, exact = edits + e, words + n, exact + (e == 0)
    return {
        "clips": len(rows),
        "wer": round(edits / words, 4),
        "sentence_exact": round(exact / len(rows), 4),
        "edits": edits,
        "words": words,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root")
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--transcripts", default=str(REPO / "results" / "paired_av" / "text"))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "audio_text.json"))
    args = ap.parse_args(argv)
    root = resolve_data_root({"data_root": args.data_root})
    cfg = load_config([REPO / "config.yaml", REPO / "configs" / "paired_av.yaml"], overrides={"data_root": str(root)})
    man = pd.read_csv(root / "paired_av" / "manifest.csv", dtype=str)
    sample = man.sort_values("video_id").iloc[:: max(1, len(man) // args.clips)].head(args.clips)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sheet = str(tmp / "sheet.parquet")
        write_sheet(
            pd.DataFrame(
                {"video_id": sample["video_id"], "path": [str(root / "paired_av" / p) for p in sample["path"]]}
            ),
            sheet,
        )
        probe.run(sheet, str(tmp / "p.parquet"), str(tmp / "ps.parquet"), cfg)
        audio.run(sheet, str(tmp / "p.parquet"), str(tmp / "a.parquet"), str(tmp / "wav"), str(tmp / "as.parquet"), cfg)
        index = read_table(tmp / "a.parquet").to_pylist()
        signals = [read_wav(tmp / "wav" / r["wav"]) for r in index]
        minutes = sum(len(x) / sr for x, sr in signals) / 60
        texts = [SENTENCES[s] for s in sample["statement"]]
        for name, params in cfg["features"].items():
            ent = registry.entry(params["extractor"])
            if ent.fitted:
                continue  # TF-IDF: measured below with a vocabulary fitted on these texts
            t0 = time.perf_counter()
            ext = registry.load(params["extractor"])(params, 2)
            t_load = time.perf_counter() - t0
            t0 = time.perf_counter()
            for (x, sr), t in zip(signals, texts):
                ext.extract((x, sr) if ent.input == "audio" else t)
            dt = time.perf_counter() - t0
            results.append(
                {
                    "extractor": name,
                    "type": params["extractor"],
                    "level": ext.level,
                    "dim": ext.dim,
                    "load_s": round(t_load, 2),
                    "s_per_audio_min": round(dt / minutes, 3),
                }
            )
        from emoflow.features.tfidf import TfIdf, fit

        (tmp / "tfidf.json").write_text(json.dumps(fit(texts, 2000, 2, 1)))
        t0 = time.perf_counter()
        ext = TfIdf({"model": str(tmp / "tfidf.json")})
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in texts:
            ext.extract(t)
        results.append(
            {
                "extractor": "text_tfidf",
                "type": "tfidf",
                "level": "video",
                "dim": ext.dim,
                "load_s": round(t_load, 2),
                "s_per_audio_min": round((time.perf_counter() - t0) / minutes, 4),
            }
        )
        t0 = time.perf_counter()
        asr = make(cfg["asr"]["backend"], **cfg["asr"]["params"])
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        edits = words = 0
        for (x, sr), ref in zip(signals, texts):
            text, _ = asr.transcribe(x, sr)
            e, n = word_error_rate(ref, text)
            edits, words = edits + e, words + n
        results.append(
            {
                "extractor": "asr",
                "type": cfg["asr"]["backend"],
                "level": "video",
                "dim": None,
                "load_s": round(t_load, 2),
                "s_per_audio_min": round((time.perf_counter() - t0) / minutes, 3),
                "sample_wer": round(edits / words, 4),
            }
        )
    out = {"clips": len(signals), "audio_minutes": round(minutes, 2), "results": results}
    tdir = Path(args.transcripts)
    if tdir.is_dir() and any(tdir.glob("s*.parquet")):
        out["paired_av_asr"] = corpus_wer(man, tdir)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{len(signals)} clips, {minutes:.2f} min of audio")
    print("| extractor | type | level | dim | load (s) | s per minute of audio |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['extractor']} | {r['type']} | {r['level']} | {r['dim'] if r['dim'] is not None else ''} | {r['load_s']} | {r['s_per_audio_min']} |"
        )
    if "paired_av_asr" in out:
        print("paired_av ASR:", out["paired_av_asr"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
