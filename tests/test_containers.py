"""containers/, checked statically (no Docker engine here): every Dockerfile parses, pins its
base images (no `latest`), copies files that exist; every env has a CPU and a CUDA image
built from its own envs/<name>.yaml, the CUDA one with GPU builds of the same versions; and
every Dockerfile is what tools/containers.py writes now, containerize.Dockerfile
included (what `snakemake --containerize` prints for the current envs and rules)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tools import envcheck

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
ENV_NAMES = sorted(p.stem for p in (REPO / "envs").glob("*.yaml"))
DOCKERFILES = sorted(CONTAINERS.glob("*.Dockerfile"))
INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def instructions(path: Path) -> list[tuple[str, str, int]]:
    """(INSTRUCTION, arguments, line) of a Dockerfile: comments dropped, `\\` continuations joined."""
    out, pending, start = [], "", 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        start = start or n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        word, _, args = text.partition(" ")
        assert word.upper() == word and word in INSTRUCTIONS, f"{path.name}:{start}: unknown instruction {word!r}"
        out.append((word, args.strip(), start))
        start = 0
    assert not pending, f"{path.name}: ends inside a continued line"
    return out


def load_generate():
    from tools import containers

    return containers


def test_every_env_has_a_cpu_and_a_cuda_image_and_nothing_else():
    names = {p.name for p in DOCKERFILES}
    expected = {f"{n}.{v}.Dockerfile" for n in ENV_NAMES for v in ("cpu", "cuda")} | {"containerize.Dockerfile"}
    assert names == expected


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_parses_pins_its_bases_and_copies_existing_files(path):
    steps = instructions(path)
    assert steps[0][0] in ("FROM", "ARG")
    stages = set()
    for word, args, line in steps:
        if word == "FROM":
            parts = args.split()
            image = parts[0]
            assert "$" not in image, f"{path.name}:{line}: base image from a variable"
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{path.name}:{line}: {image} has no tag"
            assert tag != "latest" and re.match(r"^\d+(\.\d+)+", tag), f"{path.name}:{line}: {image}: pin a release tag"
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
        if word == "COPY":
            words = shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            sources = [w for w in words if not w.startswith("--")][:-1]
            if any(f.startswith("--from=") for f in flags):
                assert {f.split("=", 1)[1] for f in flags if f.startswith("--from=")} <= stages
                continue
            for src in sources:
                assert (REPO / src).is_file(), f"{path.name}:{line}: COPY {src}: no such file in the repository"


@pytest.mark.parametrize("name", ENV_NAMES)
def test_both_images_of_an_env_install_its_own_env_file(name):
    deploy = (REPO / "envs" / f"{name}.post-deploy.sh").is_file()
    for variant in ("cpu", "cuda"):
        steps = instructions(CONTAINERS / f"{name}.{variant}.Dockerfile")
        copies = [shlex.split(a) for w, a, _ in steps if w == "COPY" and "--from=" not in a]
        sources = {s for c in copies for s in c[:-1] if not s.startswith("--")}
        assert sources == {f"envs/{name}.yaml"} | ({f"envs/{name}.post-deploy.sh"} if deploy else set())
        runs = " ".join(a for w, a, _ in steps if w == "RUN")
        assert "micromamba install --yes --name base --file /tmp/env.yaml" in runs
        assert ("bash /tmp/post-deploy.sh" in runs) == deploy
        bases = [a.split()[0] for w, a, _ in steps if w == "FROM"]
        if variant == "cpu":
            assert len(bases) == 1 and bases[0].startswith("mambaorg/micromamba:")
        else:
            assert bases[0].startswith("mambaorg/micromamba:") and bases[-1].startswith("nvidia/cuda:")


@pytest.mark.parametrize("name", ENV_NAMES)
def test_cuda_image_installs_gpu_builds_of_the_same_versions(name, tmp_path):
    """Run the CUDA image's own sed on the env file: the result still pins everything, has
    the same versions, no CPU-only build left, and a base image whose CUDA major matches
    the wheels (torch 2.13: CUDA 13; TensorFlow's and-cuda extra: CUDA 12)."""
    cpu_path = REPO / "envs" / f"{name}.yaml"
    cpu = envcheck.load_env(cpu_path)
    steps = instructions(CONTAINERS / f"{name}.cuda.Dockerfile")
    base = [a.split()[0] for w, a, _ in steps if w == "FROM"][-1]
    cuda_major = int(re.match(r"nvidia/cuda:(\d+)\.", base).group(1))
    sed_runs = [a for w, a, _ in steps if w == "RUN" and a.startswith("sed ")]
    has_torch, has_tf = "torch" in cpu.pip, "tensorflow-cpu" in cpu.pip
    if not (has_torch or has_tf):
        assert sed_runs == [] and cuda_major == 12  # nothing to swap: the CPU env on a CUDA base
        return
    assert len(sed_runs) == 1
    sed_args = shlex.split(sed_runs[0].split(">", 1)[0])[1:-1]  # the -e expressions
    result = subprocess.run(["sed", *sed_args, str(cpu_path)], capture_output=True, text=True, check=True).stdout
    gpu_path = tmp_path / f"{name}.yaml"
    gpu_path.write_text(result)
    gpu = envcheck.load_env(gpu_path)
    assert [p for p in gpu.problems if "whl/cpu" not in p] == []  # (a CPU env file needs the CPU index)
    assert gpu.conda == cpu.conda
    expected_pip = dict(cpu.pip)
    if has_tf:
        assert "tensorflow-cpu" not in gpu.pip and gpu.pip["tensorflow"] == expected_pip.pop("tensorflow-cpu")
        assert "tensorflow[and-cuda]==" in result
        expected_pip["tensorflow"] = gpu.pip["tensorflow"]
    if has_torch:
        assert "whl/cpu" not in result
        index = re.search(r"download\.pytorch\.org/whl/cu(\d+)", result)
        assert index and index.group(1).startswith(str(cuda_major))
    elif has_tf:
        assert cuda_major == 12
    assert gpu.pip == expected_pip
    changed = [(a, b) for a, b in zip(cpu_path.read_text().splitlines(), result.splitlines()) if a != b]
    assert len(changed) == has_torch + has_tf  # only the swapped lines differ


def test_containerized_image_is_the_one_documented():
    snakefile = (REPO / "Snakefile").read_text()
    m = re.search(r'^containerized: f"\{workflow\.basedir\}/(\S+)"$', snakefile, flags=re.M)
    assert m, "Snakefile: no containerized: directive"
    readme = (CONTAINERS / "README.md").read_text()
    assert m.group(1) in readme and "docker build -f containers/containerize.Dockerfile" in readme


def test_containerize_image_builds_each_env_in_its_own_step_and_runs_the_post_deploy_scripts():
    """One RUN per env (a failing env names its file), then its post-deploy script in it."""
    path = CONTAINERS / "containerize.Dockerfile"
    text = path.read_text()
    prefixes = dict(re.findall(r"^COPY (envs/\S+\.yaml) (/conda-envs/\w+)/environment\.yaml$", text, flags=re.M))
    assert set(prefixes) == {f"envs/{n}.yaml" for n in ENV_NAMES}
    runs = [a for w, a, _ in instructions(path) if w == "RUN"]
    creates = [r for r in runs if "conda env create" in r]
    assert len(creates) == len(ENV_NAMES)  # one step each, none chained
    for name in ENV_NAMES:
        source = f"envs/{name}.yaml"
        prefix = prefixes[source]
        (create,) = [r for r in creates if f"--prefix {prefix} " in r]
        assert create.startswith(f"conda env create --prefix {prefix} --file {prefix}/environment.yaml ")
        assert create.count("conda env create") == 1
        assert f"could not create the env of {source} " in create and "exit 1" in create
        deploy = [r for r in runs if r.startswith(f"conda run --prefix {prefix} bash {prefix}/post-deploy.sh ")]
        if (REPO / "envs" / f"{name}.post-deploy.sh").is_file():
            assert len(deploy) == 1 and f"post-deploy script of {source} failed" in deploy[0]
            assert runs.index(deploy[0]) == runs.index(create) + 1  # right after its env
        else:
            assert deploy == []


def test_images_that_run_the_demo_generator_install_espeak_ng():
    """espeak-ng is no conda-forge package (envs/README.md): the images of the base env
    (rule demo_data) and the whole-workflow image install Debian's/Ubuntu's."""
    for path in [
        CONTAINERS / "base.cpu.Dockerfile",
        CONTAINERS / "base.cuda.Dockerfile",
        CONTAINERS / "containerize.Dockerfile",
    ]:
        runs = [a for w, a, _ in instructions(path) if w == "RUN"]
        assert any(
            r.startswith("apt-get update && apt-get install -y --no-install-recommends espeak-ng ") for r in runs
        ), path.name
    assert "espeak" not in (CONTAINERS / "face.cpu.Dockerfile").read_text()


def test_a_failing_env_step_names_its_env(tmp_path):
    """Run one env step's shell command with a `conda` that fails: the build log names the env."""
    path = CONTAINERS / "containerize.Dockerfile"
    (run,) = [a for w, a, _ in instructions(path) if w == "RUN" and "envs/base.yaml" in a and "conda env create" in a]
    (tmp_path / "conda").write_text("#!/bin/sh\necho 'PackagesNotFoundError: stand-in' >&2\nexit 1\n")
    (tmp_path / "conda").chmod(0o755)
    proc = subprocess.run(
        ["/bin/sh", "-c", run], capture_output=True, text=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}
    )
    assert proc.returncode == 1
    assert "could not create the env of envs/base.yaml" in proc.stderr


def test_env_dockerfiles_are_up_to_date():
    generate = load_generate()
    stale = generate.stale(generate.expected(with_containerize=False))
    assert stale == [], "run: python tools/containers.py\n" + "\n".join(stale)


def test_containerize_dockerfile_is_what_snakemake_prints_now():
    """Runs `snakemake --containerize` (default config) on a copy of the workflow."""
    generate = load_generate()
    printed = generate.snakemake_containerize()
    assert printed.startswith("FROM condaforge/miniforge3:latest\n")  # what the pin replaces
    want = generate.containerize_dockerfile(printed)
    have = (CONTAINERS / "containerize.Dockerfile").read_text()
    assert have == want, "run: python tools/containers.py\n" + "\n".join(
        generate.stale({CONTAINERS / "containerize.Dockerfile": want})
    )
    # Snakemake's text, unchanged below the pinned FROM but for its one chained env step,
    # whose commands each have their own step here
    body = printed.split("\n", 1)[1].rstrip("\n").split("\n")
    start = next(i for i, ln in enumerate(body) if ln.startswith("RUN conda env create "))
    end = next(i for i in range(start, len(body)) if not body[i].endswith("\\"))
    before, chained, after = "\n".join(body[:start]), body[start : end + 1], "\n".join(body[end + 1 :])
    assert have.index(before) < have.index(after) if after else before in have
    for line in chained[:-1]:
        command = line.removeprefix("RUN ").strip().removesuffix("\\").strip().removesuffix("&&").strip()
        assert f"\nRUN {command} \\\n" in have


def test_stale_dockerfile_is_reported(tmp_path):
    generate = load_generate()
    path = tmp_path / "x.Dockerfile"
    path.write_text("FROM mambaorg/micromamba:2.8.1\n")
    diff = generate.stale({path: "FROM mambaorg/micromamba:2.8.2\n"})
    assert (
        len(diff) == 1 and "-FROM mambaorg/micromamba:2.8.1" in diff[0] and "+FROM mambaorg/micromamba:2.8.2" in diff[0]
    )


def test_buildkit_parser_reads_the_same_instructions():
    """Docker's own parser (Go, through the `dockerfile` package) agrees with ours."""
    dockerfile = pytest.importorskip("dockerfile", reason="the `dockerfile` package (Docker's parser) is not installed")
    for path in DOCKERFILES:
        theirs = [(c.cmd.upper(), c.start_line) for c in dockerfile.parse_file(str(path))]
        ours = [(w, n) for w, _, n in instructions(path)]
        assert theirs == ours, path.name
