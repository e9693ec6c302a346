"""YAML files: config files and the JSON schemas shipped in ``emoflow/schemas``.

Kept apart from :mod:`emoflow.config` so per-video stages that validate a manifest do not
depend on the workflow's config validation (editing that must not rerun them).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from emoflow.errors import ConfigError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def schema(name: str) -> dict:
    """The JSON schema ``schemas/<name>.schema.yaml``."""
    return load_yaml(SCHEMA_DIR / f"{name}.schema.yaml")
