"""Load, merge and validate the configuration (JSON schema, defaults filled).

``load_config(["config.yaml", "configs/paired_av.yaml"])`` merges the files left to
right (dicts deep-merged, everything else replaced), fills defaults from
``schemas/config.schema.yaml``, and checks what a schema cannot: the label space
exists, label maps name real classes, the data root exists when a manifest uses it.
Errors name the file and the key.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
from emoflow.data_root import data_path
from emoflow.errors import ConfigError
from emoflow.yamlio import SCHEMA_DIR, load_yaml  # noqa: F401 - re-exported
from emoflow.yamlio import schema as _schema

DATA_ROOT_ENV = "EMOFLOW_DATA_ROOT"
PROTOCOL_DIR = Path(__file__).resolve().parent / "dataset" / "protocols"  # emoflow.dataset.splits reads them


def schema(name: str = "config") -> dict:
    return _schema(name)


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: ``override`` merged into ``base`` (nested dicts merged key by key)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema_)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate(instance: dict, schema_: dict, source: str = "config") -> dict:
    """Validate ``instance`` in place (filling defaults); raise one readable error."""
    cls = _with_defaults(jsonschema.validators.validator_for(schema_))
    errors = sorted(cls(schema_).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  - {where}: {err.message}")
        raise ConfigError(f"{source}: invalid configuration:\n" + "\n".join(lines))
    return instance


def repo_root() -> Path:
    """The checkout this package runs from (src layout: src/emoflow -> repo)."""
    return Path(__file__).resolve().parents[2]


def resolve_data_root(cfg: dict, base_dir: str | os.PathLike | None = None) -> Path:
    """config ``data_root`` > $EMOFLOW_DATA_ROOT > ``../shared/data`` beside the repo."""
    base = Path(base_dir) if base_dir else repo_root()
    value = cfg.get("data_root") or os.environ.get(DATA_ROOT_ENV)
    if value:
        root = Path(value)
        return root if root.is_absolute() else (base / root).resolve()
    return (base / ".." / "shared" / "data").resolve()


def _check_labels(cfg: dict, source: str) -> None:
    spaces = cfg["label_spaces"]
    name = cfg["dataset"]["label_space"]
    if name not in spaces:
        known = ", ".join(sorted(spaces)) or "none"
        raise ConfigError(f"{source}: dataset.label_space: unknown label space {name!r} (known: {known})")
    for src, targets in cfg["label_maps"].items():
        if src not in spaces:
            raise ConfigError(f"{source}: label_maps.{src}: no label space named {src!r}")
        for dst, mapping in targets.items():
            where = f"{source}: label_maps.{src}.{dst}"
            if dst not in spaces:
                raise ConfigError(f"{where}: no label space named {dst!r}")
            for a, b in mapping.items():
                if a not in spaces[src]:
                    raise ConfigError(f"{where}: {a!r} is not a class of {src}")
                if b is not None and b not in spaces[dst]:
                    raise ConfigError(f"{where}: {a!r} maps to {b!r}, not a class of {dst}")
    if cfg["dataset"]["source"] == "demo":
        missing = [c for c in cfg["demo"]["classes"] if c not in spaces[name]]
        if missing:
            raise ConfigError(f"{source}: demo.classes {missing} are not in label space {name!r}")


def _check_experiments(cfg: dict, source: str) -> None:
    """Features name registered extractors; experiments name existing features, encodings and
    classifiers; fusion names experiments;
    ``model_from`` names a feature of the same extractor that has its own fit."""
    from emoflow.features.registry import REGISTRY

    for name, params in cfg["features"].items():
        if params["extractor"] not in REGISTRY:
            raise ConfigError(
                f"{source}: features.{name}.extractor: unknown extractor {params['extractor']!r} "
                f"(known: {', '.join(sorted(REGISTRY))})"
            )
        src = params.get("model_from")
        if src is None:
            continue
        other = cfg["features"].get(src)
        if other is None or other["extractor"] != params["extractor"] or other.get("model_from"):
            raise ConfigError(
                f"{source}: features.{name}.model_from: {src!r} must be a {params['extractor']} entry with its own fit"
            )
    for name, exp in cfg["experiments"].items():
        where = f"{source}: experiments.{name}"
        if exp["feature"] not in cfg["features"]:
            raise ConfigError(f"{where}: feature {exp['feature']!r} is not an entry of features")
        if exp.get("encoding") and exp["encoding"] not in cfg["encodings"]:
            raise ConfigError(f"{where}: encoding {exp['encoding']!r} is not an entry of encodings")
        if exp["classifier"] not in cfg["classifiers"]:
            raise ConfigError(f"{where}: classifier {exp['classifier']!r} is not an entry of classifiers")
        if exp.get("encoding") and cfg["classifiers"][exp["classifier"]]["type"] == "sequence":
            raise ConfigError(f"{where}: a sequence classifier reads frames; drop the encoding")
        if exp.get("normalize") == "speaker" and cfg["classifiers"][exp["classifier"]]["type"] == "sequence":
            raise ConfigError(
                f"{where}: normalize: speaker applies to video vectors, not to a sequence classifier's frames"
            )
    fused = cfg["fusion"]["experiments"]
    unknown = [e for e in fused or [] if e not in cfg["experiments"]]
    if unknown:
        raise ConfigError(f"{source}: fusion.experiments: {unknown} are not entries of experiments")
    group = cfg["bundle"]["group"]
    if group is not None and group not in cfg["fusion"]["groups"]:
        raise ConfigError(
            f"{source}: bundle.group: {group!r} is not a fusion group ({sorted(cfg['fusion']['groups'])})"
        )


def finalize(cfg: dict, source: str = "config", base_dir: str | os.PathLike | None = None) -> dict:
    """Validate a merged config dict (a copy, defaults filled) and resolve paths."""
    cfg = validate(copy.deepcopy(cfg), schema("config"), source)
    for section in ("features", "encodings", "classifiers", "experiments"):
        cfg[section] = {k: v for k, v in cfg[section].items() if v is not None}  # null drops an entry
    cfg["fusion"]["groups"] = {k: v for k, v in cfg["fusion"]["groups"].items() if v is not None}
    _check_evaluation(cfg, source)
    _check_labels(cfg, source)
    _check_experiments(cfg, source)
    data_root = resolve_data_root(cfg, base_dir)
    cfg["data_root"] = str(data_root)
    ds = cfg["dataset"]
    if ds["source"] == "manifest":
        if not ds["manifest"]:
            raise ConfigError(f"{source}: dataset.manifest is required when dataset.source is 'manifest'")
        uses_root = "{data_root}" in ds["manifest"]
        manifest = Path(data_path(ds["manifest"], data_root))
        if not manifest.is_absolute():  # relative to the working directory, as in Snakemake
            manifest = Path.cwd() / manifest
        if uses_root and not data_root.is_dir():
            raise ConfigError(
                f"{source}: the data root {data_root} does not exist; set data_root in the config "
                f"or ${DATA_ROOT_ENV} to the folder holding the shared data"
            )
        if not manifest.is_file():
            raise ConfigError(f"{source}: dataset.manifest: {manifest} does not exist")
        ds["manifest"] = str(manifest.resolve())
    if ds["source"] == "corpus":
        corpus = ds["corpus"]
        uses_root = "{data_root}" in corpus["root"]
        root = Path(data_path(corpus["root"], data_root))
        if not root.is_absolute():
            root = Path.cwd() / root
        if not root.is_dir():
            what = "the data root" if uses_root else "dataset.corpus.root"
            raise ConfigError(
                f"{source}: {what} {root} does not exist (the {corpus['adapter']} corpus folder); set data_root "
                f"in the config (--config data_root=/path/to/corpus) or ${DATA_ROOT_ENV}"
            )
        corpus["root"] = str(root.resolve())
    return cfg


def _check_evaluation(cfg: dict, source: str) -> None:
    """A protocol names one that exists (it sets scheme: protocol); scheme protocol names one.
    (Names as emoflow.dataset.splits resolves them; not imported here, so that modules
    validating a config slice do not depend on the splits code.)"""
    ev = cfg["evaluation"]
    name = ev.get("protocol")
    shipped = sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml")) + ["loso"]
    if name:
        if ev["scheme"] == "kfold":
            raise ConfigError(f"{source}: evaluation: scheme kfold and protocol {name!r}: pick one")
        ev["scheme"] = "protocol"
        is_file = name.endswith((".yaml", ".yml")) or "/" in name
        if not (name in shipped or (is_file and Path(name).is_file())):
            raise ConfigError(
                f"{source}: evaluation.protocol: {name!r} is neither a shipped protocol ({', '.join(shipped)}) nor a file"
            )
    elif ev["scheme"] == "protocol":
        raise ConfigError(f"{source}: evaluation.scheme protocol needs evaluation.protocol ({', '.join(shipped)})")


def load_config(paths, overrides: dict | None = None, base_dir=None) -> dict:
    """Merge YAML files (and ``overrides``) left to right and finalize."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    merged: dict = {}
    for p in paths:
        merged = deep_merge(merged, load_yaml(p))
    if overrides:
        merged = deep_merge(merged, overrides)
    source = " + ".join(str(p) for p in paths) or "config"
    return finalize(merged, source, base_dir)


def stage_slice(cfg: dict, *keys: str) -> str:
    """Canonical JSON of the named config sections: a rule's ``params`` for caching."""
    return json.dumps({k: cfg[k] for k in keys}, sort_keys=True, separators=(",", ":"))
