"""The ``emoflow`` command.

  emoflow run [SNAKEMAKE ARGS]      run the workflow (snakemake -s <repo>/Snakefile ...)
  emoflow predict VIDEO... --bundle RUN --out DIR
                                    emotions of new videos from a trained run (see -h)
  emoflow validate [-c CONFIG ...]  validate config(s) and the manifest; print a summary
  emoflow manifest CORPUS ROOT -o manifest.csv
                                    a manifest from a corpus folder: ravdess, cremad, folder
                                    (see -h; files that do not fit are listed beside it)
  emoflow shards MANIFEST -n N      show which shard each video goes to
  emoflow similar --run RESULTS QUERY [--k 10]
                                    faces of a run closest in expression to an image or video
  emoflow demo OUTDIR               generate the demo corpus
  emoflow probe|frames|faces|features|... ARGS
                                    run one stage on one shard (what its rule calls)
  emoflow fit EXTRACTOR OUT --<kind> FILES... --config JSON
                                    fit a fitted extractor's model (what rule fit_<extractor> calls)

Stage modules are imported only when their command runs.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

from emoflow import __version__
from emoflow.errors import EmoflowError
from emoflow.workflow.stages import STAGES as SHARD_STAGES

#: `emoflow <command>`: every per-shard stage (emoflow.workflow.stages) and the other entry points
STAGES = {
    **{s.command: s.module for s in SHARD_STAGES.values() if s.command},
    "manifest": "emoflow.dataset.corpora",
    "demo": "emoflow.demo.generate",
    "media-summary": "emoflow.media.summary",
    "predict": "emoflow.predict.cli",
    "bundle": "emoflow.predict.bundle",
    "similar": "emoflow.similarity.search",
    "e2e": "emoflow.e2e.stage",
    "fit": "emoflow.features.fit",  # what every fit_<extractor> rule runs
}


def _validate(args) -> int:
    from collections import Counter

    from emoflow.config import load_config, repo_root
    from emoflow.dataset import labels, shards
    from emoflow.dataset.manifest import validate_manifest

    configs = args.config or [str(repo_root() / "config.yaml")]
    if args.config and not args.no_default:
        configs = [str(repo_root() / "config.yaml"), *args.config]
    cfg = load_config(configs)
    print(f"config OK: {' + '.join(configs)}")
    manifest = args.manifest or (cfg["dataset"]["manifest"] if cfg["dataset"]["source"] == "manifest" else None)
    if manifest is None and cfg["dataset"]["source"] == "corpus":
        import tempfile

        from emoflow.dataset import corpora

        c = cfg["dataset"]["corpus"]
        found = corpora.scan(c["adapter"], c["root"], {k: v for k, v in c.items() if k not in ("adapter", "root")})
        print(found.summary())
        if found.rows.empty:
            raise EmoflowError(f"corpus root {found.root} holds no {c['adapter']} files to use")
        with tempfile.TemporaryDirectory(prefix="emoflow-validate-") as tmp:
            written, _ = corpora.write(found, Path(tmp) / "manifest.csv", absolute=True)
            df = validate_manifest(written, labels.classes(cfg), cfg["dataset"]["require_labels"])
        manifest = f"{c['adapter']} corpus at {found.root}"
    elif manifest is None:
        print("dataset.source is 'demo': the workflow generates its manifest")
        return 0
    else:
        df = validate_manifest(manifest, labels.classes(cfg), cfg["dataset"]["require_labels"])
    n = cfg["sharding"]["n_shards"]
    plan = shards.plan(df, n)
    print(f"manifest OK: {manifest}: {len(df)} videos")
    for split, count in sorted(Counter(df["split"]).items()):
        by_label = Counter(df.loc[df["split"] == split, "label"])
        print(f"  {split or '(none)':>7}: {count:6d}  " + ", ".join(f"{k}={v}" for k, v in sorted(by_label.items())))
    sizes = [len(v) for v in plan.values()]
    print(f"shards: {len(plan)} non-empty of {n}, {min(sizes)}-{max(sizes)} videos each")
    return 0


def _shards(args) -> int:
    from emoflow.dataset import shards
    from emoflow.dataset.manifest import validate_manifest

    df = validate_manifest(args.manifest, None, require_labels=False, check_files=not args.no_check_files)
    out = df[["video_id"]].assign(shard=shards.assign(df["video_id"], args.n_shards))
    out.to_csv(sys.stdout, index=False, sep="\t")
    return 0


def _run(argv) -> int:
    from emoflow.config import repo_root

    snakefile = repo_root() / "Snakefile"
    if not snakefile.is_file():
        raise EmoflowError(f"no Snakefile at {snakefile}: 'emoflow run' needs a source checkout")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), *argv]
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="emoflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--version", action="version", version=f"emoflow {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the workflow; other arguments go to snakemake", add_help=False)
    v = sub.add_parser("validate", help="validate config(s) and the manifest")
    v.add_argument("-c", "--config", action="append", help="config file(s) merged over config.yaml (repeatable)")
    v.add_argument("--no-default", action="store_true", help="do not start from the repo's config.yaml")
    v.add_argument("manifest", nargs="?", help="manifest to check (default: the config's)")
    s = sub.add_parser("shards", help="print each video's shard")
    s.add_argument("manifest")
    s.add_argument("-n", "--n-shards", type=int, required=True)
    s.add_argument("--no-check-files", action="store_true", help="do not require the media files to exist")
    for name in STAGES:
        sub.add_parser(name, help=f"stage entry point ({STAGES[name]}); see 'emoflow {name} -h'", add_help=False)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    try:
        if argv[0] == "run":
            return _run(argv[1:])
        if argv[0] in STAGES:
            return importlib.import_module(STAGES[argv[0]]).main(argv[1:]) or 0
        args = parser.parse_args(argv)
        return {"validate": _validate, "shards": _shards}[args.command](args)
    except EmoflowError as exc:
        print(f"emoflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
