# Thin wrappers around the run's plan (emoflow.workflow.plan: videos, shards, feature
# tables, fits, experiments, bundle; emoflow.workflow.layout: every path). Only the rules'
# files import emoflow at parse time; rules call `python -m emoflow.<stage>`.
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)  # the workflow runs the code that sits beside it


def _job_prefix():
    """Shell prefix of every job: strict bash, and emoflow from this checkout's src/.
    Without --use-conda or containers, `python` is the interpreter running Snakemake
    (its venv need not be activated); otherwise the env's own python."""
    parts = [
        "set -euo pipefail;",
        f"export PYTHONPATH={shlex.quote(SRC)}${{{{PYTHONPATH:+:$PYTHONPATH}}}};",
    ]
    methods = {str(m) for m in workflow.deployment_settings.deployment_method}
    if not methods & {"conda", "apptainer"}:
        parts.append(
            f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH;"
        )
    return " ".join(parts) + " "  # braces doubled: Snakemake formats the prefix


shell.prefix(_job_prefix())


def _output_cache():
    """Between-workflow output cache: with $SNAKEMAKE_OUTPUT_CACHE set, the rules marked
    `cache: True` (fits that read none of the run's videos: the FER2013 frame CNN, the
    expression embedding) are stored there and reused by any project on the machine (or
    cluster file system) whose fit would be the same (Snakemake's provenance hash: code,
    params, input checksums, env). As `--cache` would; a profile cannot make it depend
    on the variable, and without it Snakemake's --cache fails."""
    from snakemake.settings.types import ExecMode

    settings = workflow.workflow_settings
    if (
        os.environ.get("SNAKEMAKE_OUTPUT_CACHE")
        and settings.cache is None
        and settings.exec_mode == ExecMode.DEFAULT
    ):
        settings.cache = []


_output_cache()

from emoflow import codedeps  # noqa: E402
from emoflow.config import finalize, stage_slice  # noqa: E402
from emoflow.dataset import labels  # noqa: E402
from emoflow.errors import EmoflowError  # noqa: E402
from emoflow.features import registry  # noqa: E402
from emoflow.workflow.plan import Plan  # noqa: E402
from emoflow.workflow.stages import (
    FIT_MODULE,
    FIT_SHELL,
    STAGES,
    fit_input_args,
)  # noqa: E402

_CONFIG_SOURCE = " + ".join(str(p) for p in workflow.configfiles) or "config"
try:
    CFG = finalize(config, source=_CONFIG_SOURCE, base_dir=workflow.basedir)
    PLAN = Plan(CFG, source=_CONFIG_SOURCE)
except EmoflowError as exc:
    raise WorkflowError(str(exc)) from None

OUT, L = PLAN.out, PLAN.L  # L: every result path of the run (emoflow.workflow.layout)
ENVS = str(Path(workflow.basedir) / "envs")
DEMO, CORPUS = PLAN.demo, PLAN.corpus
GPU = 1 if CFG["gpu"] else 0  # resources: gpu= of GPU-capable rules
MANIFEST, VIDEOS, SHARDS = PLAN.manifest, PLAN.videos, PLAN.shards
PARTS, CLASSES, FEATURES = PLAN.parts, PLAN.classes, PLAN.features
EXPERIMENTS, GROUPS, E2E_SPECS = PLAN.experiments, PLAN.groups, PLAN.e2e_specs
BUNDLE_PART, BUNDLE_GROUP, BUNDLE_EXPERIMENTS = PLAN.bundle_choice()


def env(name):
    """The conda env file of one modality (envs/<name>.yaml)."""
    return f"{ENVS}/{name}.yaml"


def code(*modules):
    """Source files a stage runs (its modules and every emoflow module they import)."""
    return codedeps.source_files(*modules)


def _alternatives(names):
    """A regex matching exactly these names (none: nothing)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


wildcard_constraints:
    shard=r"s\d+",
    name=r"[A-Za-z0-9_]+",
    part=r"main|f\d+",
    experiment=r"[A-Za-z0-9_]+",
    group=r"[A-Za-z0-9_]+",
    encoding=r"[A-Za-z0-9_]+",


per_shard, skip_tables, data_path = PLAN.per_shard, PLAN.skip_tables, PLAN.data_path
feature_of, fitted_model = PLAN.feature_of, PLAN.fitted_model
predictions, experiment_reports = PLAN.predictions, PLAN.experiment_reports


def feature_inputs(w):
    """What an extractor reads for one shard, by its registry input kind."""
    try:
        return PLAN.feature_inputs(w.name, w.shard)
    except EmoflowError as exc:
        raise WorkflowError(str(exc)) from None


def feature_code(w):
    return code(PLAN.extractor(w.name).module, STAGES["features"].module)


def feature_env(w):
    return env(PLAN.extractor(w.name).env)


def feature_gpu(w):
    return GPU if PLAN.extractor(w.name).gpu else 0


FITS = {x: e.fit for x, e in registry.REGISTRY.items() if e.fitted}  # fit_<extractor>


def fit_inputs(w):
    """A fitted extractor's fit inputs, by kind (named inputs of rule fit_<extractor>)."""
    try:
        return PLAN.fit_inputs(w.name)
    except EmoflowError as exc:
        raise WorkflowError(str(exc)) from None


def fit_args(wildcards, input):
    """The fit command's ``--<kind> files`` (params.inputs of rule fit_<extractor>)."""
    return fit_input_args(FEATURES[wildcards.name]["extractor"], input)


def experiment_gpu(w):
    return GPU if PLAN.is_sequence(w.experiment) else 0


def targets():
    asr = PLAN.asr
    return [
        f"{OUT}/report/media_summary.json",
        f"{OUT}/report/faces_summary.json",
        *skip_tables("faces", *(["asr"] if asr else [])),
        *(per_shard(L.text()) if asr else []),
        *[L.features(n, s) for n in sorted(FEATURES) for s in sorted(SHARDS)],
        *([f"{OUT}/report/summary.csv"] if EXPERIMENTS else []),
        *similarity_targets(),  # rules/similarity.smk: the index, when the embedding is on
    ]


def bundle_spec(w):
    """What the bundle holds; predict runs each stage with its rule's thread count (float
    results depend on it: BLAS splits sums by thread)."""
    rules = ("frames", "audio", "faces", "asr", "features")
    threads = {r: workflow.get_rule(r).resources["_cores"].value for r in rules}
    return PLAN.bundle_spec(threads)


def bundle_targets():
    """The bundle, when the fusion group has experiments to bundle."""
    return [f"{OUT}/bundle"] if BUNDLE_EXPERIMENTS else []


def deployment_targets():
    """Test figures by deployment, when there is a fusion to deploy."""
    return [f"{OUT}/report/deployments.json"] if BUNDLE_EXPERIMENTS else []
