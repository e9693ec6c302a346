"""Fit a fitted extractor's model: the one command behind the workflow's fit rules.

``python -m emoflow.features.fit EXTRACTOR OUT_JSON [--<kind> PATH...] --config JSON
--classes JSON [--threads N]``

Each fitted extractor in :data:`emoflow.features.registry.REGISTRY` names, in its
:class:`~emoflow.features.registry.Fit`, the module whose ``fit_stage(job)`` trains it and
the input kinds (:data:`~emoflow.features.registry.FIT_INPUTS`) it reads; every one
receives the same :class:`FitJob`.  The rule's shell line is
:data:`emoflow.workflow.stages.FIT_SHELL` (rules/features.smk: one rule definition, one
``fit_<extractor>`` rule per registry entry).  Training reads the training split only; each
fit picks its epoch on held-out training speakers (or, for fits on FER2013 / triplets,
on a held-out part of their own training data).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from dataclasses import dataclass, field

from emoflow.data_root import data_path


@dataclass
class FitJob:
    extractor: str
    out: str  # the fit's metadata JSON; weights are written beside it (registry Fit.weights)
    params: dict  # the extractor's config entry, "{data_root}" not yet resolved
    classes: list[str]  # the workflow's label space
    inputs: dict[str, list[str]] = field(default_factory=dict)  # kind -> files (FIT_INPUTS)
    data_root: str = ""
    threads: int = 1
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("emoflow.fit"))

    def one(self, kind: str) -> str | None:
        """The single file of an input kind (None when the plan gave none)."""
        paths = self.inputs.get(kind) or []
        if len(paths) > 1:
            raise ValueError(f"{self.extractor} fit: --{kind} takes one path, got {len(paths)}")
        return paths[0] if paths else None

    def resolve(self, value: str | None) -> str | None:
        """A config path that may name the shared data root (``{data_root}/...``)."""
        return data_path(value, self.data_root)


def parser() -> argparse.ArgumentParser:
    from emoflow.features.registry import FIT_INPUTS, REGISTRY

    ap = argparse.ArgumentParser(
        prog="python -m emoflow.features.fit",
        description="Fit a fitted extractor's model on the training split (the workflow's fit_<extractor> rules).",
    )
    ap.add_argument(
        "extractor",
        choices=sorted(n for n, e in REGISTRY.items() if e.fitted),
        help="a fitted extractor of the registry",
    )
    ap.add_argument("out", help="model metadata JSON (weights, if any, are written beside it)")
    for kind, help_ in FIT_INPUTS.items():
        ap.add_argument(f"--{kind}", nargs="*", default=[], help=help_)
    ap.add_argument("--config", required=True, help="JSON: this extractor's config entry (+ data_root)")
    ap.add_argument("--classes", default="[]", help="JSON list: the workflow's label space")
    ap.add_argument("--threads", type=int, default=1)
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    from emoflow import logs
    from emoflow.errors import EmoflowError
    from emoflow.features.registry import FIT_INPUTS, entry

    spec = entry(args.extractor).fit
    given = {k: getattr(args, k) for k in FIT_INPUTS if getattr(args, k)}
    unread = sorted(set(given) - set(spec.inputs))
    if unread:
        print(f"{args.extractor} fit reads no {', '.join('--' + k for k in unread)}", file=sys.stderr)
        return 2
    params = json.loads(args.config)
    root = params.pop("data_root", "") or ""
    log = logs.setup(f"emoflow.fit.{args.extractor}")
    job = FitJob(args.extractor, args.out, params, json.loads(args.classes), given, root, args.threads, log)
    try:
        importlib.import_module(spec.module).fit_stage(job)
    except EmoflowError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
