"""How emoflow's Snakemake DAG scales with the corpus (issue 10).

  dryrun       dry-run wall time, CPU time and job count for generated manifests of
               1k, 10k and 100k videos whose clips are empty placeholder files (enough
               for a dry run), on the paired_av preset (every stage), with n_shards
               sized to ~VIDEOS_PER_SHARD videos a shard and with a fixed n_shards.
               "plan" is the same dry run asked for one target only (parse, config
               and manifest validation, shard plan): the rest of a full dry run is
               Snakemake building and printing the DAG.
  incremental  a real complete run on 1k tiny real clips (FER2013 faces on a grey
               canvas, a tone per class; 112x112, 1 s, made by ffmpeg) with the lean
               config bench/scale_lean.yaml, then: the no-op rerun (dry and real),
               and adding one clip: which jobs rerun (per rule, and which shards) and
               the real incremental run's wall time against the complete run's.

  python bench/scale.py dryrun [--sizes 1000 10000 100000] [--label after]
  python bench/scale.py incremental [--videos 1000] [--n-shards 4]
  python bench/scale.py scheduler [--jobs 300 1000]
  python bench/scale.py tables      # the README tables from bench/out/scale_*.json

Wall times are taken on a shared machine (other work running): each JSON records the
load average before and after every measurement, and dry runs are repeated (--repeat).
--snakefile points at another checkout of the workflow (e.g. the code before a change).
Writes bench/out/scale_dryrun[_LABEL].json and bench/out/scale_incremental.json and
prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emoflow.config import load_config, resolve_data_root  # noqa: E402
from emoflow.dataset.shards import assign  # noqa: E402
from emoflow.media.ffmpeg import command  # noqa: E402

OUT_DIR = REPO / "bench" / "out"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "emoflow-bench" / "scale"
N_SPEAKERS = 40  # pseudo-speakers: 28 train, 6 val, 6 test


# --- running Snakemake, measured -------------------------------------------------------


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(cmd: list[str], log: Path | None = None) -> dict:
    """Run ``cmd`` under GNU time: wall, CPU (user+sys of the whole process tree) and the
    peak RSS of its largest process."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        load = loadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name, *cmd], capture_output=True, text=True, env=env
        )
        wall = time.perf_counter() - t0
        _, user, system, rss = Path(tf.name).read_text().split()[-4:]
    output = proc.stdout + proc.stderr
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n{output}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(float(user) + float(system), 2),
        "max_rss_mb": round(int(rss) / 1024, 1),
        "loadavg_before": load,
        "loadavg_after": loadavg(),
        "rc": proc.returncode,
        "output": output,
    }


def snapshot(source: Path, dest: Path) -> Path:
    """A private copy of the workflow at ``source`` (Snakefile, config, rules, envs, profiles,
    src): the working tree may change while a benchmark runs, and a change to a rule or to
    stage code between the complete run and the no-op rerun would rerun jobs. Returns the
    copy's Snakefile."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(source / name, dest / name)
    for name in ("rules", "envs", "profiles", "src", "configs"):
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest / "Snakefile"


def snakemake_cmd(snakefile: Path, workdir: Path, configfiles: list[Path], *args: str) -> list[str]:
    """Snakemake on ``snakefile`` in ``workdir``; targets go in ``args`` (before --configfile)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
        "--configfile",
        *map(str, configfiles),
    ]


def job_counts(output: str) -> dict[str, int]:
    """Per-rule job counts from a (dry-)run's 'Job stats' table ({} if nothing to do);
    the same parser as tests/conftest.py."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside, counts = True, {}
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    inside = False
                else:
                    counts[parts[0]] = int(parts[1])
    return counts


def job_shards(output: str) -> dict[str, list[str]]:
    """Rule -> shards of its jobs, from a dry run's job listing (``wildcards: shard=...``)."""
    shards: dict[str, set[str]] = {}
    rule = None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            continue
        m = re.search(r"wildcards:.*\bshard=(s\d+)", line)
        if m and rule:
            shards.setdefault(rule, set()).add(m.group(1))
    return {r: sorted(s) for r, s in sorted(shards.items())}


def check(result: dict, what: str) -> dict:
    if result["rc"] != 0:
        raise SystemExit(f"{what} failed (exit {result['rc']}):\n{result['output'][-4000:]}")
    return result


def strip(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("output", "rc")}


def machine() -> dict:
    try:
        import snakemake

        version = snakemake.__version__
    except Exception:  # noqa: BLE001 - informational only
        version = None
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "snakemake": version, "git_head": head}


# --- dry runs on generated manifests ------------------------------------------------


def labels_of(cfg: dict) -> list[str]:
    return list(cfg["label_spaces"][cfg["dataset"]["label_space"]])


def synthetic_corpus(root: Path, n: int, classes: list[str]) -> tuple[Path, float]:
    """A manifest of ``n`` videos whose clips are empty placeholder files, and the seconds
    it took to make (0 when it was already there)."""
    manifest = root / "manifest.csv"
    if manifest.is_file() and sum(1 for _ in manifest.open()) == n + 1:
        return manifest, 0.0
    t0 = time.perf_counter()
    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    lines = ["video_id,path,label,split,speaker"]
    for i in range(n):
        vid = f"v{i:06d}"
        (clips / f"{vid}.mp4").touch()
        spk = i % N_SPEAKERS
        split = "train" if spk < 28 else "val" if spk < 34 else "test"
        lines.append(f"{vid},clips/{vid}.mp4,{classes[i % len(classes)]},{split},spk{spk:02d}")
    placeholder = root / "fer2013" / "fer2013.parquet"  # the frame CNN's training set (never read)
    placeholder.parent.mkdir(exist_ok=True)
    placeholder.touch()
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, round(time.perf_counter() - t0, 2)


def dryrun_case(args, root: Path, manifest: Path, n: int, n_shards: int, policy: str) -> dict:
    work = args.workdir / "dry" / f"{n}_{n_shards}"
    work.mkdir(parents=True, exist_ok=True)
    case_cfg = work / "case.yaml"
    case_cfg.write_text(
        yaml.safe_dump(
            {"dataset": {"manifest": str(manifest)}, "sharding": {"n_shards": n_shards}, "data_root": str(root)}
        )
    )
    configs = [args.snakefile.parent / "configs" / "paired_av.yaml", REPO / "bench" / "scale_synthetic.yaml", case_cfg]
    plan = check(
        timed(snakemake_cmd(args.snakefile, work, configs, "-n", "results/synthetic/splits/main.parquet")), "plan"
    )
    runs = []
    for i in range(args.repeat):
        runs.append(
            check(timed(snakemake_cmd(args.snakefile, work, configs, "-n"), work / f"dryrun{i}.log"), "dry run")
        )
    counts = job_counts(runs[0]["output"])
    walls = [r["wall_s"] for r in runs]
    row = {
        "videos": n,
        "n_shards": n_shards,
        "shard_policy": policy,
        "videos_per_shard": round(n / n_shards, 1),
        "jobs": sum(counts.values()),
        "jobs_per_rule": counts,
        "dry_run_wall_s": min(walls),
        "dry_run_wall_s_median": statistics.median(walls),
        "dry_run_cpu_s": min(r["cpu_s"] for r in runs),
        "dry_run_max_rss_mb": max(r["max_rss_mb"] for r in runs),
        "plan_wall_s": plan["wall_s"],
        "plan_cpu_s": plan["cpu_s"],
        "runs": [strip(r) for r in runs],
    }
    print(
        f"{n:>7} videos, {n_shards:>4} shards ({policy}): {row['jobs']:>6} jobs, dry run {row['dry_run_wall_s']:.1f} s "
        f"(cpu {row['dry_run_cpu_s']:.1f} s; plan {plan['wall_s']:.1f} s)",
        flush=True,
    )
    return row


def cmd_dryrun(args) -> int:
    source = args.snakefile.parent
    args.snakefile = snapshot(source, args.workdir / f"workflow_{args.label}")
    cfg = load_config([source / "config.yaml", source / "configs" / "paired_av.yaml"])
    classes = labels_of(cfg)
    rows, made = [], {}
    for n in args.sizes:
        root = args.workdir / "corpus" / str(n)
        manifest, secs = synthetic_corpus(root, n, classes)
        made[n] = secs
        cases = {"sized": max(1, math.ceil(n / args.videos_per_shard)), "fixed": args.fixed_shards}
        cases = {p: k for p, k in cases.items() if p in args.policies}
        for extra in args.extra:
            size, _, k = extra.partition(":")
            if int(size) == n:
                cases[f"{n // int(k)} a shard"] = int(k)
        done = set()
        for policy, n_shards in cases.items():
            if n_shards not in done:
                done.add(n_shards)
                rows.append(dryrun_case(args, root, manifest, n, n_shards, policy))
    result = {
        "what": "snakemake -n on the paired_av preset (every stage) with a generated manifest of placeholder clips",
        "label": args.label,
        "workflow": str(source),
        "videos_per_shard_target": args.videos_per_shard,
        "fixed_shards": args.fixed_shards,
        "repeat": args.repeat,
        "machine": machine(),
        "placeholder_corpus_s": made,
        "results": rows,
    }
    name = "scale_dryrun.json" if args.label == "after" else f"scale_dryrun_{args.label}.json"
    out = Path(args.out) if args.out else OUT_DIR / name
    if args.add and out.is_file():  # pool these runs with the file's earlier ones (same cases)
        earlier = {(r["videos"], r["n_shards"]): r for r in json.loads(out.read_text())["results"]}
        for row in rows:
            old = earlier.get((row["videos"], row["n_shards"]))
            if old and old["jobs"] == row["jobs"]:
                runs = old["runs"] + row["runs"]
                walls = [r["wall_s"] for r in runs]
                row.update(
                    runs=runs,
                    dry_run_wall_s=min(walls),
                    dry_run_wall_s_median=statistics.median(walls),
                    dry_run_cpu_s=min(r["cpu_s"] for r in runs),
                    dry_run_max_rss_mb=max(r["max_rss_mb"] for r in runs),
                )
                if old["plan_wall_s"] < row["plan_wall_s"]:
                    row.update(plan_wall_s=old["plan_wall_s"], plan_cpu_s=old["plan_cpu_s"])
        result["repeat"] = max(len(r["runs"]) for r in rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}\n")
    print("| videos | n_shards | jobs | dry run (wall, best of %d) | dry run CPU | of which plan |" % args.repeat)
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['videos']:,} | {r['n_shards']} ({r['shard_policy']}) | {r['jobs']:,} | {r['dry_run_wall_s']:.1f} s | "
            f"{r['dry_run_cpu_s']:.1f} s | {r['plan_wall_s']:.1f} s |"
        )
    return 0


# --- a real complete run, no-op and incremental reruns ------------------------------


def make_clip(png: Path, tone: float, out: Path) -> None:
    """A 1 s 112x112 10 fps H.264 + AAC clip of a still face image and a tone."""
    cmd = command(
        "-loop",
        "1",
        "-framerate",
        "10",
        "-t",
        "1",
        "-i",
        str(png),
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={tone}:sample_rate=16000:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-shortest",
        str(out),
    )
    subprocess.run(cmd, check=True)


def make_corpus(data: Path, n: int, classes: list[str], data_root: Path) -> tuple[list[dict], dict]:
    """``n`` tiny real clips: FER2013 faces (48x48, drawn at 64x64 on a 112x112 grey canvas,
    like paired_av's clips) with a class-dependent tone, classes taken in turn (balanced);
    returns manifest rows and timing."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    fer = pd.read_parquet(data_root / "fer2013" / "fer2013.parquet", columns=["label", "pixels"])
    rng = np.random.default_rng(0)
    by_class = {c: rng.permutation(np.flatnonzero(fer["label"].to_numpy() == c)) for c in classes}
    pick = [(classes[i % len(classes)], by_class[classes[i % len(classes)]][i // len(classes)]) for i in range(n)]
    clips = data / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    jobs, rows = [], []
    for i, (label, k) in enumerate(pick):
        vid = f"clip{i:05d}"
        spk = i % N_SPEAKERS
        rows.append(
            {
                "video_id": vid,
                "path": f"clips/{vid}.mp4",
                "label": label,
                "split": "train" if spk < 28 else "val" if spk < 34 else "test",
                "speaker": f"spk{spk:02d}",
            }
        )
        out = clips / f"{vid}.mp4"
        if out.is_file():
            continue
        face = Image.fromarray(np.frombuffer(fer["pixels"].iloc[k], dtype=np.uint8).reshape(48, 48))
        canvas = Image.new("L", (112, 112), 128)
        canvas.paste(face.resize((64, 64), Image.BICUBIC), (24, 20))
        png = clips / f"{vid}.png"
        canvas.convert("RGB").save(png)
        jobs.append((png, 180 + 40 * classes.index(label), out))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda j: make_clip(*j), jobs))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for png, _, _ in jobs:
        png.unlink()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rows, {
        "clips_made": len(jobs),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_ms_per_clip": round(1000 * cpu / max(1, len(jobs)), 1),
        "parallel": 2,
    }


def write_manifest(path: Path, rows: list[dict]) -> None:
    cols = ["video_id", "path", "label", "split", "speaker"]
    path.write_text("\n".join([",".join(cols)] + [",".join(r[c] for c in cols) for r in rows]) + "\n")


def lean_config(work: Path, manifest: Path, n_shards: int, workflow: Path) -> Path:
    """bench/scale_lean.yaml plus: this manifest and shard count, and null for every
    feature and experiment of the workflow's config.yaml that the lean config does not name."""
    base = load_config([workflow / "config.yaml"])
    lean = yaml.safe_load((REPO / "bench" / "scale_lean.yaml").read_text())
    cfg = dict(lean)
    cfg["dataset"] = {**lean["dataset"], "manifest": str(manifest)}
    cfg["sharding"] = {"n_shards": n_shards}
    for section in ("features", "experiments"):
        cfg[section] = {**{name: None for name in base[section]}, **lean[section]}
    path = work / "scale_lean.generated.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def cmd_incremental(args) -> int:
    base = load_config([REPO / "config.yaml"])
    lean = yaml.safe_load((REPO / "bench" / "scale_lean.yaml").read_text())
    classes = list(base["label_spaces"][lean["dataset"]["label_space"]])
    data_root = resolve_data_root({"data_root": args.data_root})
    root = args.workdir / f"incremental_{args.videos}"
    data, work, logs = root / "data", root / "work", root / "logs"
    if work.exists() and not args.keep:
        raise SystemExit(f"{work} exists: remove it for a fresh complete run (or pass --keep to reuse it)")
    work.mkdir(parents=True, exist_ok=True)
    rows, gen = make_corpus(data, args.videos + 1, classes, data_root)
    added = rows.pop()  # made with the others; enters the manifest after the complete run
    manifest = data / "manifest.csv"
    write_manifest(manifest, rows)
    args.snakefile = snapshot(args.snakefile.parent, root / "workflow")
    config = lean_config(root, manifest, args.n_shards, args.snakefile.parent)
    sm = lambda *a: snakemake_cmd(args.snakefile, work, [config], *a)  # noqa: E731
    result = {
        "what": f"real complete run of {args.videos} tiny clips (bench/scale_lean.yaml), no-op rerun, one clip added",
        "workflow": f"a copy of {REPO} taken at the start (the working tree may change meanwhile)",
        "machine": machine(),
        "videos": args.videos,
        "n_shards": args.n_shards,
        "clip": {"size": [112, 112], "fps": 10, "duration_s": 1.0, "audio": "AAC tone, 16 kHz"},
        "generate": gen,
    }

    print(f"complete run: {args.videos} clips, {args.n_shards} shards ...", flush=True)
    full = check(timed(sm("--quiet", "rules"), logs / "complete.log"), "complete run")
    result["complete_run"] = {**strip(full), "jobs_per_rule": job_counts(full["output"])}
    result["complete_run"]["jobs"] = sum(result["complete_run"]["jobs_per_rule"].values())
    print(f"  {full['wall_s']:.0f} s, {result['complete_run']['jobs']} jobs", flush=True)

    noop_dry, noop_run = [], []
    for i in range(args.repeat):
        d = check(timed(sm("-n"), logs / f"noop_dry{i}.log"), "no-op dry run")
        if job_counts(d["output"]) or "Nothing to be done" not in d["output"]:
            raise SystemExit(f"the no-op dry run has work to do:\n{d['output'][-4000:]}")
        noop_dry.append(strip(d))
        r = check(timed(sm("--quiet", "rules"), logs / f"noop_run{i}.log"), "no-op run")
        noop_run.append(strip(r))
    noop_mtime = [
        strip(check(timed(sm("-n", "--rerun-triggers", "mtime")), "no-op dry run (mtime)")) for _ in range(args.repeat)
    ]
    result["noop_dry_run_rerun_triggers_mtime"] = {"wall_s": min(x["wall_s"] for x in noop_mtime), "runs": noop_mtime}
    result["noop_dry_run"] = {"wall_s": min(x["wall_s"] for x in noop_dry), "runs": noop_dry}
    result["noop_run"] = {"wall_s": min(x["wall_s"] for x in noop_run), "runs": noop_run}
    print(
        f"no-op: dry run {result['noop_dry_run']['wall_s']:.1f} s, run {result['noop_run']['wall_s']:.1f} s", flush=True
    )

    write_manifest(manifest, rows + [added])
    shard = assign([added["video_id"]], args.n_shards)[0]
    dry = check(timed(sm("-n"), logs / "add_one_dry.log"), "add-one dry run")
    counts, shards = job_counts(dry["output"]), job_shards(dry["output"])
    # what modification times alone would rerun (the shard sheets' digest is a param)
    mtime = check(timed(sm("-n", "--rerun-triggers", "mtime"), logs / "add_one_dry_mtime.log"), "mtime-only dry run")
    run = check(timed(sm("--quiet", "rules"), logs / "add_one_run.log"), "add-one run")
    after = check(timed(sm("-n"), logs / "after_add_one_dry.log"), "dry run after the add-one run")
    result["add_one"] = {
        "video": added,
        "shard": shard,
        "dry_run": {**strip(dry), "jobs_per_rule": counts, "jobs": sum(counts.values()), "shards_per_rule": shards},
        "dry_run_rerun_triggers_mtime": {
            **strip(mtime),
            "jobs_per_rule": job_counts(mtime["output"]),
            "shards_per_rule": job_shards(mtime["output"]),
        },
        "run": {**strip(run), "jobs_per_rule": job_counts(run["output"])},
        "wall_vs_complete_run": round(run["wall_s"] / full["wall_s"], 3),
        "nothing_left_after": not job_counts(after["output"]),
    }
    print(
        f"add one clip (shard {shard}): {sum(counts.values())} jobs {counts}; run {run['wall_s']:.0f} s "
        f"({100 * run['wall_s'] / full['wall_s']:.1f}% of the complete run)",
        flush=True,
    )
    out = Path(args.out) if args.out else OUT_DIR / "scale_incremental.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


SCHED_SNAKEFILE = """\
N = int(config["njobs"])
rule all:
    input: expand("out/{i}.done", i=range(N))
rule one:
    output: "out/{i}.done"
    shell: "touch {output}"
"""


def cmd_scheduler(args) -> int:
    """Snakemake's job selection alone: N trivial independent jobs (``touch``), all ready at
    once as the feature jobs of every shard are, under each scheduler setting."""
    root = args.workdir / "scheduler"
    root.mkdir(parents=True, exist_ok=True)
    snakefile = root / "Snakefile"
    snakefile.write_text(SCHED_SNAKEFILE)
    settings = {
        "ilp": ["--scheduler", "ilp"],
        "greedy": ["--scheduler", "greedy"],
        "ilp, --scheduler-subsample 100": ["--scheduler", "ilp", "--scheduler-subsample", "100"],
    }
    rows = []
    for n in args.jobs:
        for name, opts in settings.items():
            work = root / f"{n}_{name.split(',')[0]}_{len(opts)}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            cmd = [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                str(snakefile),
                "--directory",
                str(work),
                "--cores",
                "2",
                "--quiet",
                "all",
                *opts,
                "--config",
                f"njobs={n}",
            ]
            r = check(timed(cmd), f"scheduler {name}")
            rows.append({"jobs": n, "scheduler": name, **strip(r)})
            print(f"{n} jobs, {name}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU", flush=True)
    out = Path(args.out) if args.out else OUT_DIR / "scale_scheduler.json"
    out.write_text(
        json.dumps(
            {"what": cmd_scheduler.__doc__.split("\n\n")[0].replace("\n", " "), "machine": machine(), "results": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")
    return 0


def cmd_tables(args) -> int:
    """The README tables, from bench/out/scale_*.json."""
    after = json.loads((OUT_DIR / "scale_dryrun.json").read_text())
    before = {}
    for p in sorted(OUT_DIR.glob("scale_dryrun_before*.json")):
        for r in json.loads(p.read_text())["results"]:
            before[(r["videos"], r["n_shards"])] = r
    print("| videos | n_shards | jobs | dry run before | dry run after (wall / CPU) | of which parse + plan |")
    print("|---|---|---|---|---|---|")
    for r in after["results"]:
        b = before.get((r["videos"], r["n_shards"]))
        bt = f"{b['dry_run_wall_s']:.1f} s / {b['dry_run_cpu_s']:.1f} s" if b else "not run"
        print(
            f"| {r['videos']:,} | {r['n_shards']} ({r['shard_policy']}) | {r['jobs']:,} | {bt} | "
            f"{r['dry_run_wall_s']:.1f} s / {r['dry_run_cpu_s']:.1f} s | {r['plan_wall_s']:.1f} s |"
        )
    inc = OUT_DIR / "scale_incremental.json"
    if inc.is_file():
        d = json.loads(inc.read_text())
        c, a = d["complete_run"], d["add_one"]
        print(
            f"\n{d['videos']} clips, {d['n_shards']} shards; clips made in {d['generate']['wall_s']:.0f} s "
            f"({d['generate']['cpu_ms_per_clip']:.0f} ms CPU a clip)\n"
        )
        print("| run | jobs | wall | CPU | load average (1 min) before |")
        print("|---|---|---|---|---|")
        print(f"| complete run | {c['jobs']} | {c['wall_s']:.0f} s | {c['cpu_s']:.0f} s | {c['loadavg_before'][0]} |")
        for key, name in (
            ("noop_dry_run", "no-op dry run"),
            ("noop_run", "no-op run"),
            ("noop_dry_run_rerun_triggers_mtime", "no-op dry run, --rerun-triggers mtime"),
        ):
            best = min(d[key]["runs"], key=lambda r: r["wall_s"])
            print(
                f"| {name} (best of {len(d[key]['runs'])}) | 0 | {best['wall_s']:.1f} s | {best['cpu_s']:.1f} s | {best['loadavg_before'][0]} |"
            )
        per_shard = ", ".join(f"{r}: {','.join(s)}" for r, s in a["dry_run"]["shards_per_rule"].items())
        print(
            f"| one clip added (shard {a['shard']}; {per_shard}) | {a['dry_run']['jobs']} | {a['run']['wall_s']:.0f} s "
            f"({100 * a['wall_vs_complete_run']:.0f}% of the complete run) | {a['run']['cpu_s']:.0f} s | {a['run']['loadavg_before'][0]} |"
        )
        print(f"\njobs rerun: {a['dry_run']['jobs_per_rule']}")
        print(
            f"with --rerun-triggers mtime: {a['dry_run_rerun_triggers_mtime']['jobs_per_rule'] or 'nothing (the new clip is missed)'}"
        )
    sched = OUT_DIR / "scale_scheduler.json"
    if sched.is_file():
        print("\n| ready jobs | scheduler | wall | CPU |\n|---|---|---|---|")
        for r in json.loads(sched.read_text())["results"]:
            print(f"| {r['jobs']} | {r['scheduler']} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snakefile", type=Path, default=REPO / "Snakefile")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORK, help=f"scratch folder (default {DEFAULT_WORK})")
    ap.add_argument("--out", help="JSON to write (default bench/out/scale_*.json)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dryrun", help="dry-run time and job count by corpus size")
    d.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    d.add_argument(
        "--videos-per-shard", type=int, default=250, help="the 'sized' policy: n_shards = ceil(videos / this)"
    )
    d.add_argument("--fixed-shards", type=int, default=8, help="the 'fixed' policy (paired_av's n_shards)")
    d.add_argument("--policies", nargs="+", default=["sized", "fixed"], choices=["sized", "fixed"])
    d.add_argument("--extra", nargs="*", default=["100000:100"], help="more cases, VIDEOS:N_SHARDS")
    d.add_argument("--repeat", type=int, default=2)
    d.add_argument(
        "--add", action="store_true", help="pool the runs with those already in the JSON (best-of over both)"
    )
    d.add_argument(
        "--label", default="after", help="names the JSON: scale_dryrun.json for 'after', else scale_dryrun_LABEL.json"
    )
    d.set_defaults(func=cmd_dryrun)
    i = sub.add_parser("incremental", help="complete run, no-op rerun, one video added")
    i.add_argument("--videos", type=int, default=1000)
    i.add_argument("--n-shards", type=int, default=4)
    i.add_argument("--repeat", type=int, default=3)
    i.add_argument("--data-root", help="holds fer2013/fer2013.parquet (default: emoflow's data root)")
    i.add_argument(
        "--keep", action="store_true", help="reuse an existing work folder (its complete run is then a no-op)"
    )
    i.set_defaults(func=cmd_incremental)
    s = sub.add_parser("scheduler", help="job selection overhead: N trivial ready jobs, ilp vs greedy")
    s.add_argument("--jobs", type=int, nargs="+", default=[300, 1000])
    s.set_defaults(func=cmd_scheduler)
    t = sub.add_parser("tables", help="print the README tables from bench/out/scale_*.json")
    t.set_defaults(func=cmd_tables)
    args = ap.parse_args(argv)
    args.snakefile = args.snakefile.resolve()
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
