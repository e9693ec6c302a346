"""Per-stage throughput on paired_av (videos/s, frames/s), peak memory per stage and an
estimate of the end-to-end wall time on 2 cores (issue 10).

From the logs of a finished paired_av run (read only; nothing there is rerun):
  every per-shard job's log ends with its progress bar (videos done, seconds spent in
  the stage's loop: model loading and interpreter start-up excluded) and a summary line
  (the frames stage's gives the shard's frame count); fits' logs are timestamped.
Measured here, on one shard (--shard, default s000) copied into --workdir:
  each per-shard job (the command Snakemake would run, from `snakemake -n -p`) under
  `/usr/bin/time -v`: wall, CPU, peak RSS (largest process), and its own progress bar,
  so start-up (imports, model loading) = wall - loop time.

  python bench/throughput.py [--results results/paired_av] [--shard s000] [--stages probe faces ...]
  python bench/throughput.py --no-measure      # logs only (no peak memory)

The end-to-end estimate adds, per rule, loop time from the logs plus one start-up per job
(from the measured shard), weighted by the threads the rule uses, over 2 cores
(ideal packing); fits use their logs' first/last timestamps (or the README's figure where the
log does not cover the whole fit) and the evaluation part (encode, classify, fusion, report)
the span of its logs. Writes bench/out/throughput.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import load_config  # noqa: E402
from emoflow.features import registry  # noqa: E402

DEFAULT_WORK = Path("/tmp/emoflow-bench/throughput")
MEDIA = ["shard_sheet", "probe", "frames", "audio", "faces", "asr"]
LOG_DIR = {"shard_sheet": "shards"}  # rule -> logs/ folder, where they differ
THREADS = {"frames": 2, "faces": 2, "fit_audio_cnn": 2, "fit_frame_cnn": 2, "fit_c3d": 2}
# Figures the logs cannot give (the fit's log only covers its last, resumed session)
README_FIGURES = {
    "fit_frame_cnn": {"wall_s": 61 * 60, "source": "README: 61 min wall for the whole job (30 epochs on FER2013)"}
}
TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", re.M)


def parse_elapsed(text: str) -> tuple[int | None, float | None]:
    """(items, seconds) of the last tqdm progress bar in a log (a bar under 2 s long gives
    its seconds as items / rate, the clock's resolution being 1 s)."""
    bars = re.findall(
        r"(\d+)(?:/\d+)?\s*(?:video)?\s*\[(\d+(?::\d+){1,2})(?:<[\d:?]+)?,\s*([\d.?]+)\s*(video/s|s/video)\]", text
    )
    if not bars:
        return None, None
    n, clock, rate, unit = bars[-1]
    secs = 0
    for part in clock.split(":"):
        secs = secs * 60 + int(part)
    if secs < 2 and unit == "video/s" and rate not in ("?", "") and float(rate) > 0:
        return int(n), round(int(n) / float(rate), 3)
    return int(n), float(secs)


def log_span(text: str) -> float | None:
    stamps = [
        dt.datetime.strptime(a, "%Y-%m-%d %H:%M:%S") + dt.timedelta(milliseconds=int(b)) for a, b in TS.findall(text)
    ]
    return (max(stamps) - min(stamps)).total_seconds() if len(stamps) > 1 else None


def shard_frames(logs: Path) -> dict[str, int]:
    out = {}
    for p in sorted((logs / "frames").glob("s*.log")):
        m = re.search(r"(\d+) videos -> (\d+) frames", p.read_text(errors="replace"))
        if m:
            out[p.stem] = int(m.group(2))
    return out


def from_logs(results: Path, cfg: dict) -> dict:
    """Per rule (and per feature): shards, videos, loop seconds, from the run's logs."""
    logs = results / "logs"
    frames = shard_frames(logs)
    stages = {}
    names = [(r, logs / LOG_DIR.get(r, r)) for r in MEDIA] + [
        (f"features/{name}", logs / "features" / name) for name in sorted(cfg["features"])
    ]
    for rule, folder in names:
        rows = []
        for p in sorted(folder.glob("s*.log")):
            n, secs = parse_elapsed(p.read_text(errors="replace"))
            rows.append({"shard": p.stem, "videos": n, "loop_s": secs, "frames": frames.get(p.stem)})
        if not rows:
            continue
        videos = sum(r["videos"] or 0 for r in rows)
        loop = sum(r["loop_s"] or 0 for r in rows)
        nframes = sum(r["frames"] or 0 for r in rows)
        stages[rule] = {
            "shards": len(rows),
            "videos": videos,
            "frames": nframes,
            "loop_s": loop,
            "videos_per_s": round(videos / loop, 2) if loop else None,
            "frames_per_s": round(nframes / loop, 1) if loop else None,
            "per_shard": rows,
        }
    corpus = {}
    for rule in ("fit_tfidf", "fit_audio_cnn", "fit_c3d", "fit_frame_cnn"):
        for p in sorted((logs / rule).glob("*.log")):
            span = log_span(p.read_text(errors="replace"))
            entry = {"log_span_s": span}
            if rule in README_FIGURES:
                entry.update(README_FIGURES[rule])
            else:
                entry["wall_s"] = span
            corpus[f"{rule}/{p.stem}"] = entry
    spans = []
    for folder in ("encode", "classify", "fusion"):
        spans += list((logs / folder).rglob("*.log"))
    spans += [logs / "report.log"]
    stamps = []
    for p in spans:
        if p.is_file():
            stamps += [
                dt.datetime.strptime(a, "%Y-%m-%d %H:%M:%S") for a, _ in TS.findall(p.read_text(errors="replace"))
            ]
    if stamps:
        corpus["evaluation (encode, classify, fusion, report)"] = {
            "jobs": len(spans),
            "log_span_s": (max(stamps) - min(stamps)).total_seconds(),
            "wall_s": 8 * 60 + 31,
            "source": "README: 8 min 31 s for the evaluation part on 2 cores (47 jobs, features present); "
            "log_span_s is the span of these logs' timestamps (may include pauses between runs)",
        }
    return {"stages": stages, "corpus_level": corpus}


# --- measuring one shard -------------------------------------------------------------


def copy_shard(results: Path, work: Path, shard: str) -> Path:
    """The shard's stage outputs and the fitted models, copied (with their times) under
    WORK/results/<name>: what the shard's jobs read."""
    dest = work / "results" / results.name
    files = [
        f"shards/{shard}.parquet",
        f"probe/{shard}.parquet",
        f"frames/{shard}.parquet",
        f"audio/{shard}.parquet",
        f"faces/{shard}.parquet",
        f"faces/{shard}.videos.parquet",
        f"crops/{shard}.parquet",
        f"text/{shard}.parquet",
    ]
    for rel in files:
        src = results / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if (results / "audio" / shard).is_dir() and not (dest / "audio" / shard).is_dir():
        shutil.copytree(results / "audio" / shard, dest / "audio" / shard)
    for model in (results / "models").glob("*/*"):
        if model.is_file() and model.parent.name in ("audio_cnn", "tfidf", "frame_cnn", "c3d"):
            (dest / "models" / model.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(model, dest / "models" / model.parent.name / model.name)
    return dest


def shell_command(work: Path, configs: list[Path], rule: str, target: str) -> str:
    """The command Snakemake would run for ``target`` (forced, this rule only)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "-n",
        "-p",
        "-f",
        "--allowed-rules",
        rule,
        "--cores",
        "2",
        target,
        "--configfile",
        *map(str, configs),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
    m = re.search(r"^Shell command: (.*)$", proc.stdout + proc.stderr, re.M)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"no command for {target}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return m.group(1)


def clean_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def time_v(command: str, cwd: Path) -> dict:
    """Run a job's shell command as Snakemake does (strict bash, src/ on PYTHONPATH, the venv
    first on PATH) under /usr/bin/time -v."""
    env = clean_env()
    env["PYTHONPATH"] = str(REPO / "src")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    load = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", "bash", "-c", f"set -euo pipefail; {command}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    text = proc.stderr

    def field(name):
        m = re.search(rf"{re.escape(name)}: (.+)", text)
        return m.group(1).strip() if m else None

    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {command}\n{text[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 2),
        "max_rss_mb": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
        "loadavg_before": load,
    }


def measure(results: Path, work: Path, shard: str, stages: list[str], cfg: dict) -> dict:
    dest = copy_shard(results, work, shard)
    configs = [REPO / "configs" / "paired_av.yaml"]
    out = {}
    for stage in stages:
        rule, _, name = stage.partition("/")
        target = {
            "shard_sheet": f"shards/{shard}.parquet",
            "probe": f"probe/{shard}.parquet",
            "frames": f"frames/{shard}.parquet",
            "audio": f"audio/{shard}.parquet",
            "faces": f"faces/{shard}.parquet",
            "asr": f"text/{shard}.parquet",
            "features": f"features/{name}/{shard}.parquet",
        }[rule]
        command = shell_command(work, configs, rule, f"results/{results.name}/{target}")
        if str(REPO / "results") in command:
            raise SystemExit(f"refusing to run a command that names {REPO / 'results'}: {command}")
        m = re.search(r">\s*'?([^' ]+\.log)'?\s+2>&1\s*$", command)
        log = work / m.group(1) if m else None
        if log:
            log.parent.mkdir(parents=True, exist_ok=True)
        print(f"{stage}: running on {shard} ...", flush=True)
        row = time_v(command, work)
        n, loop = parse_elapsed(log.read_text(errors="replace")) if log and log.is_file() else (None, None)
        row.update(
            {"videos": n, "loop_s": loop, "startup_s": round(row["wall_s"] - loop, 2) if loop is not None else None}
        )
        out[stage] = row
        print(f"  {row}", flush=True)
    return {"shard": shard, "copied_to": str(dest), "stages": out}


def visual(stage: str, cfg: dict) -> bool:
    """Stages that work frame by frame (frames/s is meaningful for them)."""
    if stage in ("frames", "faces"):
        return True
    if stage.startswith("features/"):
        return registry.entry(cfg["features"][stage.split("/", 1)[1]]["extractor"]).input in ("crops", "frames")
    return False


def estimate(stages: dict, measured: dict, corpus: dict) -> dict:
    """Job-seconds per rule (loop time from the logs, plus one measured start-up per job),
    weighted by threads; the end-to-end estimate packs them ideally on 2 cores."""
    rows, total = {}, 0.0
    for stage, s in stages.items():
        rule = stage.split("/")[0]
        m = measured.get(stage) or {}
        startup = m.get("startup_s")
        if not s["loop_s"] and m.get("wall_s"):  # no progress bar (the shard sheet): the measured job
            wall = s["shards"] * m["wall_s"]
        else:
            wall = s["loop_s"] + s["shards"] * (startup or 0)
        core_s = wall * min(2, THREADS.get(rule, 1))
        rows[stage] = {"job_wall_s": round(wall, 1), "core_s": round(core_s, 1), "startup_known": startup is not None}
        total += core_s
    for name, c in corpus.items():
        rule = name.split("/")[0]
        if c.get("wall_s"):
            core_s = c["wall_s"] * (2 if name.startswith("evaluation") else min(2, THREADS.get(rule, 1)))
            rows[name] = {"job_wall_s": round(c["wall_s"], 1), "core_s": round(core_s, 1)}
            total += core_s
    return {"per_stage": rows, "core_seconds": round(total, 1), "end_to_end_2_cores_s": round(total / 2, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--results", type=Path, default=REPO / "results" / "paired_av", help="a finished paired_av run (read only)"
    )
    ap.add_argument("--shard", default="s000")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--stages", nargs="+", help="measure only these (e.g. probe faces features/hog)")
    ap.add_argument("--no-measure", action="store_true", help="from the logs only (keeps the measured part of --out)")
    ap.add_argument("--logs-from", type=Path, help="take the log figures from this earlier throughput JSON")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "throughput.json")
    args = ap.parse_args(argv)
    results = args.results.resolve()
    if args.workdir.resolve().is_relative_to(results):
        raise SystemExit("--workdir must be outside the results folder")
    cfg = load_config([REPO / "config.yaml", REPO / "configs" / "paired_av.yaml"])
    if args.logs_from:  # figures parsed earlier, e.g. before a partial rerun overwrote some logs
        logs = json.loads(args.logs_from.read_text())["from_logs"]
        logs["parsed_from"] = f"{args.logs_from} (an earlier parse of {results}/logs)"
    else:
        logs = from_logs(results, cfg)
        logs["parsed_from"] = f"{results}/logs, {time.strftime('%Y-%m-%d %H:%M')}"
    measured = {}
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if not args.no_measure:
        stages = args.stages or list(logs["stages"])
        got = measure(results, args.workdir, args.shard, stages, cfg)
        measured = {**(previous.get("measured", {}).get("stages", {}) if args.stages else {}), **got["stages"]}
        measured_info = {"shard": got["shard"], "stages": measured}
    else:
        measured_info = previous.get("measured", {})
        measured = measured_info.get("stages", {})
    result = {
        "what": "paired_av per-stage throughput (from the run's logs) and peak memory (one shard, measured here)",
        "results": str(results),
        "nproc": os.cpu_count(),
        "from_logs": logs,
        "measured": measured_info,
        "estimate": estimate(logs["stages"], measured, logs["corpus_level"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}\n")
    print("| stage | jobs | videos/s | frames/s | start-up per job | peak RSS | job-seconds (all shards) |")
    print("|---|---|---|---|---|---|---|")
    for stage, s in logs["stages"].items():
        m = measured.get(stage, {})
        fps = f"{s['frames_per_s']:,.0f}" if s["frames_per_s"] and visual(stage, cfg) else ""
        su = f"{m['startup_s']:.1f} s" if m.get("startup_s") is not None else ""
        rss = f"{m['max_rss_mb']:,.0f} MB" if m.get("max_rss_mb") else ""
        print(
            f"| {stage} | {s['shards']} | {s['videos_per_s'] or ''} | {fps} | {su} | {rss} | "
            f"{result['estimate']['per_stage'][stage]['job_wall_s']:,.0f} s |"
        )
    for name, c in logs["corpus_level"].items():
        print(f"| {name} | 1 | | | | | {c.get('wall_s') or 0:,.0f} s |")
    e = result["estimate"]
    print(f"\nend to end on 2 cores (estimate, ideal packing): {e['end_to_end_2_cores_s'] / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
