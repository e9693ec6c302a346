"""The model bundle: everything ``emoflow predict`` needs from a trained run, in one folder.

A run exports it (rule ``bundle`` -> ``results/<run>/bundle/``) for one fusion group of one
partition.  Layout::

    bundle.json                  what follows, plus versions, classes, file digests
    fusion.json                  the fusion choice (method, weights / stacking model)
    classifiers/<exp>.skops|.pt  fitted classifiers (scikit-learn via skops, torch state dicts)
    classifiers/<exp>.json       their reports (spec, chosen hyper-parameters, scores)
    encoders/<feature>.<enc>.npz fitted temporal encoders (numpy, no pickle)
    extractors/<table>.*         fitted extractors (frame CNN, C3D, audio CNN, TF-IDF)

``bundle.json`` holds: ``format``; ``emoflow`` version; ``classes`` (the label space, in
probability-column order) and ``label_space``; ``part`` and ``group``; ``stages`` (the JSON
config slices the run's per-video rules received: probe, frames, audio, faces, asr);
``threads`` (the thread count of each per-video rule: float results depend on it);
``features`` (per used feature: extractor, input kind, modality, the extractor's JSON config
with its model path relative to the bundle; ``stage: e2e_tta`` for an end-to-end network's face
transform cache, run by :mod:`emoflow.e2e.tta`); ``experiments`` (the experiments the fusion uses:
feature, encoding, modality, classifier spec, normalisation (``none`` or ``speaker``: its
population statistics are in the classifier's report), model file and format, the training-split class
prior that stands in when the feature is missing; an end-to-end network, ``kind: e2e``, names
its ``features``: audio, face, tta); ``versions`` (the library versions the run
used, by import name); ``files`` (sha256 of every file).

:meth:`Bundle.load` refuses, with a message saying what differs, a bundle whose format,
files, library versions (those in :data:`STRICT`) or class list do not match, and one whose
file paths are absolute or leave the bundle folder.  Nothing in a bundle runs code:
scikit-learn models load through skops with an exact allow-list of the types emoflow writes
(:data:`SKOPS_ALLOWED`) and no function-valued parameter; torch files load with
``weights_only=True``; Keras models with ``safe_mode=True``; encoders with
``allow_pickle=False``; nothing is unpickled.

``python -m emoflow.predict.bundle SPEC_JSON OUT_DIR`` (the rule; SPEC_JSON as a string).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emoflow import __version__, logs, warm
from emoflow.errors import EmoflowError
from emoflow.storage import atomic_dir, read_table

FORMAT = 1
BUNDLE_JSON = "bundle.json"
#: Libraries whose version must match the run's exactly: they compute features or
#: hold fitted models, so another version may give other numbers (or not load).
STRICT = frozenset(
    {
        "numpy",
        "scipy",
        "sklearn",
        "skops",
        "torch",
        "tensorflow",
        "keras",
        "opensmile",
        "librosa",
        "cyvlfeat",
        "skimage",
        "PIL",
        "facenet_pytorch",
        "dlib",
        "sentence_transformers",
        "transformers",
        "pocketsphinx",
        "soundfile",
    }
)
#: The exact types a bundle's skops file may instantiate: the estimators, transformers and
#: arrays emoflow's classifiers are made of (:mod:`emoflow.classify.models`: every classifier
#: type, with scaling, PCA and SVM calibration), nothing else.  Every node of the file's
#: schema is checked, not only the types skops itself distrusts; see :func:`check_skops`.
SKOPS_ALLOWED = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "builtins.slice",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.float32",
        "numpy.int64",
        "numpy.int32",
        "numpy.bool_",
        "numpy.dtype",
        "numpy.random.mtrand.RandomState",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.decomposition._pca.PCA",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.svm._classes.SVC",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    }
)
#: A skops ``TypeNode`` loads a bare type object; only these plain types may appear as one.
SKOPS_TYPE_VALUES = frozenset(
    {
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.object",
        "numpy.float64",
        "numpy.float32",
        "numpy.int64",
        "numpy.int32",
    }
)
#: skops loaders that make callables (functions, methods, partials, operators): never allowed.
SKOPS_CALLABLE_LOADERS = frozenset({"FunctionNode", "MethodNode", "PartialNode", "OperatorFuncNode"})


def check_skops(path: Path) -> list[str]:
    """Check every node of the skops file ``path`` before anything is instantiated: each
    type on :data:`SKOPS_ALLOWED` (bare types: :data:`SKOPS_TYPE_VALUES`), and no
    function-valued node anywhere (a ``FunctionTransformer`` chain of numpy / scikit-learn
    functions can run code).  Returns the types to pass to ``skops.io.load(trusted=...)``;
    raises :class:`BundleError` naming the file and every offending entry."""
    import zipfile

    import skops.io as sio

    try:
        with zipfile.ZipFile(path) as z:
            schema = json.loads(z.read("schema.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a readable skops file ({exc})") from None
    callables, outside = set(), set()

    def walk(node) -> None:
        if isinstance(node, dict):
            loader = node.get("__loader__")
            if loader is not None:
                name = f"{node.get('__module__', '?')}.{node.get('__class__', '?')}"
                content = node.get("content")
                if loader in SKOPS_CALLABLE_LOADERS:
                    if isinstance(content, dict) and "module_path" in content:
                        name = f"{content['module_path']}.{content.get('function', content.get('name', '?'))}"
                    callables.add(f"{name} ({loader})")
                elif loader == "TypeNode":  # a bare type, or a builtin function (os.getcwd is one)
                    if name not in SKOPS_TYPE_VALUES:
                        callables.add(f"{name} (a type or builtin object)")
                elif name not in SKOPS_ALLOWED:
                    outside.add(name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    if callables or outside:
        parts = []
        if callables:
            parts.append(f"function-valued parameters {sorted(callables)}")
        if outside:
            parts.append(f"types emoflow does not write {sorted(outside)}")
        raise BundleError(f"{path}: refuses to load a model with {' and '.join(parts)}")
    untrusted = sio.get_untrusted_types(file=path)
    bad = sorted(t for t in untrusted if t not in SKOPS_ALLOWED)
    if bad:  # the schema walk should have caught these; never trust what it did not see
        raise BundleError(f"{path}: refuses to load types emoflow does not write: {bad}")
    return untrusted


def _inside(root: Path, rel, what: str, meta_path: Path) -> Path:
    """``root / rel`` for a relative path that stays inside the bundle folder, else an error."""
    if not isinstance(rel, str) or not rel:
        raise BundleError(f"{meta_path}: {what}: not a file name ({rel!r})")
    pure = Path(rel)
    if pure.is_absolute() or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        raise BundleError(
            f"{meta_path}: {what}: absolute path {rel!r} (a bundle names its files relative to its folder)"
        )
    if ".." in pure.parts:
        raise BundleError(f"{meta_path}: {what}: path {rel!r} leaves the bundle folder")
    full = (root / pure).resolve()
    if not full.is_relative_to(root):
        raise BundleError(f"{meta_path}: {what}: path {rel!r} leaves the bundle folder (through a link)")
    return full


class BundleError(EmoflowError):
    """A bundle that cannot be used here (and why)."""


def _version(module: str) -> str | None:
    dists = importlib.metadata.packages_distributions().get(module) or []
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:  # packages without top-level metadata (dlib-bin): the module's own attribute
        mod = __import__(module)
        return str(getattr(mod, "__version__", None) or "") or None
    except Exception:  # noqa: BLE001 - an absent optional module has no version
        return None


def library_versions(modules: list[str]) -> dict[str, str | None]:
    """Installed version of each third-party module's distribution (None: not installed).
    The local build tag is dropped (torch ``2.13.0+cpu`` and ``2.13.0+cu128`` compute alike)."""
    out = {}
    for m in sorted(set(modules)):
        v = _version(m)
        out[m] = v.split("+", 1)[0] if v else v
    return out


def code_modules(features: dict, need_asr: bool, e2e: bool = False) -> list[str]:
    """The emoflow modules a bundle's prediction runs (for its library versions); ``e2e``:
    an end-to-end experiment is among them (its network and face transform cache)."""
    from emoflow.features import registry

    from emoflow.workflow.stages import STAGES

    mods = [STAGES[r].module for r in ("probe", "frames", "audio", "faces", "features")]
    mods += ["emoflow.encode", "emoflow.classify.models", "emoflow.classify.sequence", "emoflow.fusion.choose"]
    mods += [registry.entry(f["extractor"]).module for f in features.values()]
    if need_asr:
        mods.append(STAGES["asr"].module)
    if e2e:
        mods += ["emoflow.e2e.fit", STAGES["e2e_tta"].module]
    return mods


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def training_prior(predictions_path: str, classes: list[str]) -> list[float]:
    """Class frequencies of the training videos that had the feature: what the classify
    stage predicts for a video whose feature is missing."""
    t = read_table(predictions_path, columns=["split", "label", "missing"]).to_pandas()
    t = t[(t["split"] == "train") & ~t["missing"] & t["label"].isin(classes)]
    counts = np.array([(t["label"] == c).sum() for c in classes], float)
    if counts.sum() == 0:
        raise BundleError(f"{predictions_path}: no training video with this feature")
    return (counts / counts.sum()).tolist()


def used_experiments(choice: dict) -> list[str]:
    """Experiments the chosen fusion reads: non-zero weights, or all of them for stacking."""
    method = choice["method"]
    if method == "stacking":
        return list(choice["models"])
    weights = choice["methods"][method]["weights"]
    return [n for n in choice["models"] if weights[n] > 0]


# --------------------------------------------------------------------------- export


def export(spec: dict, out: str | Path, log=None) -> dict:
    """Write the bundle folder ``out`` (atomically) from the rule's ``spec`` (see rules/bundle.smk)."""
    log = log or logs.setup("emoflow.bundle")
    classes = list(spec["classes"])
    choice = json.loads(Path(spec["fusion"]).read_text())
    if choice["n_classes"] != len(classes):
        raise BundleError(f"{spec['fusion']}: fused {choice['n_classes']} classes, the label space has {len(classes)}")
    used = used_experiments(choice)
    unknown = [e for e in used if e not in spec["experiments"]]
    if unknown:
        raise BundleError(f"{spec['fusion']}: experiments {unknown} are not in the bundle spec")
    with atomic_dir(out) as tmp:
        files: dict[str, str] = {}

        def put(src: str | Path, rel: str) -> str:
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            files[rel] = _sha256(dst)
            return rel

        experiments, features = {}, {}
        for name in used:
            e = spec["experiments"][name]
            report = json.loads(Path(e["report"]).read_text())
            fmt = report.get("model_format", "skops")
            entry = {
                "feature": e["feature"],
                "encoding": e.get("encoding"),
                "modality": e["modality"],
                "classifier": e["classifier"],
                "model_format": fmt,
                "normalize": (report.get("normalize") or {}).get("by", "none"),
                "model": put(e["model"], f"classifiers/{name}.{'skops' if fmt == 'skops' else 'pt'}"),
                "report": put(e["report"], f"classifiers/{name}.json"),
                "prior": training_prior(e["predictions"], classes),
                "val": (report.get("scores") or {}).get("val"),
            }
            if e.get("encoding"):
                entry["encoder"] = put(e["encoder"], f"encoders/{e['feature']}.{e['encoding']}.npz")
            if e.get("kind") == "e2e":  # an end-to-end network: several features (emoflow.e2e)
                entry["kind"], entry["features"] = "e2e", dict(e["features"])
                names = [f for f in e["features"].values() if f]
            else:
                names = [e["feature"]]
            experiments[name] = entry
            for fname in names:
                if fname in features:
                    continue
                f = spec["features"][fname]
                cfg = json.loads(f["config"])
                params = cfg["features"][f["table"]]
                if f.get("model"):  # the fit's JSON and its sibling weight files
                    src = Path(f["model"])
                    for p in sorted(src.parent.glob(src.stem + ".*")):
                        if p.is_file():
                            put(p, f"extractors/{p.name}")
                    params["model"] = f"extractors/{src.name}"
                features[fname] = {
                    "extractor": f["extractor"],
                    "input": f["input"],
                    "modality": f["modality"],
                    "table": f["table"],
                    "config": cfg,
                }
                if f.get("stage"):  # not rule features' stage (e2e_tta: the face transform cache)
                    features[fname]["stage"] = f["stage"]
        put(spec["fusion"], "fusion.json")
        need_asr = any(f["input"] == "transcripts" for f in features.values())
        meta = {
            "format": FORMAT,
            "emoflow": __version__,
            "python": platform.python_version(),
            "classes": classes,
            "label_space": spec.get("label_space"),
            "part": spec["part"],
            "group": spec["group"],
            "group_spec": spec.get("group_spec", {}),
            "fusion_method": choice["method"],
            "fusion_scores": choice.get("scores"),
            "stages": spec["stages"],
            "threads": spec.get("threads", {}),
            "features": features,
            "experiments": experiments,
            "versions": library_versions(
                _third_party(features, need_asr, any(x.get("kind") == "e2e" for x in experiments.values()))
            ),
            "files": files,
        }
        (tmp / BUNDLE_JSON).write_text(json.dumps(meta, indent=1, sort_keys=True))
    log.info(
        "bundle %s: %d experiments (%s fusion of group %s, partition %s), %d features, %d files",
        out,
        len(experiments),
        choice["method"],
        spec["group"],
        spec["part"],
        len(features),
        len(files),
    )
    return meta


def _third_party(features: dict, need_asr: bool, e2e: bool = False) -> list[str]:
    from emoflow import codedeps

    mods = set(codedeps.third_party(*code_modules(features, need_asr, e2e)))
    mods.add("skops")  # loads the scikit-learn classifiers
    if "tensorflow" in mods:
        mods.add("keras")  # Keras 3 is its own distribution
    return sorted(mods)


# --------------------------------------------------------------------------- load


@dataclass
class Bundle:
    root: Path
    meta: dict
    #: the encoders and classifiers loaded so far (each once per Bundle; keyed by file stamps)
    models: warm.ModelCache = field(default_factory=warm.ModelCache, repr=False, compare=False)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def experiments(self) -> dict:
        return self.meta["experiments"]

    @property
    def features(self) -> dict:
        return self.meta["features"]

    @property
    def stages(self) -> dict:
        return self.meta["stages"]

    @property
    def needs_asr(self) -> bool:
        return any(f["input"] == "transcripts" for f in self.features.values())

    def modalities(self) -> list[str]:
        return sorted({m for e in self.experiments.values() for m in e["modality"].split("+")})  # e2e: audio+face

    def path(self, rel: str) -> Path:
        return self.root / rel

    @classmethod
    def load(cls, path: str | Path, classes: list[str] | None = None, check_versions: bool = True) -> Bundle:
        """Read and check a bundle (see the module doc); :class:`BundleError` says what is wrong."""
        root = Path(path).resolve()  # stages run in their own working directories
        if (root / "bundle" / BUNDLE_JSON).is_file() and not (root / BUNDLE_JSON).is_file():
            root = root / "bundle"  # a run's results folder
        meta_path = root / BUNDLE_JSON
        if not meta_path.is_file():
            raise BundleError(
                f"{root}: no {BUNDLE_JSON} (not an emoflow bundle; a finished run writes results/<run>/bundle)"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{meta_path}: unreadable ({exc})") from None
        if meta.get("format") != FORMAT:
            raise BundleError(f"{meta_path}: bundle format {meta.get('format')!r}, this emoflow reads format {FORMAT}")
        for rel, digest in meta["files"].items():
            p = _inside(root, rel, "files", meta_path)
            if not p.is_file():
                raise BundleError(f"{root}: {rel} is missing")
            if _sha256(p) != digest:
                raise BundleError(f"{p}: contents differ from the bundle's record (modified or corrupt)")
        listed = set(meta["files"])
        refs = [("fusion", "fusion.json")]
        for name, e in meta["experiments"].items():
            refs += [(f"experiments.{name}.{k}", e[k]) for k in ("model", "report", "encoder") if e.get(k) is not None]
        for name, f in meta["features"].items():
            model = f["config"]["features"][f["table"]].get("model")
            if model is not None:
                refs.append((f"features.{name}.config.model", model))
        for what, rel in refs:
            _inside(root, rel, what, meta_path)
            if rel not in listed:
                raise BundleError(f"{meta_path}: {what}: {rel!r} is not among the bundle's checked files")
        if classes is not None and list(classes) != list(meta["classes"]):
            raise BundleError(f"{root}: the bundle predicts classes {meta['classes']}, expected {list(classes)}")
        choice = json.loads((root / "fusion.json").read_text())
        if choice["n_classes"] != len(meta["classes"]):
            raise BundleError(
                f"{root}/fusion.json: {choice['n_classes']} classes, bundle.json lists {len(meta['classes'])}"
            )
        for name, e in meta["experiments"].items():
            if len(e["prior"]) != len(meta["classes"]):
                raise BundleError(
                    f"{root}: experiment {name} has {len(e['prior'])} classes, the bundle {len(meta['classes'])}"
                )
        if check_versions:
            here = library_versions(list(meta["versions"]))
            diff = [
                f"{m} {v} (here {here[m]})" for m, v in sorted(meta["versions"].items()) if m in STRICT and here[m] != v
            ]
            if diff:
                raise BundleError(
                    f"{root}: made with other library versions than this environment has: {', '.join(diff)}; "
                    "install the run's versions (requirements.txt / envs/) or re-export the bundle here"
                )
        return cls(root, meta)

    def fusion_choice(self) -> dict:
        return json.loads((self.root / "fusion.json").read_text())

    def feature_config(self, name: str) -> str:
        """The extractor's JSON config (as the run's rule passed it), model path made absolute."""
        f = self.features[name]
        cfg = json.loads(json.dumps(f["config"]))
        params = cfg["features"][f["table"]]
        if params.get("model"):
            params["model"] = str(self.root / params["model"])
        return json.dumps(cfg, sort_keys=True)

    def load_encoder(self, experiment: str):
        from emoflow.encode.base import Encoder

        p = self.root / self.experiments[experiment]["encoder"]
        return self.models.get(warm.key("encoder", str(p)), lambda: Encoder.load(p))

    def load_classifier(self, experiment: str):
        """(kind, model): ``("sklearn", estimator)``, ``("torch", SequenceClassifier)`` or
        ``("e2e", (ensemble members, the model file's meta))`` (:func:`emoflow.e2e.model.load`,
        tensors and plain data only); loaded once per Bundle."""
        e = self.experiments[experiment]
        p = self.root / e["model"]
        return self.models.get(
            warm.key("classifier", [str(p), e["model_format"]]), lambda: _load_classifier(p, e["model_format"])
        )


def _load_classifier(p: Path, model_format: str):
    if model_format == "e2e":
        from emoflow.e2e.model import load as load_e2e

        return "e2e", load_e2e(p)
    from emoflow.classify.experiment import Experiment

    return Experiment.load_model(p, model_format)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="emoflow bundle", description="Export a run's model bundle (what `emoflow predict` loads)."
    )
    ap.add_argument(
        "spec", help="JSON: classes, part, group, stage configs, features, experiments, fusion (rules/bundle.smk)"
    )
    ap.add_argument("out", help="the bundle folder to write")
    args = ap.parse_args(argv)
    log = logs.setup("emoflow.bundle")
    try:
        export(json.loads(args.spec), args.out, log)
    except (EmoflowError, KeyError, ValueError) as exc:
        print(f"error: bundle {args.out}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
