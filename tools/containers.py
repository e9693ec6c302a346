#!/usr/bin/env python3
"""Write the Dockerfiles of containers/ from envs/ (and check that they are up to date).

    .venv/bin/python tools/containers.py           # rewrite every Dockerfile
    .venv/bin/python tools/containers.py --check   # exit 1 and show a diff if one is stale

Per env ``envs/<name>.yaml`` two images, both built from that same file:

* ``<name>.cpu.Dockerfile``: ``mambaorg/micromamba`` with the env installed as it is (what
  ``snakemake --sdm conda`` creates), then the env's post-deploy script.
* ``<name>.cuda.Dockerfile``: an ``nvidia/cuda`` base with micromamba added, and the same
  env with its CPU-only wheels swapped for GPU ones at the same versions (``sed`` on a
  copy of the env file, in the image): torch from PyTorch's CUDA 13.0 wheel index instead
  of the CPU one; ``tensorflow[and-cuda]`` instead of ``tensorflow-cpu``.  The CUDA
  version of the base follows the wheels (torch 2.13 wheels: CUDA 13.0; TensorFlow 2.21's
  ``and-cuda`` extra: CUDA 12).  The wheels bring their own CUDA runtime and cuDNN, so the
  ``base`` flavour of the image suffices; the host driver comes in at run time
  (``docker run --gpus all`` / ``apptainer --nv``).

And ``containerize.Dockerfile``: what ``snakemake --containerize`` prints for the default
config (every env, each at ``/conda-envs/<hash>`` as Snakemake expects it with
``containerized:`` in the Snakefile), with four changes, all made here: its base image
``condaforge/miniforge3:latest`` pinned to a release; the system packages no conda-forge
package supplies (``SYSTEM_PACKAGES``: espeak-ng) installed with apt; Snakemake's one chained ``RUN conda
env create ... && conda env create ...`` split into one step per env, each naming its env
file when it fails (one env that does not solve no longer hides which, nor stops the
others' layers from being cached); and each env's post-deploy script run in it right
after (``--containerize`` does not run them).  Snakemake asks conda only for the
platform (to look for pin files); where no conda is installed, a stand-in answers
``linux-64``, the platform of the image.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "src")):  # run as a script from a checkout
    if _p not in sys.path:
        sys.path.insert(0, _p)
HERE = REPO / "containers"  # what this writes

from tools.envcheck import load_env  # noqa: E402

MICROMAMBA = "mambaorg/micromamba:2.8.1"
MINIFORGE = "condaforge/miniforge3:25.3.1-0"
CUDA_BASE = {  # GPU framework -> base image (CUDA version of its wheels)
    "torch": "nvidia/cuda:13.0.0-base-ubuntu22.04",
    "tensorflow": "nvidia/cuda:12.9.1-base-ubuntu22.04",
    None: "nvidia/cuda:12.9.1-base-ubuntu22.04",  # no GPU framework: the lower driver requirement
}
TORCH_CPU_INDEX = "download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX = "download.pytorch.org/whl/cu130"
SNAKEMAKE_BASE = "condaforge/miniforge3:latest"
#: env -> system packages its rules need that no conda-forge package supplies (apt, in the
#: image): espeak-ng, the demo's speech (rule demo_data, emoflow.demo.speech).
SYSTEM_PACKAGES = {"base": ("espeak-ng",)}
CONTAINERIZE_COPY = ("Snakefile", "config.yaml", "rules", "envs", "src")

HEADER = """\
# emoflow env "{name}" (envs/{name}.yaml), {variant} image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/{name}.{variant}.Dockerfile -t emoflow-{name}:{variant} .
"""

INSTALL = """\
RUN micromamba install --yes --name base --file /tmp/env.yaml \\
    && micromamba clean --all --yes
"""

POST_DEPLOY = """\
# What Snakemake runs after creating the env: packages installed without their dependencies.
ARG MAMBA_DOCKERFILE_ACTIVATE=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/{name}.post-deploy.sh /tmp/post-deploy.sh
RUN bash /tmp/post-deploy.sh
"""

ADD_MICROMAMBA = """\
FROM {micromamba} AS micromamba
FROM {base}
# micromamba added to the CUDA image as micromamba-docker documents it (same user, same
# activation scripts as the CPU image).
USER root
ARG MAMBA_USER=mambauser
ARG MAMBA_USER_ID=57439
ARG MAMBA_USER_GID=57439
ENV MAMBA_USER=$MAMBA_USER MAMBA_ROOT_PREFIX="/opt/conda" MAMBA_EXE="/bin/micromamba"
COPY --from=micromamba "$MAMBA_EXE" "$MAMBA_EXE"
COPY --from=micromamba /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=micromamba /usr/local/bin/_activate_current_env.sh /usr/local/bin/_activate_current_env.sh
COPY --from=micromamba /usr/local/bin/_dockerfile_shell.sh /usr/local/bin/_dockerfile_shell.sh
COPY --from=micromamba /usr/local/bin/_entrypoint.sh /usr/local/bin/_entrypoint.sh
COPY --from=micromamba /usr/local/bin/_dockerfile_initialize_user_accounts.sh /usr/local/bin/_dockerfile_initialize_user_accounts.sh
COPY --from=micromamba /usr/local/bin/_dockerfile_setup_root_prefix.sh /usr/local/bin/_dockerfile_setup_root_prefix.sh
RUN /usr/local/bin/_dockerfile_initialize_user_accounts.sh \\
    && /usr/local/bin/_dockerfile_setup_root_prefix.sh
USER $MAMBA_USER
SHELL ["/usr/local/bin/_dockerfile_shell.sh"]
ENTRYPOINT ["/usr/local/bin/_entrypoint.sh"]
CMD ["/bin/bash"]
"""


def gpu_swaps(env_path: Path) -> tuple[str | None, list[tuple[str, str, str]]]:
    """(GPU framework of the env, [(sed expression, CPU line, GPU line)]) for its CUDA image."""
    env = load_env(env_path)
    if env.problems:
        raise SystemExit("\n".join(env.problems))
    text = env_path.read_text(encoding="utf-8")
    frameworks, swaps = [], []
    if "torch" in env.pip or "pytorch" in env.conda:
        frameworks.append("torch")
        if TORCH_CPU_INDEX not in text:
            raise SystemExit(
                f"{env_path}: torch without the CPU wheel index ({TORCH_CPU_INDEX}): PyPI's torch is a CUDA build"
            )
        swaps.append((f"s#{TORCH_CPU_INDEX}#{TORCH_CUDA_INDEX}#", TORCH_CPU_INDEX, TORCH_CUDA_INDEX))
    if "tensorflow-cpu" in env.pip:
        frameworks.append("tensorflow")
        swaps.append(("s#- tensorflow-cpu==#- tensorflow[and-cuda]==#", "tensorflow-cpu==", "tensorflow[and-cuda]=="))
    # torch and TensorFlow together (the predict env): the newer CUDA base (its driver runs both)
    return (frameworks[0] if frameworks else None), swaps


def apt_install(packages) -> str:
    return f"RUN apt-get update && apt-get install -y --no-install-recommends {' '.join(packages)} \\\n    && rm -rf /var/lib/apt/lists/*\n"


def system_packages(name: str) -> str:
    """As root, then back to micromamba's user: packages no conda-forge package supplies."""
    if name not in SYSTEM_PACKAGES:
        return ""
    return (
        "# System packages no conda-forge package supplies (envs/README.md): the demo's speech.\n"
        "USER root\n" + apt_install(SYSTEM_PACKAGES[name]) + "USER $MAMBA_USER\n"
    )


def env_dockerfile(name: str, variant: str) -> str:
    env_path = REPO / "envs" / f"{name}.yaml"
    has_deploy = (REPO / "envs" / f"{name}.post-deploy.sh").is_file()
    out = HEADER.format(name=name, variant=variant)
    if variant == "cpu":
        out += f"FROM {MICROMAMBA}\n" + system_packages(name) + "ENV PIP_NO_CACHE_DIR=1\n"
        out += f"COPY --chown=$MAMBA_USER:$MAMBA_USER envs/{name}.yaml /tmp/env.yaml\n" + INSTALL
    else:
        framework, swaps = gpu_swaps(env_path)
        out += ADD_MICROMAMBA.format(micromamba=MICROMAMBA, base=CUDA_BASE[framework]) + system_packages(name)
        out += "ENV PIP_NO_CACHE_DIR=1\n"
        if not swaps:
            out += "# No GPU framework in this env: the same env as the CPU image, on the CUDA base.\n"
            out += f"COPY --chown=$MAMBA_USER:$MAMBA_USER envs/{name}.yaml /tmp/env.yaml\n" + INSTALL
        else:
            out += "# The same pins with the GPU builds swapped in (the build fails if a swap finds nothing):\n"
            out += "".join(f"#   {cpu}  ->  {gpu}\n" for _, cpu, gpu in swaps)
            out += f"COPY --chown=$MAMBA_USER:$MAMBA_USER envs/{name}.yaml /tmp/env.cpu.yaml\n"
            seds = " ".join(f"-e '{expr}'" for expr, _, _ in swaps)
            checks = "".join(f" \\\n    && grep -qF '{gpu}' /tmp/env.yaml" for _, _, gpu in swaps)
            out += f"RUN sed {seds} /tmp/env.cpu.yaml > /tmp/env.yaml{checks} \\\n    && " + INSTALL.removeprefix(
                "RUN "
            )
    if has_deploy:
        out += POST_DEPLOY.format(name=name)
    return out


# --------------------------------------------------------------------------- --containerize


def _conda_stand_in(bindir: Path):
    """A `conda` answering the three questions Snakemake asks before --containerize."""
    script = bindir / "conda"
    script.write_text(
        "#!/bin/sh\n"
        "# stand-in for conda (tools/containers.py): Snakemake asks it for the platform only\n"
        'case "$*" in\n'
        '  "info --json") echo \'{"platform": "linux-64", "conda_prefix": "/opt/conda"}\' ;;\n'
        '  "--version") echo "conda 25.3.1" ;;\n'
        '  "config --get channel_priority --json") echo \'{"get": {"channel_priority": "strict"}}\' ;;\n'
        '  *) echo "conda stand-in: unsupported: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def snakemake_containerize(repo: Path = REPO) -> str:
    """What `snakemake --containerize` prints for the workflow (default config), run on a
    copy of the workflow files so that nothing is written into the checkout."""
    with tempfile.TemporaryDirectory(prefix="emoflow-containerize-") as tmp:
        work = Path(tmp) / "wf"
        for name in CONTAINERIZE_COPY:
            src = repo / name
            if src.is_dir():
                shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                work.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, work / name)
        bindir = Path(tmp) / "bin"
        bindir.mkdir()
        _conda_stand_in(bindir)
        env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                "Snakefile",
                "--directory",
                ".",
                "--cores",
                "1",
                "--containerize",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"snakemake --containerize failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc.stdout


def containerize_dockerfile(printed: str | None = None) -> str:
    printed = snakemake_containerize() if printed is None else printed
    lines = printed.rstrip("\n").split("\n")
    if not lines or lines[0] != f"FROM {SNAKEMAKE_BASE}":
        raise RuntimeError(
            f"snakemake --containerize no longer starts with 'FROM {SNAKEMAKE_BASE}': update tools/containers.py"
        )
    prefixes = dict(re.findall(r"^#   source: (\S+)\n#   prefix: (\S+)$", printed, flags=re.M))
    out = [
        "# The image `snakemake --containerize` describes (default config: every env), for",
        "# `containerized:` in the Snakefile. Written by tools/containers.py: do not edit.",
        f"# Changes to what Snakemake prints: the base pinned ({SNAKEMAKE_BASE} ->",
        f"# {MINIFORGE}); the system packages no conda-forge package supplies installed;",
        "# one build step per env instead of one chained RUN for all (a failing env names its",
        "# file); each env's post-deploy script run in it (--containerize omits them).",
        f"FROM {MINIFORGE}",
        "# System packages no conda-forge package supplies (envs/README.md): the demo's speech.",
        apt_install(sorted({p for ps in SYSTEM_PACKAGES.values() for p in ps})).rstrip("\n"),
        *split_env_creates(lines[1:], {prefix: source for source, prefix in prefixes.items()}),
    ]
    return "\n".join(out) + "\n"


CREATE = re.compile(r"^conda env create --prefix (\S+) --file (\S+)$")


def split_env_creates(lines: list[str], sources: dict[str, str]) -> list[str]:
    """Snakemake's chained ``RUN conda env create ... && \\ ... && conda clean --all -y``
    as one ``RUN`` per env (plus its post-deploy script), each failing with its env's name."""
    start = next((i for i, ln in enumerate(lines) if ln.startswith("RUN conda env create ")), None)
    if start is None:
        raise RuntimeError("snakemake --containerize printed no 'RUN conda env create': update tools/containers.py")
    end = start
    while lines[end].endswith("\\"):
        end += 1
    commands = [c.strip().removesuffix("\\").strip().removesuffix("&&").strip() for c in lines[start : end + 1]]
    commands[0] = commands[0].removeprefix("RUN ")
    if commands[-1] != "conda clean --all -y" or not all(CREATE.match(c) for c in commands[:-1]):
        raise RuntimeError(
            f"snakemake --containerize's env step changed: update tools/containers.py\n{lines[start : end + 1]}"
        )
    out = ["# One step per env (Snakemake chains them in one RUN): a failing env names its file."]
    for command in commands[:-1]:
        prefix, file = CREATE.match(command).groups()
        source = sources[prefix]
        message = f"emoflow: conda could not create the env of {source} (prefix {prefix}); envs/README.md"
        out += [
            f"# {source}",
            f"RUN {command} \\",
            f"    || {{ echo '{message}' >&2; exit 1; }}; \\",
            "    conda clean --all -y",
        ]
        script = source.removesuffix(".yaml") + ".post-deploy.sh"
        if (REPO / script).is_file():  # as Snakemake's --sdm conda runs it after creating the env
            out += [
                f"COPY {script} {prefix}/post-deploy.sh",
                f"RUN conda run --prefix {prefix} bash {prefix}/post-deploy.sh \\",
                f"    || {{ echo 'emoflow: the post-deploy script of {source} failed in its env' >&2; exit 1; }}",
            ]
    return [*lines[:start], *out, *lines[end + 1 :]]


# --------------------------------------------------------------------------- all files


def env_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in (REPO / "envs").glob("*.yaml"))


def expected(with_containerize: bool = True) -> dict[Path, str]:
    files = {HERE / f"{n}.{v}.Dockerfile": env_dockerfile(n, v) for n in env_names() for v in ("cpu", "cuda")}
    if with_containerize:
        files[HERE / "containerize.Dockerfile"] = containerize_dockerfile()
    return files


def stale(files: dict[Path, str]) -> list[str]:
    """Diffs of files whose content differs from what they should be (missing: all of it)."""
    out = []
    for path, text in sorted(files.items()):
        have = path.read_text(encoding="utf-8") if path.is_file() else ""
        if have != text:
            rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            out.append(
                "".join(
                    difflib.unified_diff(
                        have.splitlines(True), text.splitlines(True), f"{rel} (committed)", f"{rel} (expected)"
                    )
                )
            )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if a file is stale")
    ap.add_argument(
        "--no-containerize", action="store_true", help="skip containerize.Dockerfile (needs no snakemake run)"
    )
    args = ap.parse_args(argv)
    files = expected(with_containerize=not args.no_containerize)
    if args.check:
        diffs = stale(files)
        for d in diffs:
            print(d)
        known = set(files) | ({HERE / "containerize.Dockerfile"} if args.no_containerize else set())
        extra = [p for p in HERE.glob("*.Dockerfile") if p not in known]
        for p in extra:
            print(f"{p.relative_to(REPO)}: no env file envs/{p.name.split('.')[0]}.yaml generates it")
        print(
            f"{len(diffs) + len(extra)} stale file(s) in containers/ (fix: python tools/containers.py)", file=sys.stderr
        )
        return 1 if diffs or extra else 0
    for path, text in files.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
