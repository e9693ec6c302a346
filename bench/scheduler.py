"""Snakemake's own CPU against its scheduling window (profiles' ``max-jobs-per-timespan``).

Snakemake 9 re-plans on a timer of the window's length, and starts one more such timer
chain for every job that finishes (none ever stops), so with its default window (1 s) a
long run re-plans hundreds of times a second by its end.  This runs one synthetic workflow
(``--jobs`` sleeping jobs in two layers, each reading ``--code-files`` small files, as
emoflow's rules read their stage's source files) with each window, on ``--cores`` cores,
and records the wall time, the CPU time of the Snakemake process (with its jobs: ``sleep``, next to nothing)
and its peak thread count.

  python bench/scheduler.py [--windows 100/1s 1000/10s] [--jobs 240] [--sleep 1.5]

Writes bench/out/scheduler.json: {"runs": {WINDOW: {"wall_s", "snakemake_cpu_s",
"max_threads", "jobs"}}, "machine": {...}}.
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

SNAKEFILE = """\
CODE = [f"src/m{{i}}.py" for i in range({code})]
rule all:
    input: expand("out/b{{i}}.txt", i=range({n}))
rule a:
    input: CODE
    output: "out/a{{i}}.txt"
    shell: "sleep {sleep}; echo {{wildcards.i}} > {{output}}"
rule b:
    input: "out/a{{i}}.txt", CODE
    output: "out/b{{i}}.txt"
    shell: "sleep {sleep}; echo {{wildcards.i}} > {{output}}"
"""


def run(window: str, jobs: int, sleep: float, code: int, cores: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="emoflow-sched-") as d:
        work = Path(d)
        (work / "src").mkdir()
        for i in range(code):
            (work / "src" / f"m{i}.py").write_text(f"# {i}\n")
        (work / "Snakefile").write_text(SNAKEFILE.format(code=code, n=jobs // 2, sleep=sleep))
        cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all"]
        cmd += ["--max-jobs-per-timespan", window]
        t0 = time.time()
        log = open(work / "snakemake.log", "w")
        proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
        threads, status, usage = 0, 0, None
        while usage is None:  # wait4: the exact CPU of Snakemake and its (sleeping) jobs
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                usage = ru
                break
            try:
                threads = max(threads, len(os.listdir(f"/proc/{proc.pid}/task")))
            except OSError:
                pass
            time.sleep(1)
        wall = time.time() - t0
        log.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"snakemake failed with window {window}: {(work / 'snakemake.log').read_text()[-2000:]}")
        done = len(list((work / "out").glob("*.txt")))
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": round(wall, 1), "snakemake_cpu_s": round(cpu, 1), "max_threads": threads, "jobs": done}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", nargs="+", default=["100/1s", "1000/10s"], help="max-jobs-per-timespan values")
    ap.add_argument("--jobs", type=int, default=240)
    ap.add_argument("--sleep", type=float, default=1.5, help="seconds each job sleeps")
    ap.add_argument("--code-files", type=int, default=60, help="inputs every job reads besides its own")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench/out/scheduler.json"))
    args = ap.parse_args(argv)
    import snakemake

    runs = {}
    for w in args.windows:
        runs[w] = run(w, args.jobs, args.sleep, args.code_files, args.cores)
        print(w, runs[w], flush=True)
    doc = {
        "runs": runs,
        "settings": {k: getattr(args, k) for k in ("jobs", "sleep", "code_files", "cores")},
        "snakemake": snakemake.__version__,
        "machine": {"cpus": os.cpu_count(), "cpu": platform.machine(), "load_avg_end": os.getloadavg()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
