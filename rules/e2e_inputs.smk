# Input functions and settings of rules/e2e.smk (end-to-end multimodal networks,
# emoflow.e2e), kept apart from the rules as rules/common.smk is.
import re  # noqa: E402

from emoflow.e2e import spec as e2e_spec  # noqa: E402


def _e2e_specs():
    """e2e.<name> entries, defaults filled and checked against the features configured."""
    out = {}
    for name, entry in (CFG.get("e2e") or {}).items():
        if entry is None:
            continue
        where = f"{_CONFIG_SOURCE}: e2e.{name}"
        if name in EXPERIMENTS:
            raise WorkflowError(
                f"{where}: an experiment of that name exists (e2e entries are experiments too)"
            )
        try:
            s = e2e_spec.resolve(entry)
        except ValueError as exc:
            raise WorkflowError(f"{where}: {exc}") from None
        for branch, modality in (("audio", "audio"), ("face", "face")):
            feat = s[branch]
            if not feat:
                continue
            if feat not in FEATURES_ALL:
                raise WorkflowError(
                    f"{where}: {branch}: {feat!r} is not a configured feature"
                )
            have = registry.modality(FEATURES_ALL[feat]["extractor"])
            if have != modality:
                raise WorkflowError(f"{where}: {branch}: {feat!r} is a {have} feature")
        if e2e_spec.uses_tta(s) and FEATURES_ALL[s["face"]]["extractor"] != "frame_cnn":
            raise WorkflowError(
                f"{where}: tta needs a frame_cnn face feature ({s['face']!r} is not one); set tta: null"
            )
        out[name] = s
    return out


E2E_SPECS = _e2e_specs()


def _alternatives(names):
    """A regex matching exactly these names (none: nothing)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


def e2e_tables(name, part):
    """Feature table names an e2e experiment reads in partition ``part``: audio, face, and
    the face transform cache (None where absent)."""
    s = E2E_SPECS[name]
    audio = feature_of(s["audio"], part) if s["audio"] else None
    face = feature_of(s["face"], part) if s["face"] else None
    tta = e2e_spec.tta_table(face) if e2e_spec.uses_tta(s) else None
    return {"audio": audio, "face": face, "tta": tta}


def e2e_table_files(table):
    """One table's shard files (a transform cache lives under e2e/tta/)."""
    if table.endswith("_tta") and table.removesuffix("_tta") in E2E_TTA_TABLES:
        return per_shard(f"{OUT}/e2e/tta/{table}/{{shard}}.parquet")
    return per_shard(f"{OUT}/features/{table}/{{shard}}.parquet")


def e2e_inputs(wildcards):
    """The shard tables of the audio feature and of the face feature (or its transform cache)."""
    t = e2e_tables(wildcards.experiment, wildcards.part)
    face = t["tta"] or t["face"]
    return {
        "audio": e2e_table_files(t["audio"]) if t["audio"] else [],
        "face": e2e_table_files(face) if face else [],
    }


def e2e_config(wildcards):
    t = e2e_tables(wildcards.experiment, wildcards.part)
    return json.dumps(
        {
            "e2e": E2E_SPECS[wildcards.experiment],
            "classes": CLASSES,
            "audio_table": t["audio"],
            "face_table": t["face"],
            "tta_table": t["tta"],
        },
        sort_keys=True,
    )


def e2e_args(wildcards, input):
    """--audio / --face arguments (left out when the branch is off)."""
    parts = []
    for key in ("audio", "face"):
        files = list(getattr(input, key))
        if files:
            parts.append(f"--{key} " + " ".join(shlex.quote(f) for f in files))
    return " ".join(parts)


# the frame_cnn tables some e2e experiment reads under the face transforms (per fold under k-fold)
E2E_TTA_TABLES = sorted(
    {
        e2e_tables(n, part)["face"]
        for n in E2E_SPECS
        for part in PARTS
        if e2e_tables(n, part)["tta"]
    }
)


def e2e_tta_inputs(wildcards):
    """The shard's crops (as rule features reads them) and the frame CNN fit."""
    meta = fitted_model(wildcards.table)
    return {
        "crops": crop_inputs(wildcards.shard),
        "model": [meta, str(Path(meta).with_suffix(".pt"))],
    }


def e2e_tta_config_of(table):
    """Rule features' config slice of the frame_cnn table, keyed by its cache's name, plus
    the transforms (the seed's 12, always: TTA and training pick among them)."""
    cfg = json.loads(feature_config(SimpleNamespace(name=table)))
    cfg["features"] = {e2e_spec.tta_table(table): cfg["features"][table]}
    cfg["transforms"] = list(e2e_spec.SEED_TRANSFORMS)
    return json.dumps(cfg, sort_keys=True)


def e2e_tta_config(wildcards):
    return e2e_tta_config_of(wildcards.table)


def e2e_bundle_files(name):
    """An e2e experiment's fitted files in the bundle partition (as _bundle_files)."""
    part = BUNDLE_PART
    return {
        "model": f"{OUT}/models/classify/{part}/{name}.model",
        "report": f"{OUT}/models/classify/{part}/{name}.json",
        "predictions": f"{OUT}/predictions/{part}/{name}.parquet",
    }


def e2e_bundle_features(name):
    """Bundle feature entries an e2e experiment needs: its audio and face features and, with
    TTA, the transform cache (run by emoflow.e2e.tta: ``stage: e2e_tta``)."""
    s, t = E2E_SPECS[name], e2e_tables(name, BUNDLE_PART)
    out = {f: _bundle_feature(f) for f in (s["audio"], s["face"]) if f}
    if t["tta"]:
        out[e2e_spec.tta_table(s["face"])] = {
            "extractor": "frame_cnn",
            "input": "crops",
            "modality": "face",
            "table": t["tta"],
            "config": e2e_tta_config_of(t["face"]),
            "model": fitted_model(t["face"]),
            "stage": "e2e_tta",
        }
    return out


def e2e_bundle_entry(name):
    """The bundle spec's entry of an e2e experiment (emoflow.predict.bundle.export)."""
    s = E2E_SPECS[name]
    return {
        "kind": "e2e",
        "feature": name,
        "features": {
            "audio": s["audio"],
            "face": s["face"],
            "tta": e2e_spec.tta_table(s["face"]) if e2e_spec.uses_tta(s) else None,
        },
        "encoding": None,
        "modality": e2e_spec.modality(s),
        "classifier": {"type": "e2e", **s},
        **e2e_bundle_files(name),
    }


def e2e_deployment_tables(name, part):
    """Every shard file an e2e experiment reads (rule deployments rescores it)."""
    t = e2e_tables(name, part)
    return [
        p for key in ("audio", "face", "tta") if t[key] for p in e2e_table_files(t[key])
    ]
