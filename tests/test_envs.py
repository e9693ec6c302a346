"""The conda envs, checked statically (no conda here): every env file parses and pins every
package at the version CI tests, takes from conda only what pip cannot supply (each such pin
recorded with its evidence in envs/README.md), and every rule's env provides the
third-party modules its code imports (tools/envcheck.py).  The broken-copy tests show that
the check fails, naming the rule, the module and the missing package, when an env lacks
something.  tools/check_envs.py (a step of scripts/test.sh) installs each env's pip
layer in a clean venv and runs its rules' imports and one real job there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import envcheck
from emoflow.errors import EmoflowError
from emoflow.features import registry

REPO = Path(__file__).resolve().parents[1]
ENV_NAMES = sorted(p.stem for p in (REPO / "envs").glob("*.yaml"))

#: Conda pins that conda-forge does not publish or that cannot be installed together
#: (issue 19: a check of every pin against conda-forge's feedstock records, December 2026).
NOT_ON_CONDA_FORGE = {
    "espeak-ng": None,  # no conda-forge package of that name, any version
    "ffmpeg": "7.1.1",  # links OpenVINO 2025.x (libprotobuf 5.29/6.31): not installable with libarrow 26
    "pandas": "3.1.1",
    "pyarrow": "26.0.1",
    "pillow": "13.0.0",
    "tqdm": "4.70.1",
    "matplotlib-base": "3.11.2",
    "scikit-learn": "1.9.1",
    "skops": "0.16.0",
    "transformers": "5.23.0",
}


@pytest.mark.parametrize("name", ENV_NAMES)
def test_env_file_parses_and_pins_every_package(name):
    env = envcheck.load_env(REPO / "envs" / f"{name}.yaml")
    assert env.problems == []
    assert "python" in env.conda and "numpy" in env.packages()
    text = (REPO / "envs" / f"{name}.yaml").read_text()
    assert f"name: emoflow-{name}\n" in text  # one env name per file: conda never mixes them up


@pytest.mark.parametrize("name", ENV_NAMES)
def test_env_pins_are_the_versions_ci_tests(name):
    assert envcheck.venv_mismatches(envcheck.load_env(REPO / "envs" / f"{name}.yaml")) == []


def test_every_rule_env_provides_what_its_code_imports():
    problems = envcheck.check(REPO)
    assert problems == [], "\n".join(problems)


def test_every_rule_is_checked(tmp_path):
    """The text parse finds every rule Snakemake loads (default config), each with its env,
    and the features rule once per extractor with the registry's env."""
    jobs, problems = envcheck.jobs(REPO)
    assert problems == []
    by_rule = {j.rule: j for j in jobs}
    for name, entry in registry.REGISTRY.items():
        job = by_rule[f"features[{name}]"]
        assert job.env == entry.env and job.modules == ("emoflow.features.base", entry.module)
    assert by_rule["report"].env == "classify" and by_rule["report"].modules == ("emoflow.evaluate.report",)
    assert by_rule["demo_data"].env == "base" and by_rule["demo_data"].modules == ("emoflow.demo.generate",)
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--list-rules",
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.split()
    definitions = envcheck.rule_definitions(REPO)
    # every rule Snakemake loads is parsed; the others are defined under an `if` (e.g. the
    # corpus manifest rule, for configs that read a corpus folder): indented in their file
    defined = {name for name, _, _ in definitions}
    assert set(listed) <= defined
    for name, where, _ in definitions:
        if name not in listed:
            path, line = where.rsplit(":", 1)
            assert (REPO / path).read_text().splitlines()[int(line) - 1].startswith(" "), where
    runs_something = {name for name, _, d in definitions if set(d) & set(envcheck.COMMANDS)}
    assert {j.rule.split("[")[0] for j in jobs} == runs_something
    assert "all" not in runs_something and {"report", "demo_data", "features"} <= runs_something


# --------------------------------------------------------------------------- the check fails


def _copy_envs(tmp_path) -> Path:
    envs = tmp_path / "envs"
    shutil.copytree(REPO / "envs", envs)
    return envs


def _drop_line(path: Path, prefix: str):
    lines = path.read_text().splitlines(True)
    kept = [ln for ln in lines if not ln.strip().startswith(prefix)]
    assert len(kept) == len(lines) - 1, f"{prefix!r} not found once in {path}"
    path.write_text("".join(kept))


def test_env_without_a_package_its_rule_imports_fails(tmp_path):
    envs = _copy_envs(tmp_path)
    _drop_line(envs / "classify.yaml", "- pyarrow==")
    problems = envcheck.check(REPO, envs_dir=envs)
    lines = [p for p in problems if p.startswith("rule classify (rules/classify.smk:")]
    assert len(lines) == 1, problems
    assert "emoflow.classify.stage" in lines[0] and "'pyarrow'" in lines[0] and "classify.yaml" in lines[0]
    assert "src/emoflow/classify/stage.py:" in lines[0]  # where the import is
    # every other rule on that env fails too; no rule on another env does
    failing = {p.split(" (")[0] for p in problems}
    assert {"rule encode", "rule fusion", "rule report"} <= failing
    assert not any(p.startswith(("rule faces ", "rule probe ", "rule features[")) for p in problems)


def test_package_needed_by_a_no_deps_package_fails(tmp_path):
    """facenet-pytorch comes without its dependencies: what it imports counts."""
    envs = _copy_envs(tmp_path)
    _drop_line(envs / "face.yaml", "- requests=")
    problems = envcheck.check(REPO, envs_dir=envs)
    assert len(problems) == 1, problems
    assert problems[0].startswith("rule faces (rules/faces.smk:")
    assert "'requests'" in problems[0] and "facenet_pytorch.models.inception_resnet_v1" in problems[0]


def _workflow(tmp_path, rule: str, module_code: str) -> Path:
    """A workflow copy: the real envs and src, one rule, one extra module emoflow.extra."""
    wf = tmp_path / "wf"
    (wf / "rules").mkdir(parents=True)
    shutil.copytree(REPO / "envs", wf / "envs")
    shutil.copytree(REPO / "src", wf / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (wf / "src" / "emoflow" / "extra.py").write_text(module_code)
    (wf / "rules" / "extra.smk").write_text(rule)
    return wf


RULE = """
rule extra:
    output:
        "x",
    conda:
        env("base")
    shell:
        "python -m emoflow.extra {output:q}"
"""


def test_rule_module_importing_a_package_no_env_has_fails(tmp_path):
    code = """
import importlib.util

from emoflow import storage  # noqa: F401  (pyarrow: base has it)

try:
    import cv2  # optional: guarded
except ImportError:
    cv2 = None

if importlib.util.find_spec("zmq") is not None:  # presence check: optional
    import zmq  # noqa: F401

try:
    import zstandard  # noqa: F401
except ImportError as exc:  # re-raised: needed all the same
    raise RuntimeError("zstandard is needed") from exc


def main():
    import requests  # needed when main runs

    spec = importlib.util.find_spec("fer")  # a package's data: needed
    return requests, spec
"""
    wf = _workflow(tmp_path, RULE, code)
    problems = envcheck.check(wf)
    mine = [p for p in problems if p.startswith("rule extra (")]
    missing = sorted(p.split("providing '")[1].split("'")[0] for p in mine)
    assert missing == ["fer", "requests", "zstandard"], problems
    for p in mine:
        assert "rules/extra.smk:2" in p and "emoflow.extra" in p and "in env base" in p
    assert any("src/emoflow/extra.py:23" in p for p in mine)  # the line of `import requests`


def test_rule_without_env_with_an_unknown_env_or_unfollowable_code_fails(tmp_path):
    rules = (
        RULE.replace('    conda:\n        env("base")\n', "")
        + RULE.replace("rule extra", "rule other").replace('env("base")', 'env("nope")')
        + RULE.replace("rule extra", "rule script").replace("-m emoflow.extra", "scripts/x.py")
        + RULE.replace("rule extra", "rule inline")
        .replace("shell:", "run:")
        .replace('"python -m emoflow.extra {output:q}"', "pass")
    )
    wf = _workflow(tmp_path, rules, "import numpy\n")
    problems = envcheck.check(wf)
    assert any(p.startswith("rule extra (") and "names no conda env" in p for p in problems), problems
    assert any(p.startswith("rule other (") and "'nope' has no file envs/nope.yaml" in p for p in problems), problems
    assert any(p.startswith("rule script (") and "not as `python -m emoflow.<module>`" in p for p in problems), problems
    assert any(p.startswith("rule inline (") and "uses run:" in p for p in problems), problems


def test_unpinned_or_misnamed_packages_fail(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: emoflow-bad\nchannels:\n  - defaults\n  - conda-forge\ndependencies:\n  - python=3.11\n"
        "  - numpy>=2\n  - pandas\n  - soundfile=0.14.0\n  - pip=25.3\n  - pip:\n      - torch==2.13.0\n      - opensmile\n"
    )
    (tmp_path / "bad.post-deploy.sh").write_text("#!/usr/bin/env bash\npython -m pip install fer\n")
    problems = "\n".join(envcheck.load_env(path).problems)
    for expected in [
        "channels must start with conda-forge",
        "'defaults' channel",
        "'numpy>=2' is not pinned",
        "'pandas' is not pinned",
        "its name there is 'pysoundfile'",
        "pip package 'opensmile' is not pinned",
        "pip torch without --extra-index-url=https://download.pytorch.org/whl/cpu",
        "bad.post-deploy.sh:2: pip install without --no-deps",
        "bad.post-deploy.sh:2: 'fer' is not pinned",
    ]:
        assert expected in problems
    assert len(envcheck.load_env(path).problems) == 9


def test_pin_that_differs_from_the_venv_is_reported(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("name: emoflow-old\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy=1.26.4\n")
    assert envcheck.venv_mismatches(envcheck.load_env(path)) == [
        f"{path}: numpy pinned 1.26.4, the venv CI tests has {__import__('numpy').__version__}"
    ]


# --------------------------------------------------------------------------- what conda supplies


@pytest.mark.parametrize("name", ENV_NAMES)
def test_no_env_pins_what_conda_forge_does_not_publish(name):
    env = envcheck.load_env(REPO / "envs" / f"{name}.yaml")
    for package, version in env.conda.items():
        assert package not in NOT_ON_CONDA_FORGE or NOT_ON_CONDA_FORGE[package] not in (None, version), env.conda_specs[
            package
        ]
    assert "espeak" not in (REPO / "envs" / f"{name}.yaml").read_text().lower()  # a system package


@pytest.mark.parametrize("name", ENV_NAMES)
def test_conda_supplies_only_what_pip_cannot_and_pip_has_the_versions_ci_tests(name):
    env = envcheck.load_env(REPO / "envs" / f"{name}.yaml")
    assert set(env.conda) <= set(envcheck.CONDA_LAYER)
    assert envcheck.ci_pin_problems(env, envcheck.ci_pins(REPO)) == []
    pins = envcheck.ci_pins(REPO)
    for package, version in env.pip.items():  # every pip pin is a pin CI installs (requests: a dependency)
        assert pins.get(envcheck.normalize(package), version) == version
    if "cyvlfeat" in env.conda:  # conda's cyvlfeat links conda's numpy: the pip pin keeps it
        assert env.conda["numpy"] == env.pip["numpy"]


def test_every_conda_pin_is_recorded_with_its_evidence():
    recorded = envcheck.conda_record(REPO / "envs")
    specs = {
        spec for name in ENV_NAMES for spec in envcheck.load_env(REPO / "envs" / f"{name}.yaml").conda_specs.values()
    }
    assert specs <= recorded
    assert "ffmpeg=8.1.1=gpl*" in specs and "cyvlfeat=0.7.1=py311*_3" in specs


def test_python_package_from_conda_or_off_the_ci_pins_or_unrecorded_fails(tmp_path):
    envs = _copy_envs(tmp_path)
    text = (envs / "base.yaml").read_text()
    text = text.replace("  - pip=25.3\n", "  - pip=25.3\n  - pandas=3.0.3\n").replace(
        "- tqdm==4.70.1", "- tqdm==4.70.0"
    )
    text = text.replace("ffmpeg=8.1.1=gpl*", "ffmpeg=8.1.2=gpl*")
    (envs / "base.yaml").write_text(text)
    problems = envcheck.check(REPO, envs_dir=envs)
    assert any("base.yaml: 'pandas' from conda: conda supplies only" in p for p in problems), problems
    assert any("base.yaml: pip tqdm 4.70.0, CI tests 4.70.1" in p for p in problems), problems
    assert any(
        "base.yaml: conda 'ffmpeg=8.1.2=gpl*' has no row in " in p and "envs/README.md" in p for p in problems
    ), problems
    assert all("base.yaml" in p for p in problems), problems


def test_conda_numpy_must_sit_beside_cyvlfeat_at_the_pip_version(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: emoflow-x\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy=2.4.6\n"
        "  - pip=25.3\n  - pip:\n      - numpy==2.4.5\n"
    )
    problems = "\n".join(envcheck.load_env(path).problems)
    assert "numpy from conda only beside cyvlfeat" in problems
    assert "conda numpy=2.4.6 and pip numpy==2.4.5 differ" in problems


# --------------------------------------------------------------------------- espeak-ng


def test_demo_without_espeak_ng_stops_at_once_naming_the_package(tmp_path, monkeypatch):
    from emoflow.demo import generate, speech

    real_which = shutil.which
    monkeypatch.setattr(
        speech.shutil, "which", lambda name, *a, **k: None if name == "espeak-ng" else real_which(name, *a, **k)
    )
    with pytest.raises(EmoflowError) as info:
        generate.generate(tmp_path / "out", {"classes": ["happy"], "speakers": {"train": 1, "val": 0, "test": 0}})
    message = str(info.value)
    assert "apt install espeak-ng" in message and "conda-forge has no espeak-ng package" in message
    assert not (tmp_path / "out").exists()  # before any work


# --------------------------------------------------------------------------- tools/check_envs.py


def _check_envs_module():
    from tools import check_envs

    return check_envs


def test_check_envs_runs_a_real_job_of_a_rule_on_every_env():
    check_envs = _check_envs_module()
    assert set(check_envs.JOBS) == set(ENV_NAMES)
    definitions = {name: d for name, _, d in envcheck.rule_definitions(REPO)}
    for name, (rule, wildcards) in check_envs.JOBS.items():
        assert check_envs.job_env(rule, wildcards) == name
        pattern = check_envs.output_pattern(definitions[rule]["output"], "results/demo")
        assert pattern and set(wildcards) <= set(re.findall(r"\{(\w+)\}", pattern)), (rule, pattern)


def test_check_envs_refuses_a_conda_package_it_cannot_stand_in_for(tmp_path):
    check_envs = _check_envs_module()
    path = tmp_path / "x.yaml"
    path.write_text("name: emoflow-x\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - libsndfile=1.2.2\n")
    check = check_envs.EnvCheck("x", envcheck.load_env(path), tmp_path / "venvs", None, "", keep=False)
    check.py = Path(sys.executable)  # the conda-layer step only asks it for its version
    with pytest.raises(check_envs.Failed, match="libsndfile=1.2.2: no stand-in"):
        check.conda_layer()
