"""Which source files a stage runs: the stage module and every ``emoflow`` module it
imports, transitively (package ``__init__`` files included).

The workflow lists these files as inputs of the stage's rules, so editing a stage's
code reruns that stage (and what depends on it) and nothing else.  The same walk
lets tests list the third-party modules each stage imports.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

PACKAGE = "emoflow"
SRC_ROOT = Path(__file__).resolve().parent.parent  # .../src


@functools.lru_cache(maxsize=None)
def module_path(module: str, src_root: Path = SRC_ROOT) -> Path:
    """File of ``module`` (a ``emoflow.*`` dotted name) under ``src_root``."""
    base = src_root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    raise ModuleNotFoundError(f"{module} not found under {src_root}")


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path, module: str) -> tuple[set[str], set[str]]:
    """(emoflow modules, top-level third-party modules) imported by one file."""
    stat = path.stat()
    internal, external = _parse_imports(path, module, stat.st_mtime_ns, stat.st_size)
    return set(internal), set(external)


@functools.lru_cache(maxsize=None)
def _parse_imports(path: Path, module: str, mtime_ns: int, size: int) -> tuple[frozenset, frozenset]:
    """``_imports`` of one version of a file: each file is parsed once per process
    (Snakemake asks for the closures of ~30 stages that share most of their modules)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if _is_package(path) else module.rpartition(".")[0]
    internal, external = set(), set()

    def add(name: str):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            internal.add(name)
        else:
            external.add(name.split(".")[0])

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            add(target)
            if target.startswith(PACKAGE):
                for alias in node.names:  # ``from emoflow.x import submodule``
                    internal.add(f"{target}.{alias.name}")
    return frozenset(internal), frozenset(external)


def _resolve(name: str, src_root: Path) -> str | None:
    """``name`` if it is a module, else its parent (``from pkg.mod import func``)."""
    while name:
        try:
            module_path(name, src_root)
            return name
        except ModuleNotFoundError:
            name = name.rpartition(".")[0]
    return None


@functools.lru_cache(maxsize=None)
def closure(module: str, src_root: Path = SRC_ROOT) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(emoflow modules, third-party top-level modules) reachable from ``module``."""
    seen: set[str] = set()
    external: set[str] = set()
    todo = [module]
    while todo:
        name = _resolve(todo.pop(), src_root)
        if name is None or name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        internal, ext = _imports(module_path(name, src_root), name)
        todo += sorted(internal)
        external |= ext
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return tuple(sorted(seen)), tuple(sorted(external - stdlib))


def source_files(*modules: str, src_root: Path = SRC_ROOT) -> list[str]:
    """Sorted source files of ``modules`` and everything they import from emoflow."""
    return list(_source_files(modules, Path(src_root)))


@functools.lru_cache(maxsize=None)
def _source_files(modules: tuple[str, ...], src_root: Path) -> tuple[str, ...]:
    files = set()
    for module in modules:
        for name in closure(module, src_root)[0]:
            files.add(str(module_path(name, src_root)))
    return tuple(sorted(files))


def third_party(*modules: str, src_root: Path = SRC_ROOT) -> list[str]:
    """Top-level third-party modules imported (anywhere) by ``modules``' closure."""
    found = set()
    for module in modules:
        found |= set(closure(module, Path(src_root))[1])
    return sorted(found)
