"""What a validated config implies for a run, in plain Python (no Snakemake): its videos and
shards, the feature tables (one per fold for a fit on the dataset's labels under k-fold),
fits, experiments, fusion groups, the bundle and the test-by-deployment inputs, and the
config slice each stage receives.  ``rules/*.smk`` are thin wrappers around one
:class:`Plan`; tests/test_workflow_plan.py checks it directly.

A plan never changes the config it was given.  Errors are :class:`EmoflowError` naming the
config source; the workflow turns them into Snakemake's ``WorkflowError``.

Config slices: a stage receives JSON (``sort_keys``) of its own section(s)
(:func:`emoflow.config.stage_slice`), or, for the stages that take one entry of a section
(an extractor, an experiment, a fusion group, an e2e network), that entry with what the
stage needs beside it (classes, the evaluation metric, its fitted model's path).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from emoflow.data_root import VOTES_DEFAULT, data_path
from emoflow.dataset import corpora, labels, splits
from emoflow.dataset import shards as sharding
from emoflow.errors import EmoflowError
from emoflow.features import registry
from emoflow.workflow.layout import Layout


def fits_on_labels(params: dict, features: dict) -> bool:
    """Fitted on this dataset's training labels (so, under k-fold, once per fold)."""
    if not registry.entry(params["extractor"]).fitted:
        return False
    if params.get("model_from"):  # applies another entry's fit
        return fits_on_labels(features[params["model_from"]], features)
    if params["extractor"] == "frame_cnn":  # FER2013 / an image folder: no dataset labels
        return (params.get("train") or {}).get("source", "crops") == "crops"
    return True


class Plan:
    def __init__(self, cfg: dict, source: str = "config"):
        self.cfg, self.source = cfg, source
        self.out = cfg["outdir"]
        self.L = Layout(self.out)
        self.root = cfg["data_root"]
        self.demo = cfg["dataset"]["source"] == "demo"
        self.corpus = cfg["dataset"]["source"] == "corpus"  # a corpus folder, read by its adapter
        self.classes = labels.classes(cfg)
        self.manifest, self.videos = self._plan_videos()
        self.corpus_digest = (
            hashlib.sha1(self.videos.to_csv(index=False).encode("utf-8")).hexdigest() if self.corpus else ""
        )
        self.shards = sharding.plan(self.videos, cfg["sharding"]["n_shards"])
        self.digests = {name: sharding.sheet_digest(rows) for name, rows in self.shards.items()}
        self.evaluation = cfg["evaluation"]
        try:
            self.parts = splits.partitions(self.evaluation, self.videos)
            self.protocol = splits.describe(self.evaluation, self.videos)  # None unless a protocol is named
        except EmoflowError as exc:
            raise EmoflowError(f"{source}: evaluation: {exc}") from None
        self.protocol_files = [str(p) for p in [splits.protocol_file(self.evaluation.get("protocol"))] if p is not None]
        self.kfold = self.evaluation["scheme"] != "fixed"  # kfold or protocol: every fitted step once per fold
        cols = [c for c in ("video_id", "label", "split", "speaker") if c in self.videos]
        self.labels_digest = hashlib.sha1(self.videos[cols].to_csv(index=False).encode("utf-8")).hexdigest()
        self._plan_features()
        self.asr = cfg["asr"]["enabled"] or any(
            registry.entry(p["extractor"]).input == "transcripts" for p in self.features.values()
        )
        self._plan_experiments()

    # --- videos and shards -----------------------------------------------------------
    def _plan_videos(self):
        """(manifest path, the manifest's videos with absolute paths), before anything runs."""
        from emoflow.dataset.manifest import validate_manifest
        from emoflow.demo.generate import plan as demo_plan

        if self.demo:
            rows = demo_plan(self.cfg["demo"])
            rows["path"] = [str(Path(self.out, "demo", p).resolve()) for p in rows["path"]]
            return f"{self.out}/demo/manifest.csv", rows
        if self.corpus:
            return self._scan_corpus()
        manifest = self.cfg["dataset"]["manifest"]
        rows = validate_manifest(manifest, classes=self.classes, require_labels=self.cfg["dataset"]["require_labels"])
        return manifest, rows

    def corpus_options(self) -> dict:
        """The corpus adapter's options (dataset.corpus without adapter and root)."""
        return {k: v for k, v in self.cfg["dataset"]["corpus"].items() if k not in ("adapter", "root")}

    def _scan_corpus(self):
        """The manifest rule's rows, found now (rule manifest writes the same rows)."""
        c = self.cfg["dataset"]["corpus"]
        try:
            found = corpora.scan(c["adapter"], c["root"], self.corpus_options())
        except EmoflowError as exc:
            raise EmoflowError(f"{self.source}: dataset.corpus: {exc}") from None
        if found.rows.empty:
            raise EmoflowError(
                f"{self.source}: corpus root {found.root} holds no {c['adapter']} files to use\n{found.summary()}"
            )
        wrong = sorted(set(found.rows["label"]) - set(self.classes))
        if wrong:
            raise EmoflowError(
                f"{self.source}: the {c['adapter']} adapter gives labels {wrong}, not in label space "
                f"{self.cfg['dataset']['label_space']!r} ({', '.join(self.classes)}): set dataset.corpus.labels or dataset.label_space"
            )
        if len(found.unmatched):
            print(
                f"emoflow: {len(found.unmatched)} media file(s) under {found.root} do not fit the {c['adapter']} naming "
                f"or repeat a recording: left out, listed in {self.out}/manifest/manifest.unmatched.csv",
                file=sys.stderr,
            )
        return f"{self.out}/manifest/manifest.csv", found.rows

    def shard_media(self, shard: str) -> list[str]:
        """The shard's media files (replacing one reruns the shard)."""
        paths = self.shards[shard]["path"]
        if self.demo:  # outputs of rule demo_data, named relative to the working directory
            import os

            return [os.path.relpath(p) for p in paths]
        return list(paths)

    def per_shard(self, pattern: str) -> list[str]:
        """``pattern`` (with ``{shard}``) for every shard."""
        return [pattern.replace("{shard}", s) for s in sorted(self.shards)]

    def skip_tables(self, *stages: str) -> list[str]:
        return [self.L.skips(stage, shard) for stage in stages for shard in sorted(self.shards)]

    def face_hints(self) -> list[str]:
        """The face-hint side file, when configured (editing it reruns the face stage)."""
        return [self.cfg["faces"]["hints"]] if self.cfg["faces"]["hints"] else []

    # --- features and their fits -----------------------------------------------------
    def _plan_features(self):
        """Feature tables: as configured, except that under k-fold a label-fitted extractor
        becomes one table per fold, ``<name>__<part>``, fitted on that partition's training
        split and extracted with it."""
        self.features_all = dict(self.cfg["features"])  # as configured
        for name, params in self.features_all.items():
            try:
                registry.entry(params["extractor"])
            except KeyError as exc:
                raise EmoflowError(f"{self.source}: features.{name}: {exc.args[0]}") from None
        self.features: dict[str, dict] = {}  # table name -> its entry
        self.per_fold: dict[str, dict[str, str]] = {}
        self.fold_of: dict[str, str] = {}
        for name, params in self.features_all.items():
            if self.kfold and fits_on_labels(params, self.features_all):
                self.per_fold[name] = {}
                for part in self.parts:
                    table = f"{name}__{part}"
                    self.features[table] = params
                    self.per_fold[name][part] = table
                    self.fold_of[table] = part
            else:
                self.features[name] = params
        # under k-fold, the per-fold tables come after the others (as they always have)
        self.features = {
            **{n: p for n, p in self.features.items() if n not in self.fold_of},
            **{n: p for n, p in self.features.items() if n in self.fold_of},
        }

    def feature_of(self, name: str, part: str) -> str:
        """The feature table name that experiments of partition ``part`` read."""
        return self.per_fold.get(name, {}).get(part, name)

    def extractor(self, table: str) -> registry.Entry:
        return registry.entry(self.features[table]["extractor"])

    def fit_manifest(self, table: str) -> list[str]:
        """The manifest read by the fit of a feature: the partition's under k-fold, else the
        dataset's. A fit that reads no dataset labels (a frame CNN trained on FER2013 or an
        image folder) reads none: adding videos does not retrain it, and its output-cache
        entry (``cache:``) is the same for every project on the machine."""
        part = self.fold_of.get(table)
        if part:
            return [f"{self.out}/splits/{part}.csv"]
        return [self.manifest] if fits_on_labels(self.features[table], self.features_all) else []

    def feature_inputs(self, table: str, shard: str) -> list[str]:
        """What an extractor reads for one shard, by its registry input kind."""
        try:
            return self.L.inputs(self.extractor(table).input, shard)
        except ValueError as exc:
            raise EmoflowError(f"features.{table}: {exc}") from None

    def all_crop_inputs(self) -> list[str]:
        """Every shard's crop inputs, shard after shard (what fit rules of visual models read)."""
        return [p for shard in sorted(self.shards) for p in self.L.crop_inputs(shard)]

    def audio_inputs(self) -> list[str]:
        """Every shard's audio index and wav folder, as pairs."""
        return [p for shard in sorted(self.shards) for p in self.L.inputs("audio", shard)]

    def data_path(self, value: str | None) -> str | None:
        return data_path(value, self.root)

    def train_crops(self, table: str) -> list[str]:
        """Every shard's crops when a frame CNN learns from the training split's own faces
        (one trained on FER2013 or an image folder does not rerun when they change)."""
        train = self.features[table].get("train") or {"source": "crops"}
        return self.all_crop_inputs() if train.get("source", "crops") == "crops" else []

    def train_images(self, table: str) -> list[str]:
        """The image set a frame CNN trains on, when it is a file or folder (not the crops)."""
        train = self.features[table].get("train", {})
        return [self.data_path(train["path"])] if train.get("path") else []

    def targets_of(self, table: str) -> str:
        return (self.features[table].get("training") or {}).get("targets", "hard")

    def train_votes(self, table: str) -> list[str]:
        """The FER+ votes a frame CNN learns from (training.targets votes / uncertainty)."""
        if self.targets_of(table) == "hard":
            return []
        votes = (self.features[table].get("training") or {}).get("votes")
        return [self.data_path(votes or VOTES_DEFAULT)]

    def fit_config(self, table: str) -> str:
        """A fitted extractor's config slice for its fit: the entry + ``data_root``;
        label-distribution targets of a frame CNN get the FER+ -> label space map, the
        expression embedding its trunk's framing."""
        entry = {**self.features[table], "data_root": self.root}
        extractor = self.features[table]["extractor"]
        if extractor == "frame_cnn" and self.targets_of(table) != "hard":
            entry["training"] = {**entry["training"], "label_map": labels.label_map(self.cfg, "ferplus8", "fer2013")}
        if extractor == "expression_embedding":
            trunk = None if self._embedding(table)["trunk_model"] else self._trunk_feature(table)
            entry["trunk_framing"] = self.features[trunk].get("framing") if trunk else None
        return json.dumps(entry, sort_keys=True)

    def fit_inputs(self, table: str) -> dict[str, list[str]]:
        """The files a fitted extractor's fit reads, by input kind (its registry
        :class:`~emoflow.features.registry.Fit` names the kinds; rule ``fit_<extractor>``)."""
        kinds = {
            "manifest": self.fit_manifest,
            "transcripts": lambda t: self.per_shard(self.L.text()),
            "audio": lambda t: self.audio_inputs(),
            "crops": self.train_crops,
            "images": self.train_images,
            "init": self.init_checkpoint,
            "votes": self.train_votes,
            "trunk": self.embedding_trunk,
            "data": self.embedding_data,
        }
        return {kind: kinds[kind](table) for kind in self.extractor(table).fit.inputs}

    # --- the expression embedding's fit (emoflow.similarity.fit) ------------------------
    def _embedding(self, table: str) -> dict:
        from emoflow.similarity.fit import DEFAULTS

        return {**DEFAULTS, **self.features[table]}

    def _trunk_feature(self, table: str) -> str:
        """The frame_cnn entry whose fit is the embedding's trunk (its fold's under k-fold)."""
        trunk = self._embedding(table)["trunk"]
        name = self.feature_of(trunk, self.fold_of[table]) if table in self.fold_of else trunk
        if self.features.get(name, {}).get("extractor") != "frame_cnn":
            raise EmoflowError(
                f"{self.source}: features.{table}.trunk: {trunk!r} is not a frame_cnn entry "
                "(or set trunk_model to a frame CNN fit's JSON)"
            )
        return name

    def embedding_trunk(self, table: str) -> list[str]:
        """The trunk's frame CNN fit, JSON and weights: trunk_model, else the trunk entry's fit."""
        given = self._embedding(table)["trunk_model"]
        meta = self.data_path(given) if given else self.fitted_model(self._trunk_feature(table))
        return [meta, str(Path(meta).with_suffix(".pt"))]

    def embedding_data(self, table: str) -> list[str]:
        """FER2013 faces and the triplets (val scored once at the end, when present)."""
        p = self._embedding(table)
        val = self.data_path(p["val_triplets"]) if p["val_triplets"] else None
        return [self.data_path(p["images"]), self.data_path(p["triplets"])] + (
            [val] if val and Path(val).is_file() else []
        )

    def init_checkpoint(self, table: str) -> list[str]:
        """A user checkpoint a fitted model starts from (editing it reruns the fit)."""
        init = self.features[table].get("init")
        return [self.data_path(init)] if init else []

    def fitted_model(self, table: str) -> str:
        """Where the fit of a fitted extractor lands (rules fit_<extractor>); an entry with
        ``model_from: <feature>`` applies that feature's fit (same fold under k-fold)."""
        src = self.features[table].get("model_from") or table
        if src != table and table in self.fold_of:
            src = f"{src}__{self.fold_of[table]}"
        return self.L.fitted(self.features[src]["extractor"], src)

    def feature_model(self, table: str) -> list[str]:
        """The training-split fit a fitted extractor applies (TF-IDF vocabulary, audio CNN)."""
        return [self.fitted_model(table)] if self.extractor(table).fitted else []

    def feature_config(self, table: str) -> str:
        """This extractor's config slice (JSON), with its fitted model's path."""
        params = dict(self.features[table])
        params.pop("model_from", None)  # workflow-level: which fit to apply
        if self.extractor(table).fitted:
            params["model"] = self.fitted_model(table)
        cfg = {"features": {table: params}, "feature_inputs": self.cfg["feature_inputs"]}
        if self.extractor(table).input == "crops":  # how the crops were made
            cfg["crops"] = {k: self.cfg["faces"][k] for k in ("color_size", "grey_size", "margin")}
        return json.dumps(cfg, sort_keys=True)

    # --- experiments, fusion ---------------------------------------------------------
    def _plan_experiments(self):
        from emoflow.e2e import spec as e2e_spec

        self.experiments = self.cfg["experiments"]
        self.e2e_names = sorted(n for n, e in self.cfg["e2e"].items() if e is not None)
        self.fused = self.cfg["fusion"]["experiments"] or sorted([*self.experiments, *self.e2e_names])
        self.groups = self.cfg["fusion"]["groups"]
        self.e2e_specs = {}
        for name in self.e2e_names:
            where = f"{self.source}: e2e.{name}"
            if name in self.experiments:
                raise EmoflowError(f"{where}: an experiment of that name exists (e2e entries are experiments too)")
            try:
                s = e2e_spec.resolve(self.cfg["e2e"][name])
            except ValueError as exc:
                raise EmoflowError(f"{where}: {exc}") from None
            for branch in ("audio", "face"):
                feat = s[branch]
                if not feat:
                    continue
                if feat not in self.features_all:
                    raise EmoflowError(f"{where}: {branch}: {feat!r} is not a configured feature")
                have = registry.modality(self.features_all[feat]["extractor"])
                if have != branch:
                    raise EmoflowError(f"{where}: {branch}: {feat!r} is a {have} feature")
            if e2e_spec.uses_tta(s) and self.features_all[s["face"]]["extractor"] != "frame_cnn":
                raise EmoflowError(
                    f"{where}: tta needs a frame_cnn face feature ({s['face']!r} is not one); set tta: null"
                )
            self.e2e_specs[name] = s
        # the frame_cnn tables some e2e experiment reads under the face transforms
        self.e2e_tta_tables = sorted(
            {
                self.e2e_tables(n, part)["face"]
                for n in self.e2e_specs
                for part in self.parts
                if self.e2e_tables(n, part)["tta"]
            }
        )

    def is_sequence(self, experiment: str) -> bool:
        return self.cfg["classifiers"][self.experiments[experiment]["classifier"]]["type"] == "sequence"

    def modality_of(self, experiment: str) -> str:
        from emoflow.e2e import spec as e2e_spec

        if experiment in self.e2e_specs:
            return e2e_spec.modality(self.e2e_specs[experiment])
        return registry.modality(self.features_all[self.experiments[experiment]["feature"]]["extractor"])

    def encoded(self, part: str, feature: str, encoding: str) -> str:
        return f"{self.out}/encoded/{part}/{feature}.{encoding}.parquet"

    def encoder(self, part: str, feature: str, encoding: str) -> str:
        return f"{self.out}/models/encode/{part}/{feature}.{encoding}.npz"

    def encoded_inputs(self, name: str, part: str) -> list[str]:
        """The frame-level feature's shard tables an encoding reads."""
        return self.per_shard(self.L.features(self.feature_of(name, part)))

    def experiment_inputs(self, experiment: str, part: str):
        """An experiment's feature: encoded vectors, or the shard tables themselves."""
        exp = self.experiments[experiment]
        if exp.get("encoding"):
            return self.encoded(part, exp["feature"], exp["encoding"])
        return self.per_shard(self.L.features(self.feature_of(exp["feature"], part)))

    def experiment_config(self, experiment: str) -> str:
        """The experiment's slice: its classifier spec, classes and the evaluation settings."""
        exp = self.experiments[experiment]
        return json.dumps(
            {
                "feature": exp["feature"],
                "encoding": exp.get("encoding"),
                "modality": self.modality_of(experiment),
                "classifier": self.cfg["classifiers"][exp["classifier"]],
                "normalize": exp.get("normalize") or "none",
                "classes": self.classes,
                "evaluation": {k: self.evaluation[k] for k in ("metric", "seed", "cv_folds")},
            },
            sort_keys=True,
        )

    def predictions(self, part: str) -> list[str]:
        return [f"{self.out}/predictions/{part}/{e}.parquet" for e in self.fused]

    def experiment_reports(self, part: str) -> list[str]:
        return [f"{self.out}/models/classify/{part}/{e}.json" for e in self.fused]

    def fusion_config(self, group: str) -> str:
        fusion = self.cfg["fusion"]
        return json.dumps(
            {
                "name": group,
                "group": self.groups[group],
                "classes": self.classes,
                "methods": fusion["methods"],
                "step": fusion["step"],
                "folds": fusion["folds"],
                "evaluation": {k: self.evaluation[k] for k in ("metric", "seed")},
            },
            sort_keys=True,
        )

    def fusion_outputs(self) -> list[str]:
        return [f"{self.out}/fusion/{part}/{group}.json" for part in self.parts for group in sorted(self.groups)]

    # --- e2e networks ----------------------------------------------------------------
    def e2e_tables(self, name: str, part: str) -> dict:
        """Feature table names an e2e experiment reads in partition ``part``: audio, face, and
        the face transform cache (None where absent)."""
        from emoflow.e2e import spec as e2e_spec

        s = self.e2e_specs[name]
        audio = self.feature_of(s["audio"], part) if s["audio"] else None
        face = self.feature_of(s["face"], part) if s["face"] else None
        tta = e2e_spec.tta_table(face) if e2e_spec.uses_tta(s) else None
        return {"audio": audio, "face": face, "tta": tta}

    def e2e_table_files(self, table: str) -> list[str]:
        """One table's shard files (a transform cache lives under e2e/tta/)."""
        if table.endswith("_tta") and table.removesuffix("_tta") in self.e2e_tta_tables:
            return self.per_shard(self.L.e2e_tta(table))
        return self.per_shard(self.L.features(table))

    def e2e_inputs(self, experiment: str, part: str) -> dict:
        """The shard tables of the audio feature and of the face feature (or its transform cache)."""
        t = self.e2e_tables(experiment, part)
        face = t["tta"] or t["face"]
        return {
            "audio": self.e2e_table_files(t["audio"]) if t["audio"] else [],
            "face": self.e2e_table_files(face) if face else [],
        }

    def e2e_config(self, experiment: str, part: str) -> str:
        t = self.e2e_tables(experiment, part)
        return json.dumps(
            {
                "e2e": self.e2e_specs[experiment],
                "classes": self.classes,
                "audio_table": t["audio"],
                "face_table": t["face"],
                "tta_table": t["tta"],
            },
            sort_keys=True,
        )

    def e2e_tta_config(self, table: str) -> str:
        """Rule features' config slice of the frame_cnn table, keyed by its cache's name, plus
        the transforms (the seed's 12, always: TTA and training pick among them)."""
        from emoflow.e2e import spec as e2e_spec

        cfg = json.loads(self.feature_config(table))
        cfg["features"] = {e2e_spec.tta_table(table): cfg["features"][table]}
        cfg["transforms"] = list(e2e_spec.SEED_TRANSFORMS)
        return json.dumps(cfg, sort_keys=True)

    def e2e_deployment_tables(self, name: str, part: str) -> list[str]:
        """Every shard file an e2e experiment reads (rule deployments rescores it)."""
        t = self.e2e_tables(name, part)
        return [p for key in ("audio", "face", "tta") if t[key] for p in self.e2e_table_files(t[key])]

    # --- the model bundle ------------------------------------------------------------
    def bundle_choice(self) -> tuple[str, str, list[str]]:
        """(partition, fusion group, the group's experiments) the bundle holds."""
        from emoflow.fusion.stage import select

        part = self.cfg["bundle"]["part"] or self.parts[0]
        group = self.cfg["bundle"]["group"] or ("all" if "all" in self.groups else sorted(self.groups)[0])
        if part not in self.parts:
            raise EmoflowError(f"{self.source}: bundle.part: {part!r} is not a partition ({self.parts})")
        meta = {
            n: {
                "feature": n if n in self.e2e_specs else self.experiments[n]["feature"],
                "modality": self.modality_of(n),
            }
            for n in self.fused
        }
        return part, group, select(meta, self.groups[group])

    def experiment_files(self, name: str, part: str) -> dict:
        """One experiment's fitted files in partition ``part`` (an e2e network has no encoder)."""
        out = {
            "model": f"{self.out}/models/classify/{part}/{name}.model",
            "report": f"{self.out}/models/classify/{part}/{name}.json",
            "predictions": f"{self.out}/predictions/{part}/{name}.parquet",
        }
        exp = self.experiments.get(name) if name not in self.e2e_specs else None
        if exp and exp.get("encoding"):
            out["encoder"] = self.encoder(part, exp["feature"], exp["encoding"])
        return out

    def bundle_feature(self, feature: str, part: str) -> dict:
        table = self.feature_of(feature, part)
        extractor = self.features[table]["extractor"]
        entry = registry.entry(extractor)
        return {
            "extractor": extractor,
            "input": entry.input,
            "modality": registry.modality(extractor),
            "table": table,
            "config": self.feature_config(table),
            "model": self.fitted_model(table) if entry.fitted else None,
        }

    def e2e_bundle_features(self, name: str, part: str) -> dict:
        """Bundle feature entries an e2e experiment needs: its audio and face features and, with
        TTA, the transform cache (run by emoflow.e2e.tta: ``stage: e2e_tta``)."""
        from emoflow.e2e import spec as e2e_spec

        s, t = self.e2e_specs[name], self.e2e_tables(name, part)
        out = {f: self.bundle_feature(f, part) for f in (s["audio"], s["face"]) if f}
        if t["tta"]:
            out[e2e_spec.tta_table(s["face"])] = {
                "extractor": "frame_cnn",
                "input": "crops",
                "modality": "face",
                "table": t["tta"],
                "config": self.e2e_tta_config(t["face"]),
                "model": self.fitted_model(t["face"]),
                "stage": "e2e_tta",
            }
        return out

    def _bundle_features(self, part: str, experiments: list[str]) -> dict:
        feats = sorted({self.experiments[n]["feature"] for n in experiments if n not in self.e2e_specs})
        features = {f: self.bundle_feature(f, part) for f in feats}
        for n in experiments:
            if n in self.e2e_specs:  # its audio and face features, and the face transform cache
                features.update(self.e2e_bundle_features(n, part))
        return features

    def bundle_inputs(self) -> list[str]:
        part, _, experiments = self.bundle_choice()
        files = [p for n in experiments for p in self.experiment_files(n, part).values()]
        feats = {self.experiments[n]["feature"] for n in experiments if n not in self.e2e_specs}
        models = [self.bundle_feature(f, part)["model"] for f in sorted(feats)]
        models += [
            f["model"] for n in experiments if n in self.e2e_specs for f in self.e2e_bundle_features(n, part).values()
        ]
        return files + list(dict.fromkeys(m for m in models if m))

    def bundle_entry(self, name: str, part: str) -> dict:
        """The bundle spec's entry of one experiment (emoflow.predict.bundle.export)."""
        from emoflow.e2e import spec as e2e_spec

        if name in self.e2e_specs:
            s = self.e2e_specs[name]
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
                **self.experiment_files(name, part),
            }
        exp = self.experiments[name]
        return {
            "feature": exp["feature"],
            "encoding": exp.get("encoding"),
            "modality": self.modality_of(name),
            "classifier": self.cfg["classifiers"][exp["classifier"]],
            **self.experiment_files(name, part),
        }

    def bundle_spec(self, threads: dict) -> str:
        """What the bundle holds (JSON), paths as the rule's inputs name them; ``threads``:
        the rules' thread counts, which predict reuses (float results depend on them)."""
        part, group, experiments = self.bundle_choice()
        stages = {k: self.cfg[k] for k in ("probe", "frames", "audio", "faces", "asr", "feature_inputs")}
        stages["faces"] = {**stages["faces"], "hints": None}  # per-video hints of this corpus
        return json.dumps(
            {
                "part": part,
                "group": group,
                "group_spec": self.groups[group],
                "classes": self.classes,
                "label_space": self.cfg["dataset"]["label_space"],
                "fusion": f"{self.out}/fusion/{part}/{group}.json",
                "stages": stages,
                "threads": threads,
                "features": self._bundle_features(part, experiments),
                "experiments": {n: self.bundle_entry(n, part) for n in experiments},
            },
            sort_keys=True,
        )

    # --- test figures by deployment ----------------------------------------------------
    def deployment_encoders(self, part: str) -> list[str]:
        """The fitted encoders of the partition's encoded experiments."""
        return sorted(
            {
                self.encoder(part, self.experiments[n]["feature"], self.experiments[n]["encoding"])
                for n in self.fused
                if n not in self.e2e_specs and self.experiments[n].get("encoding")
            }
        )

    def deployment_features(self, part: str) -> list[str]:
        """The shard tables of every feature the partition's experiments read (once each:
        rule deployments reads them by folder)."""
        names = sorted(
            {self.feature_of(self.experiments[n]["feature"], part) for n in self.fused if n not in self.e2e_specs}
        )
        files = [p for name in names for p in self.per_shard(self.L.features(name))]
        files += [p for n in self.fused if n in self.e2e_specs for p in self.e2e_deployment_tables(n, part)]
        return list(dict.fromkeys(files))
