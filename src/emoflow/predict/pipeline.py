"""Run the per-video stages on new inputs, exactly as the workflow's rules do.

One *chunk* of inputs is one shard (``s000``) in a private work folder laid out like a run's
results (``shards/``, ``probe/``, ``frames/``, ``audio/``, ``faces/``, ``crops/``, ``text/``,
``features/<table>/``, ``skips/``, ``logs/``).  Each stage is the same entry point the rule
calls (``python -m emoflow.<stage> ARGV``), with the JSON config slice the run's rule received
(kept in the bundle), so prediction shares every line of extraction code with training.
Only the stages the bundle's features need run (no face stage for an audio-only bundle; ASR
only for text features).

Two ways to run a stage, same ``ARGV``:

- **warm** (``models`` given; the default of ``emoflow predict`` and :class:`emoflow.Recognizer`):
  the module's ``main(ARGV)`` in this process, inside :func:`emoflow.warm.keeping`, so each
  detector, extractor and network is loaded once per process and reused by every later
  chunk; its log goes to the chunk's ``logs/`` as a subprocess's would.  Load order:
  openSMILE and TensorFlow can share a process only when openSMILE loads first, which
  :mod:`emoflow.tf_import` (the one way emoflow imports TensorFlow) ensures.
- **isolated** (``models`` None): ``python -m`` in a subprocess per stage and chunk, as a
  workflow job; every chunk pays the imports and model loads again.

Inputs that a stage cannot use (unreadable file, no face, no audio) are recorded in the
chunk's skip tables, as in a run; the features then mark them ``missing``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from emoflow import warm
from emoflow.errors import EmoflowError
from emoflow.predict.bundle import Bundle
from emoflow.storage import read_table
from emoflow.workflow.layout import Layout
from emoflow.workflow.stages import STAGES, chunk_commands

SHARD = "s000"
SRC = str(Path(__file__).resolve().parents[2])  # the folder holding the emoflow package


def stage_threads(bundle: Bundle, stage: str, threads: int | None) -> int:
    """``threads`` if given, else the run's rule's count (which the run's float results
    depend on: BLAS splits sums by thread)."""
    return threads or int(bundle.meta.get("threads", {}).get(stage, 1))


def stage_commands(bundle: Bundle, work: Path, threads: int | None = None) -> list[tuple[str, list[str]]]:
    """(name, argv after ``python -m``) of every stage one chunk needs, in order: the argv
    of each rule (:data:`emoflow.workflow.stages.STAGES`) on the chunk's own
    :class:`~emoflow.workflow.layout.Layout`; ``threads`` None = each stage with its rule's
    thread count (bit-identical to the run)."""
    L, s, st = Layout(str(work)), SHARD, bundle.stages
    kinds = {f["input"] for f in bundle.features.values()}
    keys = {"asr": ("asr", "feature_inputs")}
    cfg = lambda rule: json.dumps({k: st[k] for k in keys.get(rule, (rule,))}, sort_keys=True, separators=(",", ":"))  # noqa: E731
    n = lambda stage: stage_threads(bundle, stage, threads)  # noqa: E731
    media = ["probe"]
    media += ["frames"] if kinds & {"crops", "frames"} else []
    media += ["audio"] if kinds & {"audio", "transcripts"} else []
    media += ["faces"] if "crops" in kinds else []
    media += ["asr"] if "transcripts" in kinds else []
    names = {"shard_sheet": "shard"}  # the chunk's stage log names
    cmds = [
        (names.get(rule, rule), argv) for rule, argv in chunk_commands(L, s, str(work / "manifest.csv"), cfg, n, media)
    ]
    for name, f in sorted(bundle.features.items()):
        table = f["table"]
        if f.get("stage") == "e2e_tta":  # an e2e network's face transform cache (rule e2e_tta)
            cmds.append(
                (
                    f"features:{name}",
                    STAGES["e2e_tta"].argv(
                        bundle.feature_config(name),
                        n("e2e_tta"),
                        name=table,
                        table=L.features(table, s),
                        crops=L.crop_inputs(s),
                    ),
                )
            )
            continue
        cmds.append(
            (
                f"features:{name}",
                STAGES["features"].argv(
                    bundle.feature_config(name),
                    n("features"),
                    name=table,
                    table=L.features(table, s),
                    skips=L.feature_skips(table, s),
                    data=L.inputs(f["input"], s),
                ),
            )
        )
    return cmds


def write_manifest(rows: pd.DataFrame, work: Path) -> Path:
    """The chunk's manifest (video_id, path; absolute paths)."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "manifest.csv"
    rows[["video_id", "path"]].to_csv(path, index=False)
    return path


def _threads_of(argv: list[str]) -> int | None:
    return int(argv[argv.index("--threads") + 1]) if "--threads" in argv else None


def run_in_process(argv: list[str], log: Path, models: warm.ModelCache) -> int:
    """``python -m ARGV`` in this process: the module's ``main(ARGV[1:])`` with its stdout,
    stderr and log records in ``log``, its models kept in ``models``; returns the exit code
    (1 and the traceback in ``log`` when it raised)."""
    module = importlib.import_module(argv[0])
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    threads = _threads_of(argv)
    with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.handlers[:] = [handler]  # logs.setup's basicConfig then keeps it
        root.setLevel(logging.INFO)
        try:
            if threads and "torch" in sys.modules:  # what a fresh process's model load would set
                sys.modules["torch"].set_num_threads(threads)
            with warm.keeping(models):
                code = module.main(argv[1:])
            return int(code or 0)
        except SystemExit as exc:  # argparse
            return exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - the stage failed: its traceback is its log's tail, as in a subprocess
            traceback.print_exc(file=f)
            return 1
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])


def run_chunk(
    bundle: Bundle,
    rows: pd.DataFrame,
    work: Path,
    threads: int | None = None,
    on_stage: Callable[[str], None] | None = None,
    models: warm.ModelCache | None = None,
) -> dict[str, str]:
    """Run the stages on ``rows`` (video_id, path) in ``work``; returns feature name -> table.
    ``models``: run them warm, keeping their models there (see the module doc); None: each
    in its own subprocess."""
    work = Path(work).resolve()
    write_manifest(rows, work)
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    (work / "logs").mkdir(parents=True, exist_ok=True)
    for name, argv in stage_commands(bundle, work, threads):
        log = work / "logs" / f"{name.replace(':', '.')}.log"
        if models is not None:
            code = run_in_process(argv, log, models)
        else:
            with open(log, "w") as f:
                code = subprocess.run(
                    [sys.executable, "-m", *argv], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work
                ).returncode
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-8:])
            raise EmoflowError(f"stage {name} failed (exit {code}); log {log}:\n{tail}")
        if on_stage:
            on_stage(name)
    L = Layout(str(work))
    return {name: L.features(f["table"], SHARD) for name, f in bundle.features.items()}


def skipped(work: Path) -> pd.DataFrame:
    """Every skip the chunk's stages recorded (video_id, stage, kind, reason)."""
    frames = [read_table(p).to_pandas() for p in sorted(work.glob("skips/**/*.parquet"))]
    frames = [f for f in frames if len(f)]
    cols = ["video_id", "stage", "kind", "reason"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
