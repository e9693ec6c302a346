"""``emoflow.Recognizer``: train / eval / recognize / batch_recognize, thin over the workflow.

    from emoflow import Recognizer
    rec = Recognizer.train("my_manifest.csv", "configs/my.yaml", cores=8)   # runs the workflow
    rec = Recognizer("results/my_run")                                     # or load a finished run
    rec.recognize("clip.mp4")          # {"label": "happy", "probabilities": {...}, "modalities_used": [...]}
    rec.batch_recognize(["a.mp4", "b.jpg"])                                 # {path: prediction}
    rec.batch_recognize(clips_of_one_person, speaker="p7")                  # normalised together
    rec.enrol("p7", "p7_unlabelled_clips/")                                 # a speaker's clips, once
    rec.recognize("p7_new_clip.mp4", speaker="p7")                          # then one clip at a time
    rec.eval("held_out_manifest.csv")  # {"accuracy": ..., "uar": ..., "macro_f1": ..., "n": ...}

``train`` runs the Snakemake workflow (Snakemake's Python API) and holds no training code of
its own; the others run :func:`emoflow.predict.cli.predict` (the workflow's own stage code)
on the bundle the run exported, in this process: a Recognizer loads each detector,
extractor, classifier and the fusion on first use and keeps them, so later calls only
compute (``isolated=True``: each stage in its own process per call, as a workflow job).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from emoflow.errors import EmoflowError
from emoflow.predict.bundle import Bundle
from emoflow.warm import ModelCache


class Recognizer:
    """Emotion recognition from a trained emoflow run (its ``bundle/``)."""

    def __init__(
        self,
        run: str | os.PathLike,
        *,
        threads: int | None = None,
        timeline: bool = False,
        classes: list[str] | None = None,
        workdir: str | os.PathLike | None = None,
        isolated: bool = False,
    ):
        """``run``: a run's results folder (holding ``bundle/``) or a bundle folder.
        ``timeline``: also predict per-second windows (kept in :attr:`last_result`).
        ``isolated``: run the stages as subprocesses (models loaded on every call)."""
        self.bundle = Bundle.load(run, classes=classes)
        self.threads, self.timeline, self.workdir = threads, timeline, workdir
        self.models = None if isolated else ModelCache()  # the stages' models, loaded once
        self.last_result = None

    @property
    def classes(self) -> list[str]:
        return self.bundle.classes

    # ------------------------------------------------------------------ training

    @classmethod
    def train(
        cls,
        manifest: str | os.PathLike | None = None,
        config: str | os.PathLike | list | None = None,
        *,
        cores: int = 1,
        workdir: str | os.PathLike | None = None,
        overrides: dict | None = None,
        **kwargs,
    ) -> Recognizer:
        """Run the workflow (through Snakemake's API) on ``manifest`` with ``config`` file(s)
        merged over the repository's config.yaml, then load the bundle it exported.
        ``manifest`` None: the config's own dataset (e.g. the demo)."""
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

        from emoflow.config import repo_root

        snakefile = repo_root() / "Snakefile"
        if not snakefile.is_file():
            raise EmoflowError(f"no Snakefile at {snakefile}: Recognizer.train needs a source checkout")
        configs = [Path(c).resolve() for c in ([config] if isinstance(config, (str, os.PathLike)) else config or [])]
        extra = dict(overrides or {})
        if manifest is not None:
            extra.setdefault("dataset", {}).update({"source": "manifest", "manifest": str(Path(manifest).resolve())})
        workdir = Path(workdir or Path.cwd()).resolve()
        cwd = os.getcwd()
        try:
            with SnakemakeApi(OutputSettings(show_failed_logs=True)) as api:
                wf = api.workflow(
                    resource_settings=ResourceSettings(cores=cores),
                    config_settings=ConfigSettings(configfiles=configs, config=extra),
                    snakefile=snakefile,
                    workdir=workdir,
                )
                wf.dag(DAGSettings()).execute_workflow()
        except Exception as exc:  # noqa: BLE001 - Snakemake raises many types; say which run failed
            raise EmoflowError(f"the workflow failed in {workdir}: {exc}") from exc
        finally:
            os.chdir(cwd)
        outdir = _outdir(configs, extra)
        return cls(workdir / outdir, **kwargs)

    # ------------------------------------------------------------------ prediction

    def _label_map(self, label_space: str) -> tuple[list[str], dict]:
        """(classes of ``label_space``, map from the bundle's label space onto it): the
        config's ``label_maps`` (same names map by default; ``null`` drops a class)."""
        from emoflow.dataset import labels

        src = self.bundle.meta.get("label_space")
        if not src:
            raise EmoflowError(
                f"{self.bundle.root}: the bundle does not name its label space; cannot map it to {label_space!r}"
            )
        cfg = _label_space_config()
        mapping = labels.label_map(cfg, src, label_space)
        if not any(v is not None for v in mapping.values()):
            raise EmoflowError(
                f"label space {src!r} has no class in common with {label_space!r} (add a label_maps entry)"
            )
        return labels.classes(cfg, label_space), mapping

    def enrol(self, speaker: str, clips) -> int:
        """Give a speaker's unlabelled clips once (a list of files, a folder, or a manifest
        path); later :meth:`recognize` / :meth:`batch_recognize` calls with ``speaker=``
        normalise that speaker's clips with these clips' statistics, each clip on its own.
        Returns the number of enrolment clips the speaker now has."""
        import pandas as pd

        from emoflow.predict.cli import gather, gather_enrolment

        if isinstance(clips, (str, os.PathLike)):
            rows = gather_enrolment(str(clips), speaker)
        else:
            rows = gather([str(p) for p in clips])
        rows["speaker"] = speaker
        rows["video_id"] = [f"{speaker}.{v}" for v in rows["video_id"]]  # unique across speakers
        old = getattr(self, "_enrolment", None)
        self._enrolment = rows if old is None else pd.concat([old, rows], ignore_index=True)
        return int((self._enrolment["speaker"] == speaker).sum())

    def _predict(self, inputs):
        from emoflow.predict.cli import predict

        enrol = getattr(self, "_enrolment", None)
        if enrol is not None and "speaker" in inputs:
            enrol = enrol[enrol["speaker"].isin(set(inputs["speaker"]))]
        work = Path(tempfile.mkdtemp(prefix="emoflow-recognize-", dir=self.workdir))
        try:
            result = predict(
                self.bundle,
                inputs,
                work,
                self.threads,
                self.timeline,
                models=self.models,
                enrol=enrol if enrol is not None and "speaker" in inputs and len(enrol) else None,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.last_result = result
        return result

    @staticmethod
    def _as_prediction(row, classes) -> dict:
        probs = {c: float(row[f"p_{c}"]) for c in classes}
        return {
            "label": row["label_pred"] or None,
            "probabilities": probs,
            "modalities_used": [m for m in str(row["modalities_used"] or "").split(";") if m],
            "note": row["note"] or "",
        }

    def batch_recognize(self, paths, speaker: str | None = None) -> dict:
        """{path: prediction} for video or face-image files (see :meth:`recognize`);
        ``speaker``: the files are all this one speaker's (speaker-normalised experiments then
        normalise them together)."""
        from emoflow.predict.cli import gather

        paths = [str(p) for p in paths]
        inputs = gather(paths)
        if speaker:
            inputs["speaker"] = speaker
        result = self._predict(inputs)
        return {p: self._as_prediction(row, self.classes) for p, (_, row) in zip(paths, result.videos.iterrows())}

    def recognize(self, path, speaker: str | None = None) -> dict:
        """``{"label", "probabilities": {class: p}, "modalities_used", "note"}`` for one video
        or face image (``label`` None when neither a face nor speech could be used);
        ``speaker``: an enrolled speaker (:meth:`enrol`) whose statistics normalise it."""
        return self.batch_recognize([path], speaker=speaker)[str(path)]

    def eval(self, manifest: str | os.PathLike, label_space: str | None = None) -> dict:
        """Accuracy, UAR, macro-F1 (and the confusion matrix) of the bundle's predictions on a
        labelled manifest's videos; ``by_split`` when it has a split column.  A clip that got
        no prediction (unreadable, no usable modality) counts as wrong, as in the workflow,
        and ``unpredicted`` says how many there were; the confusion matrix (rows: true
        classes) has one more column, last, for them.  ``label_space``: the manifest's
        labels belong to another label space (e.g. ``fer2013`` for a RAVDESS-trained bundle):
        the bundle's probabilities are mapped onto it with the config's ``label_maps``
        (:func:`emoflow.dataset.labels.map_probabilities`) before scoring."""
        from emoflow.evaluate.metrics import confusion, scores
        from emoflow.predict.cli import gather

        inputs = gather([], manifest)
        if "label" not in inputs or (inputs["label"].fillna("") == "").any():
            raise EmoflowError(f"{manifest}: eval needs a label for every video")
        classes, mapping = self.classes, None
        if label_space is not None:  # the manifest is labelled in another space: read the model in it
            classes, mapping = self._label_map(label_space)
        unknown = sorted(set(inputs["label"]) - set(classes))
        if unknown:
            where = f"label space {label_space!r}" if label_space else "the bundle's classes"
            raise EmoflowError(f"{manifest}: labels {unknown} are not in {where} {classes}")
        videos = self._predict(inputs).videos
        y = np.array([classes.index(lab) for lab in videos["label"]])
        ok = (videos["label_pred"].fillna("") != "").to_numpy()
        if mapping is None:
            pred = np.array([classes.index(lab) if lab else -1 for lab in videos["label_pred"].fillna("")])
        else:
            from emoflow.dataset.labels import map_probabilities

            probs = np.nan_to_num(videos[[f"p_{c}" for c in self.classes]].to_numpy(float))
            pred = np.where(ok, map_probabilities(probs, self.classes, classes, mapping).argmax(1), -1)

        n_classes = len(classes)
        scored = np.where(ok, pred, n_classes)  # an unpredicted clip: an extra "no answer" class, always wrong

        def block(mask):
            if not mask.any():
                return {"n": 0, "unpredicted": 0}
            out = scores(y[mask], scored[mask], n_classes + 1)  # UAR/F1 average over the true classes only
            out["confusion"] = confusion(y[mask], scored[mask], n_classes + 1)[:n_classes].tolist()
            out["unpredicted"] = int((mask & ~ok).sum())
            return out

        res = block(np.ones(len(y), bool))
        if mapping is not None:
            res["label_space"] = {
                "model": self.bundle.meta.get("label_space"),
                "scored_in": label_space,
                "map": mapping,
            }
        if "split" in videos:
            res["by_split"] = {s: block((videos["split"] == s).to_numpy()) for s in sorted(set(videos["split"])) if s}
        return res


def _label_space_config() -> dict:
    from emoflow.config import load_config, repo_root

    return load_config([repo_root() / "config.yaml"])


def _outdir(configs: list[Path], overrides: dict) -> str:
    from emoflow.config import load_config, repo_root

    cfg = load_config([repo_root() / "config.yaml", *configs], overrides=overrides)
    return cfg["outdir"]
