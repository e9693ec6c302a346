"""emoflow.workflow: one owner of a run's paths (layout) and of each per-shard stage's
command line (stages).  The rules' shell lines, rendered by Snakemake itself in a dry run
of the demo (with an e2e network, so every per-shard stage has jobs), must be exactly
each stage's argv on the run's layout; the predictor builds the same argv."""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from emoflow.cli import STAGES as CLI_STAGES
from emoflow.faces.read import iter_crops
from emoflow.features import registry
from emoflow.workflow.layout import INPUT_KINDS, SHARD, Layout
from emoflow.features.fit import parser as fit_parser
from emoflow.workflow.stages import FIT_MODULE, STAGES, fit_argv

REPO = Path(__file__).resolve().parents[1]


def test_layout_names_one_path_per_fact_and_keeps_wildcards():
    L = Layout("results/x")
    assert L.frames("s003") == "results/x/frames/s003.parquet"
    assert L.frames() == "results/x/frames/{shard}.parquet" and SHARD == "{shard}"
    assert L.skips("faces", "s1") == "results/x/skips/faces/s1.parquet"
    assert L.feature_skips("hog", "s1") == "results/x/skips/features/hog/s1.parquet"
    assert L.features("{name}") == "results/x/features/{name}/{shard}.parquet"
    assert L.fitted("frame_cnn", "frame_cnn") == "results/x/models/frame_cnn/frame_cnn.json"
    assert L.inputs("audio", "s0") == ["results/x/audio/s0.parquet", "results/x/audio/s0"]
    with pytest.raises(ValueError, match="unknown extractor input kind 'video'"):
        L.inputs("video")
    # every registry input kind has a layout, and the crop inputs come in the reader's order
    assert {e.input for e in registry.REGISTRY.values()} <= set(INPUT_KINDS)
    assert list(inspect.signature(iter_crops).parameters)[:4] == ["sheet", "videos", "crops", "faces"]
    assert INPUT_KINDS["crops"] == ("sheet", "face_videos", "crops", "faces")


def test_stage_argv_checks_its_arguments():
    frames = STAGES["frames"]
    argv = frames.argv("{}", 3, sheet="a", probe="b", table="c", skips="d")
    assert argv == ["emoflow.media.frames", "a", "b", "c", "d", "--config", "{}", "--threads", "3"]
    with pytest.raises(TypeError, match="arguments"):
        frames.argv("{}", 1, sheet="a", probe="b", table="c")
    feats = STAGES["features"].argv("{}", 1, name="hog", table="t", skips="s", data=["x", "y"])
    assert feats[1:6] == ["hog", "t", "s", "x", "y"]


def test_cli_and_bundle_use_the_stage_table():
    for stage in STAGES.values():
        assert CLI_STAGES[stage.command] == stage.module
    from emoflow.predict.bundle import code_modules

    mods = code_modules({}, need_asr=True, e2e=True)
    for rule in ("probe", "frames", "audio", "faces", "features", "asr", "e2e_tta"):
        assert STAGES[rule].module in mods


def _dry_run_jobs(workdir: Path, *extra: str) -> list[dict]:
    """(rule, wildcards, shell argv) of every job of a forced dry run."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "-n",
            "-p",
            "--forceall",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", out):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        if not rule or not shell:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        jobs.append({"rule": rule.group(1), "wildcards": wildcards, "argv": shlex.split(shell.group(1))})
    return jobs


def _expected(rule: str, wildcards: dict, argv: list[str], L: Layout) -> list[str]:
    """What the stage table says the job runs, from the layout of the run alone."""
    s = wildcards.get("shard")
    opt = lambda flag: argv[argv.index(flag) + 1] if flag in argv else None  # noqa: E731
    values = {
        "shard_sheet": lambda: {"manifest": argv[3], "shard": s, "sheet": L.sheet(s)},
        "probe": lambda: {"sheet": L.sheet(s), "table": L.probe(s), "skips": L.skips("probe", s)},
        "frames": lambda: {
            "sheet": L.sheet(s),
            "probe": L.probe(s),
            "table": L.frames(s),
            "skips": L.skips("frames", s),
        },
        "audio": lambda: {
            "sheet": L.sheet(s),
            "probe": L.probe(s),
            "index": L.audio_index(s),
            "wavs": L.audio_wavs(s),
            "skips": L.skips("audio", s),
        },
        "faces": lambda: {
            "sheet": L.sheet(s),
            "probe": L.probe(s),
            "frames": L.frames(s),
            "faces": L.faces(s),
            "videos": L.face_videos(s),
            "crops": L.crops(s),
            "skips": L.skips("faces", s),
        },
        "asr": lambda: {
            "index": L.audio_index(s),
            "wavs": L.audio_wavs(s),
            "table": L.text(s),
            "skips": L.skips("asr", s),
        },
        "features": lambda: {
            "name": wildcards["name"],
            "table": L.features(wildcards["name"], s),
            "skips": L.feature_skips(wildcards["name"], s),
            "data": L.inputs(_kind(wildcards["name"], opt("--config")), s),
        },
        "e2e_tta": lambda: {
            "name": argv[3],
            "table": L.e2e_tta(f"{wildcards['table']}_tta", s),
            "crops": L.crop_inputs(s),
        },
    }[rule]()
    threads = int(opt("--threads")) if opt("--threads") else None
    return ["python", "-m", *STAGES[rule].argv(opt("--config"), threads, **values), ">", argv[-2], "2>&1"]


def _kind(name: str, config: str) -> str:
    return registry.entry(json.loads(config)["features"][name]["extractor"]).input


def test_every_stage_rule_runs_the_stage_table_argv(tmp_path):
    cfg = tmp_path / "e2e.yaml"
    cfg.write_text("e2e:\n  e2e: {audio: logmel, face: frame_cnn}\n")
    jobs = _dry_run_jobs(tmp_path, "--configfile", str(cfg))
    L = Layout("results/demo")
    seen = {}
    for job in jobs:
        if job["rule"] not in STAGES:
            continue
        assert job["argv"] == _expected(job["rule"], job["wildcards"], job["argv"], L), job["rule"]
        seen[job["rule"]] = seen.get(job["rule"], 0) + 1
    assert set(seen) == set(STAGES), f"rules without a job in the dry run: {set(STAGES) - set(seen)}"
    assert seen["features"] >= 10 and seen["faces"] >= 2
    # the fit rules (one definition, rules/features.smk): the fit command with the fit's JSON
    # on the layout and exactly the input kinds its registry Fit names, each parsed back
    fits = {j["rule"]: j for j in jobs if j["rule"].startswith("fit_")}
    assert {"fit_tfidf", "fit_audio_cnn", "fit_frame_cnn", "fit_c3d"} <= set(fits)
    for rule, job in fits.items():
        x, name, argv = rule[len("fit_") :], job["wildcards"]["name"], job["argv"]
        assert argv[:5] == ["python", "-m", FIT_MODULE, x, L.fitted(x, name)]
        kinds = registry.entry(x).fit.inputs
        assert [a[2:] for a in argv if a.startswith("--") and a[2:] in registry.FIT_INPUTS] == list(kinds)
        args = fit_parser().parse_args(argv[3:-3])
        inputs = {k: getattr(args, k) for k in kinds}
        assert argv[2:-3] == fit_argv(x, L.fitted(x, name), inputs, args.config, args.classes, args.threads)
        assert argv[-2] == L.log(f"fit_{x}", name)
