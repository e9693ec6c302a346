# Config validation, the video plan (manifest -> shards) and every input function.
# Only this file imports emoflow at parse time; rules call `python -m emoflow.<stage>`.
import hashlib
import json
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
from emoflow.dataset import corpora, labels, shards as sharding, splits  # noqa: E402
from emoflow.dataset.manifest import validate_manifest  # noqa: E402
from emoflow.demo.generate import plan as demo_plan  # noqa: E402
from emoflow.errors import EmoflowError  # noqa: E402
from emoflow.features import registry  # noqa: E402

_CONFIG_SOURCE = " + ".join(str(p) for p in workflow.configfiles) or "config"
try:
    CFG = finalize(config, source=_CONFIG_SOURCE, base_dir=workflow.basedir)
except EmoflowError as exc:
    raise WorkflowError(str(exc)) from None

OUT = CFG["outdir"]
ENVS = str(Path(workflow.basedir) / "envs")
DEMO = CFG["dataset"]["source"] == "demo"
CORPUS = CFG["dataset"]["source"] == "corpus"  # a corpus folder, read by its adapter
GPU = 1 if CFG["gpu"] else 0  # resources: gpu= of GPU-capable rules


def env(name):
    """The conda env file of one modality (envs/<name>.yaml)."""
    return f"{ENVS}/{name}.yaml"


def code(*modules):
    """Source files a stage runs (its modules and every emoflow module they import)."""
    return codedeps.source_files(*modules)


def corpus_options():
    """The corpus adapter's options (dataset.corpus without adapter and root)."""
    c = CFG["dataset"]["corpus"]
    return {k: v for k, v in c.items() if k not in ("adapter", "root")}


def _scan_corpus():
    """The manifest rule's rows, found now (rule manifest writes the same rows)."""
    c = CFG["dataset"]["corpus"]
    try:
        found = corpora.scan(c["adapter"], c["root"], corpus_options())
    except EmoflowError as exc:
        raise WorkflowError(f"{_CONFIG_SOURCE}: dataset.corpus: {exc}") from None
    if found.rows.empty:
        raise WorkflowError(
            f"{_CONFIG_SOURCE}: corpus root {found.root} holds no {c['adapter']} files to use\n{found.summary()}"
        )
    classes = labels.classes(CFG)
    wrong = sorted(set(found.rows["label"]) - set(classes))
    if wrong:
        raise WorkflowError(
            f"{_CONFIG_SOURCE}: the {c['adapter']} adapter gives labels {wrong}, not in label space "
            f"{CFG['dataset']['label_space']!r} ({', '.join(classes)}): set dataset.corpus.labels or dataset.label_space"
        )
    if len(found.unmatched):
        print(
            f"emoflow: {len(found.unmatched)} media file(s) under {found.root} do not fit the {c['adapter']} naming "
            f"or repeat a recording: left out, listed in {OUT}/manifest/manifest.unmatched.csv",
            file=sys.stderr,
        )
    return f"{OUT}/manifest/manifest.csv", found.rows


def _plan_videos():
    """The manifest's videos (paths absolute), before anything runs."""
    if DEMO:
        rows = demo_plan(CFG["demo"])
        rows["path"] = [str(Path(OUT, "demo", p).resolve()) for p in rows["path"]]
        return f"{OUT}/demo/manifest.csv", rows
    if CORPUS:
        return _scan_corpus()
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
CORPUS_DIGEST = (
    hashlib.sha1(VIDEOS.to_csv(index=False).encode("utf-8")).hexdigest()
    if CORPUS
    else ""
)
SHARDS = sharding.plan(VIDEOS, CFG["sharding"]["n_shards"])
DIGESTS = {name: sharding.sheet_digest(rows) for name, rows in SHARDS.items()}


wildcard_constraints:
    shard=r"s\d+",
    name=r"[A-Za-z0-9_]+",
    part=r"main|f\d+",
    experiment=r"[A-Za-z0-9_]+",
    group=r"[A-Za-z0-9_]+",
    encoding=r"[A-Za-z0-9_]+",


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


FEATURES = CFG["features"]
FEATURES_ALL = dict(FEATURES)  # as configured (before any per-fold expansion below)
for _name, _params in FEATURES.items():
    try:
        registry.entry(_params["extractor"])
    except KeyError as exc:
        raise WorkflowError(
            f"{_CONFIG_SOURCE}: features.{_name}: {exc.args[0]}"
        ) from None


# --- evaluation partitions (emoflow.dataset.splits) -------------------------------
EVAL = CFG["evaluation"]
try:
    PARTS = splits.partitions(EVAL, VIDEOS)
    PROTOCOL = splits.describe(EVAL, VIDEOS)  # None unless a protocol is named
except EmoflowError as exc:
    raise WorkflowError(f"{_CONFIG_SOURCE}: evaluation: {exc}") from None
PROTOCOL_FILES = [
    str(p) for p in [splits.protocol_file(EVAL.get("protocol"))] if p is not None
]
KFOLD = EVAL["scheme"] != "fixed"  # kfold or protocol: every fitted step once per fold
CLASSES = labels.classes(CFG)


def _labels_digest():
    """What the partitions read from the manifest (a change reruns the splits)."""
    cols = [c for c in ("video_id", "label", "split", "speaker") if c in VIDEOS]
    return hashlib.sha1(VIDEOS[cols].to_csv(index=False).encode("utf-8")).hexdigest()


LABELS_DIGEST = _labels_digest()


def _fits_on_labels(params):
    """Fitted on this dataset's training labels (so, under k-fold, once per fold)."""
    if not registry.entry(params["extractor"]).fitted:
        return False
    if params.get("model_from"):  # applies another entry's fit
        return _fits_on_labels(FEATURES[params["model_from"]])
    if (
        params["extractor"] == "frame_cnn"
    ):  # FER2013 / an image folder: no dataset labels
        return (params.get("train") or {}).get("source", "crops") == "crops"
    return True


# Under k-fold a label-fitted extractor becomes one feature per fold, "<name>__<part>",
# fitted on that partition's training split (rules fit_*) and extracted with it.
PER_FOLD = {}
FOLD_OF = {}
if KFOLD:
    for _name, _params in list(FEATURES.items()):
        if _fits_on_labels(_params):
            del FEATURES[_name]
            PER_FOLD[_name] = {}
            for _part in PARTS:
                FEATURES[f"{_name}__{_part}"] = _params
                PER_FOLD[_name][_part] = f"{_name}__{_part}"
                FOLD_OF[f"{_name}__{_part}"] = _part


def feature_of(name, part):
    """The feature table name that experiments of partition ``part`` read."""
    return PER_FOLD.get(name, {}).get(part, name)


def fit_manifest(wildcards):
    """The manifest read by the fit of a feature: the partition's under k-fold, else the
    dataset's. A fit that reads no dataset labels (a frame CNN trained on FER2013 or an
    image folder) gets it ancient: adding videos to the corpus does not retrain it."""
    part = FOLD_OF.get(wildcards.name)
    if part:
        return f"{OUT}/splits/{part}.csv"
    return MANIFEST if _fits_on_labels(FEATURES[wildcards.name]) else ancient(MANIFEST)


def _feature(wildcards):
    return registry.entry(FEATURES[wildcards.name]["extractor"])


def feature_inputs(wildcards):
    """What an extractor reads for one shard, by its registry input kind."""
    kind = _feature(wildcards).input
    if kind == "audio":
        return [
            f"{OUT}/audio/{wildcards.shard}.parquet",
            f"{OUT}/audio/{wildcards.shard}",
        ]
    if kind == "transcripts":
        return [f"{OUT}/text/{wildcards.shard}.parquet"]
    if kind == "crops":
        return crop_inputs(wildcards.shard)
    if kind == "frames":
        return [
            f"{OUT}/shards/{wildcards.shard}.parquet",
            f"{OUT}/frames/{wildcards.shard}.parquet",
        ]
    raise WorkflowError(f"features.{wildcards.name}: unknown input kind {kind!r}")


def crop_inputs(shard):
    """One shard's face-stage outputs, in the order emoflow.features.base.iter_crops takes."""
    return [
        f"{OUT}/shards/{shard}.parquet",
        f"{OUT}/faces/{shard}.videos.parquet",
        f"{OUT}/crops/{shard}.parquet",
        f"{OUT}/faces/{shard}.parquet",
    ]


def all_crop_inputs():
    """crop_inputs of every shard, shard after shard (what fit rules of visual models read)."""
    return [p for shard in sorted(SHARDS) for p in crop_inputs(shard)]


def data_path(value):
    """A config path that may name the shared data root ({data_root}/...)."""
    return value.replace("{data_root}", CFG["data_root"]) if value else value


def train_crops(wildcards):
    """Every shard's crops when a frame CNN learns from the training split's own faces
    (one trained on FER2013 or an image folder does not rerun when they change)."""
    train = FEATURES[wildcards.name].get("train") or {"source": "crops"}
    return all_crop_inputs() if train.get("source", "crops") == "crops" else []


def train_images(wildcards):
    """The image set a frame CNN trains on, when it is a file or folder (not the crops)."""
    train = FEATURES[wildcards.name].get("train", {})
    return [data_path(train["path"])] if train.get("path") else []


def _targets(name):
    return (FEATURES[name].get("training") or {}).get("targets", "hard")


def train_votes(wildcards):
    """The FER+ votes a frame CNN learns from (training.targets votes / uncertainty)."""
    if _targets(wildcards.name) == "hard":
        return []
    votes = (FEATURES[wildcards.name].get("training") or {}).get("votes")
    return [data_path(votes or "{data_root}/ferplus/ferplus_votes.parquet")]


def frame_cnn_fit_config(wildcards):
    """A frame_cnn entry for its fit; label-distribution targets get the FER+ -> FER2013
    class map (hard-label entries are passed exactly as before)."""
    entry = {**FEATURES[wildcards.name], "data_root": CFG["data_root"]}
    if _targets(wildcards.name) != "hard":
        entry["training"] = {
            **entry["training"],
            "label_map": labels.label_map(CFG, "ferplus8", "fer2013"),
        }
    return json.dumps(entry, sort_keys=True)


def init_checkpoint(wildcards):
    """A user checkpoint a fitted model starts from (editing it reruns the fit)."""
    init = FEATURES[wildcards.name].get("init")
    return [data_path(init)] if init else []


def fitted_model(name):
    """Where the fit of a fitted extractor lands (rules fit_<extractor>); an entry with
    ``model_from: <feature>`` applies that feature's fit (same fold under k-fold)."""
    src = FEATURES[name].get("model_from") or name
    if src != name and name in FOLD_OF:
        src = f"{src}__{FOLD_OF[name]}"
    return f"{OUT}/models/{FEATURES[src]['extractor']}/{src}.json"


def feature_model(wildcards):
    """The training-split fit a fitted extractor applies (TF-IDF vocabulary, audio CNN)."""
    return [fitted_model(wildcards.name)] if _feature(wildcards).fitted else []


def feature_code(wildcards):
    return code(_feature(wildcards).module, "emoflow.features.base")


def feature_env(wildcards):
    return env(_feature(wildcards).env)


def feature_gpu(wildcards):
    return GPU if _feature(wildcards).gpu else 0


def feature_config(wildcards):
    """This extractor's config slice (JSON), with its fitted model's path."""
    params = dict(FEATURES[wildcards.name])
    params.pop("model_from", None)  # workflow-level: which fit to apply
    if _feature(wildcards).fitted:
        params["model"] = fitted_model(wildcards.name)
    cfg = {
        "features": {wildcards.name: params},
        "feature_inputs": CFG["feature_inputs"],
    }
    if _feature(wildcards).input == "crops":  # how the crops were made
        cfg["crops"] = {
            k: CFG["faces"][k] for k in ("color_size", "grey_size", "margin")
        }
    return json.dumps(cfg, sort_keys=True)


ASR = CFG["asr"]["enabled"] or any(
    registry.entry(p["extractor"]).input == "transcripts" for p in FEATURES.values()
)


def audio_inputs():
    """Every shard's audio index and wav folder, as pairs."""
    return [
        p
        for shard in sorted(SHARDS)
        for p in (f"{OUT}/audio/{shard}.parquet", f"{OUT}/audio/{shard}")
    ]


# --- experiments, fusion, report ---------------------------------------------------
EXPERIMENTS = CFG["experiments"]
# end-to-end networks (rules/e2e.smk, emoflow.e2e): experiments too, fitted by rule e2e
E2E = sorted(n for n, e in CFG["e2e"].items() if e is not None)
FUSED = CFG["fusion"]["experiments"] or sorted([*EXPERIMENTS, *E2E])
# the experiment wildcard of the classify rule: never an e2e name
CLASSIFY_NAMES = "|".join(sorted(EXPERIMENTS)) or "(?!)"


def _experiment(wildcards):
    return EXPERIMENTS[wildcards.experiment]


def _is_sequence(exp):
    return CFG["classifiers"][exp["classifier"]]["type"] == "sequence"


def encoded_inputs(wildcards):
    """The frame-level feature's shard tables an encoding reads."""
    name = feature_of(wildcards.name, wildcards.part)
    return per_shard(f"{OUT}/features/{name}/{{shard}}.parquet")


def experiment_inputs(wildcards):
    """An experiment's feature: encoded vectors, or the shard tables themselves."""
    exp = _experiment(wildcards)
    if exp.get("encoding"):
        return (
            f"{OUT}/encoded/{wildcards.part}/{exp['feature']}.{exp['encoding']}.parquet"
        )
    name = feature_of(exp["feature"], wildcards.part)
    return per_shard(f"{OUT}/features/{name}/{{shard}}.parquet")


def experiment_config(wildcards):
    """The experiment's slice: its classifier spec, classes and the evaluation settings."""
    exp = _experiment(wildcards)
    return json.dumps(
        {
            "feature": exp["feature"],
            "encoding": exp.get("encoding"),
            "modality": registry.modality(FEATURES_ALL[exp["feature"]]["extractor"]),
            "classifier": CFG["classifiers"][exp["classifier"]],
            "normalize": exp.get("normalize") or "none",
            "classes": CLASSES,
            "evaluation": {k: EVAL[k] for k in ("metric", "seed", "cv_folds")},
        },
        sort_keys=True,
    )


def experiment_gpu(wildcards):
    return GPU if _is_sequence(_experiment(wildcards)) else 0


def predictions(part):
    return expand(f"{OUT}/predictions/{part}/{{experiment}}.parquet", experiment=FUSED)


def experiment_reports(part):
    return expand(f"{OUT}/models/classify/{part}/{{experiment}}.json", experiment=FUSED)


GROUPS = CFG["fusion"]["groups"]


def fusion_config(wildcards):
    fusion = CFG["fusion"]
    return json.dumps(
        {
            "name": wildcards.group,
            "group": GROUPS[wildcards.group],
            "classes": CLASSES,
            "methods": fusion["methods"],
            "step": fusion["step"],
            "folds": fusion["folds"],
            "evaluation": {k: EVAL[k] for k in ("metric", "seed")},
        },
        sort_keys=True,
    )


def fusion_outputs():
    return expand(
        f"{OUT}/fusion/{{part}}/{{group}}.json", part=PARTS, group=sorted(GROUPS)
    )


def targets():
    return [
        f"{OUT}/report/media_summary.json",
        f"{OUT}/report/faces_summary.json",
        *skip_tables("faces", *(["asr"] if ASR else [])),
        *(per_shard(f"{OUT}/text/{{shard}}.parquet") if ASR else []),
        *expand(
            f"{OUT}/features/{{name}}/{{shard}}.parquet",
            name=sorted(FEATURES),
            shard=sorted(SHARDS),
        ),
        *([f"{OUT}/report/summary.csv"] if EXPERIMENTS else []),
        *similarity_targets(),  # rules/similarity.smk: the index, when the embedding is on
    ]


# --- the model bundle (rules/bundle.smk, emoflow.predict.bundle) ------------------
from types import SimpleNamespace  # noqa: E402

from emoflow.e2e import spec as e2e_spec  # noqa: E402
from emoflow.fusion.stage import select as select_experiments  # noqa: E402

BUNDLE_PART = CFG["bundle"]["part"] or PARTS[0]
BUNDLE_GROUP = CFG["bundle"]["group"] or (
    "all" if "all" in GROUPS else sorted(GROUPS)[0]
)
if BUNDLE_PART not in PARTS:
    raise WorkflowError(
        f"{_CONFIG_SOURCE}: bundle.part: {BUNDLE_PART!r} is not a partition ({PARTS})"
    )


def _bundle_experiments():
    """The group's experiments (the fusion picks its weights among them)."""
    meta = {
        n: (
            {
                "feature": n,
                "modality": e2e_spec.modality(e2e_spec.resolve(CFG["e2e"][n])),
            }
            if n in E2E
            else {
                "feature": EXPERIMENTS[n]["feature"],
                "modality": registry.modality(
                    FEATURES_ALL[EXPERIMENTS[n]["feature"]]["extractor"]
                ),
            }
        )
        for n in FUSED
    }
    return select_experiments(meta, GROUPS[BUNDLE_GROUP])


BUNDLE_EXPERIMENTS = _bundle_experiments()


def _bundle_files(name):
    """One experiment's fitted files in the bundle partition."""
    part, exp = BUNDLE_PART, EXPERIMENTS[name]
    out = {
        "model": f"{OUT}/models/classify/{part}/{name}.model",
        "report": f"{OUT}/models/classify/{part}/{name}.json",
        "predictions": f"{OUT}/predictions/{part}/{name}.parquet",
    }
    if exp.get("encoding"):
        out["encoder"] = (
            f"{OUT}/models/encode/{part}/{exp['feature']}.{exp['encoding']}.npz"
        )
    return out


def _bundle_feature(feature):
    table = feature_of(feature, BUNDLE_PART)
    extractor = FEATURES[table]["extractor"]
    entry = registry.entry(extractor)
    return {
        "extractor": extractor,
        "input": entry.input,
        "modality": registry.modality(extractor),
        "table": table,
        "config": feature_config(SimpleNamespace(name=table)),
        "model": fitted_model(table) if entry.fitted else None,
    }


def bundle_inputs(wildcards):
    files = [
        p
        for n in BUNDLE_EXPERIMENTS
        for p in (e2e_bundle_files(n) if n in E2E else _bundle_files(n)).values()
    ]
    feats = {EXPERIMENTS[n]["feature"] for n in BUNDLE_EXPERIMENTS if n not in E2E}
    models = [_bundle_feature(f)["model"] for f in sorted(feats)]
    models += [
        f["model"]
        for n in BUNDLE_EXPERIMENTS
        if n in E2E
        for f in e2e_bundle_features(n).values()
    ]
    return files + list(dict.fromkeys(m for m in models if m))


def bundle_spec(wildcards):
    """What the bundle holds (JSON), paths as the rule's inputs name them."""
    stages = {
        k: CFG[k]
        for k in ("probe", "frames", "audio", "faces", "asr", "feature_inputs")
    }
    stages["faces"] = {
        **stages["faces"],
        "hints": None,
    }  # per-video hints of this corpus
    # float results depend on thread counts (BLAS splits): predict runs each stage with its rule's
    threads = {
        r: workflow.get_rule(r).resources["_cores"].value
        for r in ("frames", "audio", "faces", "asr", "features")
    }
    feats = sorted(
        {EXPERIMENTS[n]["feature"] for n in BUNDLE_EXPERIMENTS if n not in E2E}
    )
    features = {f: _bundle_feature(f) for f in feats}
    for n in BUNDLE_EXPERIMENTS:
        if n in E2E:  # its audio and face features, and the face transform cache
            features.update(e2e_bundle_features(n))
    return json.dumps(
        {
            "part": BUNDLE_PART,
            "group": BUNDLE_GROUP,
            "group_spec": GROUPS[BUNDLE_GROUP],
            "classes": CLASSES,
            "label_space": CFG["dataset"]["label_space"],
            "fusion": f"{OUT}/fusion/{BUNDLE_PART}/{BUNDLE_GROUP}.json",
            "stages": stages,
            "threads": threads,
            "features": features,
            "experiments": {
                n: (
                    e2e_bundle_entry(n)
                    if n in E2E
                    else {
                        "feature": EXPERIMENTS[n]["feature"],
                        "encoding": EXPERIMENTS[n].get("encoding"),
                        "modality": registry.modality(
                            FEATURES_ALL[EXPERIMENTS[n]["feature"]]["extractor"]
                        ),
                        "classifier": CFG["classifiers"][EXPERIMENTS[n]["classifier"]],
                        **_bundle_files(n),
                    }
                )
                for n in BUNDLE_EXPERIMENTS
            },
        },
        sort_keys=True,
    )


def bundle_targets():
    """The bundle, when the fusion group has experiments to bundle."""
    return [f"{OUT}/bundle"] if BUNDLE_EXPERIMENTS else []


# --- test figures by deployment (rule deployments, emoflow.evaluate.deployments) --------
def deployment_encoders(part):
    """The fitted encoders of the partition's encoded experiments."""
    return sorted(
        {
            f"{OUT}/models/encode/{part}/{EXPERIMENTS[n]['feature']}.{EXPERIMENTS[n]['encoding']}.npz"
            for n in FUSED
            if n not in E2E and EXPERIMENTS[n].get("encoding")
        }
    )


def deployment_features(part):
    """The shard tables of every feature the partition's experiments read."""
    names = sorted(
        {feature_of(EXPERIMENTS[n]["feature"], part) for n in FUSED if n not in E2E}
    )
    files = [
        p
        for name in names
        for p in per_shard(f"{OUT}/features/{name}/{{shard}}.parquet")
    ]
    files += [p for n in FUSED if n in E2E for p in e2e_deployment_tables(n, part)]
    return list(
        dict.fromkeys(files)
    )  # once each: rule deployments reads them by folder


def deployment_targets():
    """Test figures by deployment, when there is a fusion to deploy."""
    return [f"{OUT}/report/deployments.json"] if BUNDLE_EXPERIMENTS else []
