# Config validation, the video plan (manifest -> shards) and every input function.
# Only this file imports emoflow at parse time; rules call `python -m emoflow.<stage>`.
import os
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

from emoflow import codedeps  # noqa: E402
from emoflow.config import finalize, stage_slice  # noqa: E402
from emoflow.dataset import labels, shards as sharding  # noqa: E402
from emoflow.dataset.manifest import validate_manifest  # noqa: E402
from emoflow.demo.generate import plan as demo_plan  # noqa: E402
from emoflow.errors import EmoflowError  # noqa: E402

_CONFIG_SOURCE = " + ".join(str(p) for p in workflow.configfiles) or "config"
try:
    CFG = finalize(config, source=_CONFIG_SOURCE, base_dir=workflow.basedir)
except EmoflowError as exc:
    raise WorkflowError(str(exc)) from None

OUT = CFG["outdir"]
ENVS = str(Path(workflow.basedir) / "envs")
DEMO = CFG["dataset"]["source"] == "demo"
GPU = 1 if CFG["gpu"] else 0  # resources: gpu= of GPU-capable rules


def env(name):
    """The conda env file of one modality (envs/<name>.yaml)."""
    return f"{ENVS}/{name}.yaml"


def code(*modules):
    """Source files a stage runs (its modules and every emoflow module they import)."""
    return codedeps.source_files(*modules)


def _plan_videos():
    """The manifest's videos (paths absolute), before anything runs."""
    if DEMO:
        rows = demo_plan(CFG["demo"])
        rows["path"] = [str(Path(OUT, "demo", p).resolve()) for p in rows["path"]]
        return f"{OUT}/demo/manifest.csv", rows
    manifest = CFG["dataset"]["manifest"]
    try:
        rows = validate_manifest(
            manifest,
            classes=labels.classes(CFG),
            require_labels=CFG["dataset"]["require_labels"],
        )
    except EmoflowError as exc:
        raise WorkflowError(str(exc)) from None
    return manifest, rows


MANIFEST, VIDEOS = _plan_videos()
SHARDS = sharding.plan(VIDEOS, CFG["sharding"]["n_shards"])
DIGESTS = {name: sharding.sheet_digest(rows) for name, rows in SHARDS.items()}


wildcard_constraints:
    shard=r"s\d+",


def shard_digest(wildcards):
    """What the shard's jobs read from the manifest: a change reruns this shard only."""
    return DIGESTS[wildcards.shard]


def shard_media(wildcards):
    """The shard's media files (replacing one reruns the shard)."""
    paths = SHARDS[wildcards.shard]["path"]
    if DEMO:  # outputs of rule demo_data, named relative to the working directory
        return [os.path.relpath(p) for p in paths]
    return list(paths)


def per_shard(pattern):
    return expand(pattern, shard=sorted(SHARDS))


def skip_tables(*stages):
    return expand(
        f"{OUT}/skips/{{stage}}/{{shard}}.parquet", stage=stages, shard=sorted(SHARDS)
    )


def face_hints():
    """The face-hint side file, when configured (editing it reruns the face stage)."""
    return [CFG["faces"]["hints"]] if CFG["faces"]["hints"] else []


def targets():
    return [
        f"{OUT}/report/media_summary.json",
        f"{OUT}/report/faces_summary.json",
        *skip_tables("faces"),
    ]
