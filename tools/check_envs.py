#!/usr/bin/env python3
"""Each conda env (envs/*.yaml) proven as far as a machine without conda allows.

For every env file, in a clean venv (``python3 -m venv`` under a cache folder outside the
repository, removed afterwards):

1. **conda layer, by stand-ins**: the venv's Python must be the env's ``python=3.11``;
   ``pip=X`` is installed at that version; ``ffmpeg`` is the system's ffmpeg/ffprobe (it must
   carry libx264, as conda-forge's GPL build does); ``numpy`` + ``cyvlfeat`` are the pinned
   numpy and cyvlfeat built against the system's libvlfeat (as scripts/setup.sh builds it).
   A conda package with no stand-in here fails.
2. **pip layer, as written**: the env's ``pip:`` section, installed the way conda does it
   (``pip install -U -r``), with ``-c constraints.txt`` as scripts/setup.sh does and
   without the CPU wheel index (unreachable here: torch 2.13.0+cpu comes from local disk);
   then the env's post-deploy script (its ``--no-deps`` installs), run with the venv first
   on PATH, as Snakemake runs it in the env.
3. **pins**: every conda (Python packages) and pip pin is the version installed.
4. **imports**: for every rule on the env (``tools/envcheck.py``: the features rule once per
   extractor), the stage modules and every third-party package their code imports.
5. **one real job** of one rule on the env (``JOBS`` below), run by Snakemake on a copy of
   a demo run's results with the venv's ``python`` first on PATH, so the rule's own
   ``python -m emoflow...`` command runs in the venv.

A failure names the env, the step and the rules concerned; exit 1 if any env failed.

    .venv/bin/python tools/check_envs.py --demo .ci-work            # every env
    .venv/bin/python tools/check_envs.py --demo .ci-work --env face --keep

``--demo``: a folder where the default config's demo has run (``snakemake --directory
DIR``; scripts/test.sh passes its own demo run).  Environment: EMOFLOW_ENVCHECK_DIR (the
venvs' parent folder, default ~/.cache/emoflow-envcheck).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "src")):  # run as a script from a checkout
    if _p not in sys.path:
        sys.path.insert(0, _p)

from tools import envcheck  # noqa: E402

#: env -> (rule, wildcards) of the one real job run in it: the first output (sorted) of
#: that rule in the demo run whose wildcards match (features: ``name`` is a feature of the
#: default config, whose extractor sets the env).  Small jobs that use the env's
#: distinctive packages.
JOBS = {
    "base": ("probe", {}),  # ffprobe on a shard's clips; pandas/pyarrow tables
    "face": ("faces", {}),  # MTCNN (facenet-pytorch, torch), tracking, alignment
    "visual-torch": ("features", {"name": "frame_cnn"}),  # the fitted frame CNN on face crops
    "visual-tf": ("features", {"name": "fer"}),  # fer_scores: fer's Keras model (TensorFlow, h5py)
    "audio": ("features", {"name": "egemaps"}),  # openSMILE, eGeMAPS functionals
    "text": ("features", {"name": "text_minilm"}),  # sentence_embedding: sentence-transformers, torch
    "classify": ("encode", {"encoding": "fv"}),  # Fisher vectors: cyvlfeat's GMM, scikit-learn PCA
    "predict": ("bundle", {}),  # the model bundle of the fitted models
}

TORCH_CPU_INDEX = "download.pytorch.org/whl/cpu"

IMPORT_PROBE = r"""
import importlib, importlib.util, json, sys
spec = json.load(open(sys.argv[1]))
failed = {}
for name in spec["modules"]:
    try:
        importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - report every kind of failure
        failed[name] = f"{type(exc).__name__}: {exc}"
for name, spec_only in spec["packages"].items():
    try:
        if spec_only:
            if importlib.util.find_spec(name) is None:
                failed[name] = f"ModuleNotFoundError: no package {name!r} (find_spec)"
        else:
            importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001
        failed[name] = f"{type(exc).__name__}: {exc}"
json.dump(failed, open(sys.argv[2], "w"))
"""

VERSIONS_PROBE = r"""
import importlib.metadata, json, sys
out = {}
for name in json.load(open(sys.argv[1])):
    try:
        out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        out[name] = None
out["python"] = "{}.{}.{}".format(*sys.version_info[:3])
json.dump(out, open(sys.argv[2], "w"))
"""


#: one real job at a time: jobs share the copy of the demo run (one job's input may be
#: another's output), and each is small next to the installs that run side by side
JOB_LOCK = threading.Lock()


class Failed(Exception):
    """A step of one env failed: ``step`` and what the report says."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


@dataclass
class Result:
    env: str
    rules: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    failure: Failed | None = None
    job: str = ""
    waited: float = 0.0  # for the job lock (another env's job running): not in any step

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def run(cmd, step: str, what: str, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        out = [ln for ln in out if "is ignored: it is neither a file nor a directory" not in ln]
        raise Failed(step, f"{what} failed (exit {proc.returncode}):\n    " + "\n    ".join(out[-25:]))
    return proc


def base_python() -> str:
    """The interpreter a venv is made from (this one's base, when run from a venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


class EnvCheck:
    def __init__(self, name: str, env: envcheck.EnvFile, root: Path, demo: Path | None, out_dir: str, keep: bool):
        self.name, self.env, self.demo, self.out_dir, self.keep = name, env, demo, out_dir, keep
        self.venv = root / name
        self.py = self.venv / "bin" / "python"
        self.jobs = envcheck.env_jobs(name, REPO)
        self.result = Result(name, sorted({j.rule for j in self.jobs}))
        self.pip_env = {**os.environ, "PIP_NO_COMPILE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        self.cleanup: threading.Thread | None = None

    # ---------------------------------------------------------------- steps

    def step(self, label: str, fn):
        start = time.monotonic()
        try:
            fn()
        finally:
            self.result.seconds[label] = time.monotonic() - start - (self.result.waited if label == "job" else 0)

    def pip(self, *args, step: str, what: str):
        return run([self.py, "-m", "pip", "install", "--no-compile", *args], step, what, env=self.pip_env)

    def make_venv(self):
        shutil.rmtree(self.venv, ignore_errors=True)
        self.venv.parent.mkdir(parents=True, exist_ok=True)
        # no ensurepip: conda's pip=X is the conda layer's (below), and a conda env has no setuptools
        run([base_python(), "-m", "venv", "--without-pip", self.venv], "venv", "python3 -m venv")

    def conda_layer(self):
        """Stand-ins for the conda packages (the docstring of this script)."""
        conda = self.env.conda
        have = run(
            [self.py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "conda layer", "python"
        ).stdout.strip()
        for name, version in conda.items():
            key = envcheck.normalize(name)
            if key == "python":
                if ".".join(version.split(".")[:2]) != have:
                    raise Failed("conda layer", f"python={version}: the venv's Python is {have}")
            elif key == "pip":  # installed by this interpreter's pip into the venv
                cmd = [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    self.py,
                    "install",
                    "--no-compile",
                    "-q",
                    f"pip=={version}",
                ]
                run(cmd, "conda layer", f"pip=={version} (conda's pip={version})", env=self.pip_env)
            elif key == "ffmpeg":
                for binary in ("ffmpeg", "ffprobe"):
                    if shutil.which(binary) is None:
                        raise Failed(
                            "conda layer", f"ffmpeg={version}: no system {binary} on PATH to stand in for conda-forge's"
                        )
                encoders = run(["ffmpeg", "-hide_banner", "-encoders"], "conda layer", "ffmpeg -encoders").stdout
                if "libx264" not in encoders:
                    raise Failed("conda layer", "the system ffmpeg has no libx264 (conda-forge's GPL build has)")
            elif key in ("numpy", "cyvlfeat"):
                continue  # below, together
            else:
                raise Failed("conda layer", f"conda package {name}={version}: no stand-in in tools/check_envs.py")
        if "cyvlfeat" in conda:
            pins = envcheck.ci_pins(REPO)
            cython = f"Cython=={pins['cython']}" if "cython" in pins else "Cython"
            numpy = f"numpy=={conda['numpy']}" if "numpy" in conda else "numpy"
            # conda-forge's cyvlfeat is built against its VLFeat; here against the system's
            # libvlfeat, as scripts/setup.sh builds it (a wheel the pip cache keeps)
            self.pip(numpy, cython, "setuptools", step="conda layer", what=f"{numpy} + build tools for cyvlfeat")
            self.pip(
                "--no-build-isolation",
                "--no-deps",
                f"cyvlfeat=={conda['cyvlfeat']}",
                step="conda layer",
                what="cyvlfeat against the system libvlfeat",
            )
            # a conda env holds neither setuptools nor Cython unless its pip layer asks
            run(
                [self.py, "-m", "pip", "uninstall", "-y", "-q", "setuptools", "Cython"],
                "conda layer",
                "pip uninstall",
                env=self.pip_env,
            )

    def pip_layer(self):
        lines = [o for o in self.env.pip_options if TORCH_CPU_INDEX not in o]
        lines += [f"{n}=={v}" for n, v in self.env.pip.items()]
        if not self.env.pip:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".requirements.txt", delete=False) as fh:
            fh.write("\n".join(lines) + "\n")
        try:
            self.pip(
                "-U",
                "-c",
                REPO / "constraints.txt",
                "-r",
                fh.name,
                step="pip layer",
                what=f"pip install -r (the pip: section of envs/{self.name}.yaml)",
            )
        finally:
            os.unlink(fh.name)

    def post_deploy(self):
        script = REPO / "envs" / f"{self.name}.post-deploy.sh"
        if not script.is_file():
            return
        env = {
            **self.pip_env,
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(self.venv),
        }
        run(["bash", script], "post-deploy", f"envs/{script.name}", env=env)

    def pins(self):
        wanted = {
            **{n: v for n, v in self.env.conda.items() if n not in envcheck.NOT_IN_VENV},
            **self.env.pip,
            **self.env.post_deploy,
        }
        wanted = {envcheck.PYPI_NAME.get(envcheck.normalize(n), n): v for n, v in wanted.items()}
        have = self.probe(VERSIONS_PROBE, sorted(wanted))
        bad = []
        for name, version in sorted(wanted.items()):
            if name == "python":
                if not have["python"].startswith(version + ".") and have["python"] != version:
                    bad.append(f"python {version}: the venv has {have['python']}")
            elif have.get(name) is None:
                bad.append(f"{name}=={version}: not installed")
            elif have[name].split("+")[0] != version:
                bad.append(f"{name}=={version}: {have[name]} installed")
        if bad:
            raise Failed("pins", "; ".join(bad))

    def imports(self):
        envs = envcheck.load_envs(REPO / "envs")
        nodeps = envcheck.nodeps_imports(envs)
        modules: dict[str, list[str]] = {}  # module or package -> the rules that need it
        packages: dict[str, bool] = {}
        sources: dict[str, str] = {}
        for job in self.jobs:
            for module in job.modules:
                modules.setdefault(module, []).append(job.rule)
            needs, problems = envcheck.job_needs(job, nodeps, REPO / "src")
            if problems:
                raise Failed("imports", f"rule {job.rule} ({job.where}): " + "; ".join(problems))
            for need in needs:
                if need.package not in modules:
                    modules.setdefault(need.package, [])
                if job.rule not in modules[need.package]:
                    modules[need.package].append(job.rule)
                # a --no-deps package (facenet-pytorch, fer) is only looked up: emoflow
                # imports it its own way (e.g. with the torchvision stand-in), and what it
                # imports in turn is among the needs already
                spec_only = need.spec_only or need.package in nodeps
                packages[need.package] = packages.get(need.package, True) and spec_only
                sources.setdefault(need.package, f"{need.via} ({need.source})")
        spec = {"modules": sorted({m for j in self.jobs for m in j.modules}), "packages": packages}
        failed = self.probe(IMPORT_PROBE, spec)
        if failed:
            where = {j.rule: j.where for j in self.jobs}
            lines = []
            for name, error in sorted(failed.items()):
                rules = ", ".join(f"{r} ({where[r]})" for r in modules.get(name, []))
                via = f", imported by {sources[name]}" if name in sources else ""
                lines.append(f"import {name}: {error}{via}\n      needed by rule {rules}")
            raise Failed("imports", "\n    ".join(lines))

    def probe(self, code: str, payload):
        with tempfile.TemporaryDirectory(prefix="emoflow-envcheck-") as tmp:
            src, dst = Path(tmp, "in.json"), Path(tmp, "out.json")
            src.write_text(json.dumps(payload))
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
            env.update(PYTHONPATH=str(REPO / "src"), TF_CPP_MIN_LOG_LEVEL="2", HF_HUB_OFFLINE="1")
            run([self.py, "-c", code, src, dst], "imports", "the probe", env=env, cwd=tmp)
            return json.loads(dst.read_text())

    def real_job(self):
        rule, wildcards = JOBS[self.name]
        target = job_target(self.demo, self.out_dir, rule, wildcards)
        rel = target.relative_to(self.demo)
        self.result.job = f"{rule} -> {rel}"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(self.venv))
        start = time.monotonic()
        with JOB_LOCK:
            self.result.waited = time.monotonic() - start
            self._real_job(rule, target, rel, env)

    def _real_job(self, rule, target, rel, env):
        start = time.time()
        # Proof that the job's python is the venv's: a .pth line (run at every start of the
        # venv's interpreter) appends sys.prefix to the file EMOFLOW_ENVCHECK_MARK names.
        purelib = run(
            [self.py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], "job", "sysconfig"
        ).stdout.strip()
        Path(purelib, "_emoflow_envcheck.pth").write_text(
            'import os, sys; p = os.environ.get("EMOFLOW_ENVCHECK_MARK"); p and open(p, "a").write(sys.prefix + "\\n")\n'
        )
        mark = Path(tempfile.mkstemp(prefix="emoflow-envcheck-mark-")[1])
        env = {**env, "EMOFLOW_ENVCHECK_MARK": str(mark)}
        # only this job: --force reruns the target, --allowed-rules refuses any other rule,
        # --rerun-triggers input ignores mtimes (the copy's inputs are the demo run's own).
        # Without --sdm conda the rules' shell prefix puts the directory of the interpreter
        # running Snakemake first on PATH (rules/common.smk): Snakemake runs here with
        # sys.executable set to the venv's python, so that `python` in the job is the venv's,
        # as the env's own python is under --sdm conda.
        launch = "import runpy, sys; sys.executable = sys.argv[1]; sys.argv = ['snakemake', *sys.argv[2:]]; runpy.run_module('snakemake', run_name='__main__')"
        cmd = [
            sys.executable,
            "-c",
            launch,
            self.py,
            rel,
            "-s",
            REPO / "Snakefile",
            "--directory",
            self.demo,
            "--cores",
            "1",
            "--force",
            "--allowed-rules",
            rule,
            "--rerun-triggers",
            "input",
            "--nolock",
        ]
        try:
            run(cmd, "job", f"rule {rule} ({rel}) through Snakemake, in the venv", env=env, cwd=self.demo)
            prefixes = set(mark.read_text().split())
        except Failed as exc:
            logs = sorted(
                p for p in (self.demo / self.out_dir / "logs").rglob("*") if p.is_file() and p.stat().st_mtime >= start
            )
            tails = [
                f"{p.relative_to(self.demo)}:\n      "
                + "\n      ".join(p.read_text(errors="replace").strip().splitlines()[-15:])
                for p in logs
            ]
            raise Failed("job", str(exc) + ("\n    job log " + "\n    ".join(tails) if tails else "")) from None
        finally:
            mark.unlink(missing_ok=True)
        if prefixes != {str(self.venv)}:
            raise Failed(
                "job",
                f"rule {rule} ran, but not (only) in the venv's python: interpreters {sorted(prefixes) or 'none'}",
            )
        if not target.exists() or target.stat().st_mtime < start:
            raise Failed("job", f"rule {rule} ran but did not rewrite {rel}")

    def check(self) -> Result:
        steps = [
            ("venv", self.make_venv),
            ("conda layer", self.conda_layer),
            ("pip layer", self.pip_layer),
            ("post-deploy", self.post_deploy),
            ("pins", self.pins),
            ("imports", self.imports),
        ]
        if self.demo is not None:
            steps.append(("job", self.real_job))
        try:
            for label, fn in steps:
                self.step(label, fn)
        except Failed as exc:
            self.result.failure = exc
        finally:
            if not self.keep and self.venv.exists():  # removed in the background
                trash = self.venv.with_name(f".removing-{self.name}-{os.getpid()}")
                self.venv.rename(trash)
                self.cleanup = threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True})
                self.cleanup.start()
        return self.result


def output_pattern(directive: str, out_dir: str) -> str | None:
    """The first output of a rule's ``output:`` text as a path pattern with ``{wildcard}``s:
    an f-string on ``OUT`` or a :class:`emoflow.workflow.layout.Layout` call on ``L``."""
    import ast

    from emoflow.workflow.layout import Layout

    try:
        call = ast.parse(f"_({directive.strip()})", mode="eval").body
    except SyntaxError:
        return None
    first = call.args[0] if call.args else (call.keywords[0].value if call.keywords else None)
    if first is None:
        return None
    names = {"OUT": out_dir, "L": Layout(out_dir), "directory": lambda p: p}
    try:
        return str(eval(compile(ast.Expression(first), "<output>", "eval"), {"__builtins__": {}}, names))
    except Exception:  # noqa: BLE001 - anything else in the directive: not a pattern this tool reads
        return None


def job_target(demo: Path, out_dir: str, rule: str, wildcards: dict[str, str]) -> Path:
    """The first output (sorted) of ``rule`` in the demo run whose wildcards match."""
    definitions = {name: d for name, _, d in envcheck.rule_definitions(REPO)}
    if rule not in definitions:
        raise Failed("job", f"no rule {rule!r} in the workflow (tools/check_envs.py JOBS)")
    pattern = output_pattern(definitions[rule].get("output", ""), out_dir)
    if pattern is None:
        raise Failed("job", f"rule {rule}: cannot read its output pattern")
    unknown = set(wildcards) - set(re.findall(r"\{(\w+)\}", pattern))
    if unknown:
        raise Failed("job", f"rule {rule} has no wildcard {sorted(unknown)} (tools/check_envs.py JOBS)")
    pattern = re.sub(r"\{(\w+)\}", lambda w: wildcards.get(w.group(1), "*"), pattern)
    found = sorted(demo.glob(pattern))
    if not found:
        raise Failed("job", f"rule {rule}: no output {pattern} in {demo} (has the demo run finished?)")
    return found[0]


def job_env(rule: str, wildcards: dict[str, str]) -> str | None:
    """The env of ``rule``'s jobs (features: of the default config's feature ``name``)."""
    if rule == "features":
        import yaml

        feature = (yaml.safe_load((REPO / "config.yaml").read_text()).get("features") or {}).get(wildcards.get("name"))
        if not feature:
            return None
        rule = f"features[{feature['extractor']}]"
    return next((job.env for job in envcheck.jobs(REPO)[0] if job.rule == rule), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--demo",
        help="folder where the default config's demo ran (snakemake --directory); its results are copied, never changed",
    )
    ap.add_argument("--env", action="append", help="check only this env (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the venvs (default: removed after each env)")
    ap.add_argument("--no-job", action="store_true", help="skip the real jobs (no demo run needed)")
    ap.add_argument("--jobs", type=int, default=2, help="envs checked side by side (default 2)")
    args = ap.parse_args(argv)

    import yaml

    envs = envcheck.load_envs(REPO / "envs")
    names = args.env or sorted(envs)
    unknown = [n for n in names if n not in envs]
    if unknown:
        print(f"no env file envs/<name>.yaml for: {', '.join(unknown)}")
        return 1
    problems = [p for n in names for p in envs[n].problems]
    for name in names:
        if name not in JOBS and not args.no_job:
            problems.append(f"env {name}: no real job chosen for it (tools/check_envs.py JOBS)")
        elif name in JOBS and job_env(*JOBS[name]) != name:
            problems.append(
                f"env {name}: JOBS runs rule {JOBS[name][0]} {JOBS[name][1]}, whose env is {job_env(*JOBS[name])}"
            )
    if problems:
        print("\n".join(problems))
        return 1
    root = Path(
        os.environ.get("EMOFLOW_ENVCHECK_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emoflow-envcheck"
    )
    if root.resolve().is_relative_to(REPO):
        print(f"EMOFLOW_ENVCHECK_DIR={root}: put the venvs outside the repository")
        return 1

    demo_copy = None
    tmp = None
    if not args.no_job:
        if not args.demo:
            print("--demo DIR: a folder where the demo ran (scripts/test.sh passes its own); or --no-job")
            return 1
        out_dir = yaml.safe_load((REPO / "config.yaml").read_text())["outdir"]
        if not (Path(args.demo) / out_dir).is_dir():
            print(f"--demo {args.demo}: no {out_dir}/ there (run the demo first)")
            return 1
        tmp = Path(tempfile.mkdtemp(prefix="emoflow-envcheck-demo-"))
        start = time.monotonic()
        demo_copy = tmp / "demo"
        shutil.copytree(
            args.demo, demo_copy, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete", "shadow")
        )
        print(f"demo run copied ({time.monotonic() - start:.0f} s): {args.demo} -> {demo_copy}", flush=True)
    else:
        out_dir = ""

    # the biggest pip layers first, so that the small ones fill in beside them
    names.sort(key=lambda n: -(len(envs[n].pip) + 10 * len(envs[n].post_deploy)))
    print_lock = threading.Lock()
    checks = []

    def one(name: str) -> Result:
        check = EnvCheck(name, envs[name], root, demo_copy, out_dir, args.keep)
        checks.append(check)
        result = check.check()
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
        with print_lock:
            print(f"== env {name} (envs/{name}.yaml): {result.total:.0f} s ({steps})")
            if result.failure:
                print(
                    f"FAILED env {name} (envs/{name}.yaml), step '{result.failure.step}'; rules on this env: {', '.join(result.rules)}"
                )
                print(f"    {result.failure}", flush=True)
            else:
                print(f"   ok: pins, the imports of {len(result.rules)} rules, job {result.job}", flush=True)
        return result

    wall = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(one, names))
        for check in checks:
            if check.cleanup is not None:
                check.cleanup.join()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    wall = time.monotonic() - wall
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)

    print("\nenv            result   seconds  (venv, conda stand-ins, pip layer, post-deploy, pins, imports, job)")
    for r in sorted(results, key=lambda r: r.env):
        parts = " + ".join(f"{v:.0f}" for v in r.seconds.values())
        print(f"{r.env:<14} {'FAILED' if r.failure else 'ok':<8} {r.total:>7.0f}  ({parts}) {r.job}")
    print(
        f"wall time {wall:.0f} s for {len(results)} envs, {max(1, args.jobs)} side by side; CPU time of the "
        f"processes it ran {usage.ru_utime + usage.ru_stime:.0f} s (user {usage.ru_utime:.0f} s, system {usage.ru_stime:.0f} s)"
    )
    failed = [r for r in results if r.failure]
    for r in failed:
        print(f"FAILED: env {r.env} (envs/{r.env}.yaml) at '{r.failure.step}'; rules: {', '.join(r.rules)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
