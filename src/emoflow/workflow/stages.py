"""The per-shard stages and how each is called: the one owner of their command lines.

A :class:`Stage` names its module (``python -m <module>``) and its positional arguments,
each with the rule item that fills it (``input.sheet``, ``output.skips``,
``wildcards.name``...), and whether it takes ``--config JSON`` and ``--threads N``.  The
rule's shell line is :meth:`Stage.shell` (rules/*.smk), and the predictor builds the
same argv with :meth:`Stage.argv` from a :class:`emoflow.workflow.layout.Layout` of its
chunk folder (emoflow.predict.pipeline), so the two can never drift apart
(tests/test_workflow_layout.py renders every rule's shell line and compares).

The argv lives here rather than in each stage module so that building the workflow
imports no stage's dependencies (ffmpeg, torch, TensorFlow): a stage module's ``main``
parses exactly these arguments.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    rule: str  # the rule that runs it, one job per shard
    module: str  # python -m <module>; its main(argv) parses the argv below
    args: tuple[tuple[str, str], ...]  # (name, rule item) of each positional argument
    config: bool = True  # --config JSON: the rule's params.cfg
    threads: bool = False  # --threads N: the rule's threads
    command: str | None = None  # `emoflow <command>` runs it too (cli.py)

    def shell(self) -> str:
        """The rule's shell line (Snakemake placeholders, every path quoted)."""
        parts = ["python -m", self.module, *(f"{{{ref}:q}}" for _, ref in self.args)]
        if self.config:
            parts.append("--config {params.cfg:q}")
        if self.threads:
            parts.append("--threads {threads}")
        return " ".join(parts) + " > {log:q} 2>&1"

    def argv(self, config: str | None = None, threads: int | None = None, **values) -> list[str]:
        """``[module, *arguments]`` with ``values`` by argument name (a list-valued one, like
        an extractor's input files, is spread as the rule's ``{input.data:q}`` is)."""
        names = [n for n, _ in self.args]
        if set(values) != set(names):
            raise TypeError(f"{self.rule}: arguments {names}, given {sorted(values)}")
        out = [self.module]
        for n in names:
            v = values[n]
            out += [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
        if self.config:
            if config is None:
                raise TypeError(f"{self.rule}: needs config")
            out += ["--config", config]
        if self.threads:
            out += ["--threads", str(int(threads or 1))]
        return out

    def main(self):
        """The stage module's ``main(argv)``."""
        return importlib.import_module(self.module).main


def _stage(rule, module, args, **kw) -> Stage:
    return Stage(rule, module, tuple(a if isinstance(a, tuple) else (a.split(".")[-1], a) for a in args), **kw)


#: every per-shard stage, in the order a chunk of videos goes through them
STAGES: dict[str, Stage] = {
    s.rule: s
    for s in (
        _stage(
            "shard_sheet",
            "emoflow.dataset.shards",
            ("input.manifest", "wildcards.shard", ("sheet", "output.sheet")),
            command="shard-sheet",
        ),
        _stage("probe", "emoflow.media.probe", ("input.sheet", "output.table", "output.skips"), command="probe"),
        _stage(
            "frames",
            "emoflow.media.frames",
            ("input.sheet", "input.probe", "output.table", "output.skips"),
            threads=True,
            command="frames",
        ),
        _stage(
            "audio",
            "emoflow.media.audio",
            ("input.sheet", "input.probe", "output.index", "output.wavs", "output.skips"),
            threads=True,
            command="audio",
        ),
        _stage(
            "faces",
            "emoflow.faces.stage",
            (
                "input.sheet",
                "input.probe",
                "input.frames",
                "output.faces",
                "output.videos",
                "output.crops",
                "output.skips",
            ),
            threads=True,
            command="faces",
        ),
        _stage(
            "asr", "emoflow.asr.stage", ("input.index", "input.wavs", "output.table", "output.skips"), command="asr"
        ),
        _stage(
            "features",
            "emoflow.features.base",
            ("wildcards.name", "output.table", "output.skips", "input.data"),
            threads=True,
            command="features",
        ),
        _stage(
            "e2e_tta",
            "emoflow.e2e.tta",
            (("name", "params.name"), ("table", "output.table"), "input.crops"),
            threads=True,
            command="e2e-tta",
        ),
    )
}


FIT_MODULE = "emoflow.features.fit"  # one command for every fitted extractor's fit


#: the shell line of every rule ``fit_<extractor>`` (one for all: a rule defined in a loop
#: must not name the loop's variable in its shell line, which Snakemake formats at run time)
FIT_SHELL = (
    f"python -m {FIT_MODULE} {{params.extractor}} {{output.meta:q}} {{params.inputs}}"
    " --config {params.cfg:q} --classes {params.classes:q} --threads {threads} > {log:q} 2>&1"
)


def _fit_input_argv(extractor: str, named) -> list[str]:
    """``--<kind> files...`` for each input kind the extractor's registry
    :class:`~emoflow.features.registry.Fit` reads, in its order; ``named`` gives a kind's
    file(s) by key (a dict) or attribute (a rule's named inputs)."""
    from emoflow.features.registry import entry

    argv = []
    for kind in entry(extractor).fit.inputs:
        files = named.get(kind, []) if isinstance(named, dict) else getattr(named, kind, [])
        argv += [f"--{kind}", *(str(p) for p in ([files] if isinstance(files, str) else files))]
    return argv


def fit_input_args(extractor: str, named) -> str:
    """The same, shell-quoted (the fit rule's ``params.inputs``)."""
    import shlex

    return shlex.join(_fit_input_argv(extractor, named))


def fit_argv(extractor: str, out: str, inputs: dict[str, list[str]], config: str, classes: str, threads: int):
    """``[module, *arguments]`` of the same fit outside the workflow (bench, tests)."""
    tail = ["--config", config, "--classes", classes, "--threads", str(int(threads))]
    return [FIT_MODULE, extractor, str(out), *_fit_input_argv(extractor, inputs), *tail]


def chunk_commands(L, shard: str, manifest: str, config, threads, stages) -> list[tuple[str, list[str]]]:
    """(rule, argv) of one chunk of videos outside the workflow (the predictor, ``emoflow
    similar``): its shard sheet (one shard), then the media stages ``stages`` (of probe,
    frames, audio, faces, asr, in that order) on the chunk's :class:`Layout` ``L``;
    ``config(rule)`` gives a stage's JSON config slice, ``threads(rule)`` its thread count."""
    s = shard
    sheet, probe = L.sheet(s), L.probe(s)
    args = {
        "probe": {"sheet": sheet, "table": probe, "skips": L.skips("probe", s)},
        "frames": {"sheet": sheet, "probe": probe, "table": L.frames(s), "skips": L.skips("frames", s)},
        "audio": {
            "sheet": sheet,
            "probe": probe,
            "index": L.audio_index(s),
            "wavs": L.audio_wavs(s),
            "skips": L.skips("audio", s),
        },
        "faces": {
            "sheet": sheet,
            "probe": probe,
            "frames": L.frames(s),
            "faces": L.faces(s),
            "videos": L.face_videos(s),
            "crops": L.crops(s),
            "skips": L.skips("faces", s),
        },
        "asr": {"index": L.audio_index(s), "wavs": L.audio_wavs(s), "table": L.text(s), "skips": L.skips("asr", s)},
    }
    unknown = set(stages) - set(args)
    if unknown:
        raise ValueError(f"not a media stage of a chunk: {sorted(unknown)}")
    sharding = '{"sharding": {"n_shards": 1}}'
    out = [("shard_sheet", STAGES["shard_sheet"].argv(sharding, manifest=manifest, shard=s, sheet=sheet))]
    for rule in (r for r in args if r in stages):
        out.append((rule, STAGES[rule].argv(config(rule), threads(rule), **args[rule])))
    return out
