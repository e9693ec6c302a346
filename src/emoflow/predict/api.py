"""``emoflow.Recognizer``: train / eval / recognize / batch_recognize, thin over the workflow.

    from emoflow import Recognizer
    rec = Recognizer.train("my_manifest.csv", "configs/my.yaml", cores=8)   # runs the workflow
    rec = Recognizer("results/my_run")                                     # or load a finished run
    rec.recognize("clip.mp4")          # {"label": "happy", "probabilities": {...}, "modalities_used": [...]}
    rec.batch_recognize(["a.mp4", "b.jpg"])                                 # {path: prediction}
    rec.batch_recognize(clips_of_one_person, speaker="p7")                  # normalised together
    rec.eval("held_out_manifest.csv")  # {"accuracy": ..., "uar": ..., "macro_f1": ..., "n": ...}

``train`` runs the Snakemake workflow (Snakemake's Python API) and holds no training code of
its own; the others run :func:`emoflow.predict.cli.predict` (the workflow's own stage code)
on the bundle the run exported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from emoflow.errors import EmoflowError
from emoflow.predict.bundle import Bundle


class Recognizer:
    """Emotion recognition from a trained emoflow run (its ``bundle/``)."""

    def __init__(self, run: str | os.PathLike, *, threads: int | None = None, timeline: bool = False,
                 classes: list[str] | None = None, workdir: str | os.PathLike | None = None):  # fmt: skip
        """``run``: a run's results folder (holding ``bundle/``) or a bundle folder.
        ``timeline``: also predict per-second windows (kept in :attr:`last_result`)."""
        self.bundle = Bundle.load(run, classes=classes)
        self.threads, self.timeline, self.workdir = threads, timeline, workdir
        self.last_result = None

    @property
    def classes(self) -> list[str]:
        return self.bundle.classes

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, manifest: str | os.PathLike | None = None, config: str | os.PathLike | list | None = None, *,
              cores: int = 1, workdir: str | os.PathLike | None = None, overrides: dict | None = None,
              **kwargs) -> Recognizer:  # fmt: skip
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

    def _predict(self, inputs):
        from emoflow.predict.cli import predict

        work = Path(tempfile.mkdtemp(prefix="emoflow-recognize-", dir=self.workdir))
        try:
            result = predict(self.bundle, inputs, work, self.threads, self.timeline)
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

    def recognize(self, path) -> dict:
        """``{"label", "probabilities": {class: p}, "modalities_used", "note"}`` for one video
        or face image (``label`` None when neither a face nor speech could be used)."""
        return self.batch_recognize([path])[str(path)]

    def eval(self, manifest: str | os.PathLike) -> dict:
        """Accuracy, UAR, macro-F1 (and the confusion matrix) of the bundle's predictions on a
        labelled manifest's videos; ``by_split`` when it has a split column.  A clip that got
        no prediction (unreadable, no usable modality) counts as wrong, as in the workflow,
        and ``unpredicted`` says how many there were; the confusion matrix (rows: true
        classes) has one more column, last, for them."""
        from emoflow.evaluate.metrics import confusion, scores
        from emoflow.predict.cli import gather

        inputs = gather([], manifest)
        if "label" not in inputs or (inputs["label"].fillna("") == "").any():
            raise EmoflowError(f"{manifest}: eval needs a label for every video")
        unknown = sorted(set(inputs["label"]) - set(self.classes))
        if unknown:
            raise EmoflowError(f"{manifest}: labels {unknown} are not in the bundle's classes {self.classes}")
        videos = self._predict(inputs).videos
        y = np.array([self.classes.index(lab) for lab in videos["label"]])
        ok = videos["label_pred"].fillna("") != ""
        pred = np.array([self.classes.index(lab) if lab else -1 for lab in videos["label_pred"].fillna("")])

        n_classes = len(self.classes)
        scored = np.where(ok, pred, n_classes)  # an unpredicted clip: an extra "no answer" class, always wrong

        def block(mask):
            if not mask.any():
                return {"n": 0, "unpredicted": 0}
            out = scores(y[mask], scored[mask], n_classes + 1)  # UAR/F1 average over the true classes only
            out["confusion"] = confusion(y[mask], scored[mask], n_classes + 1)[:n_classes].tolist()
            out["unpredicted"] = int((mask & ~ok).sum())
            return out

        res = block(np.ones(len(y), bool))
        if "split" in videos:
            res["by_split"] = {s: block((videos["split"] == s).to_numpy()) for s in sorted(set(videos["split"])) if s}
        return res


def _outdir(configs: list[Path], overrides: dict) -> str:
    from emoflow.config import load_config, repo_root

    cfg = load_config([repo_root() / "config.yaml", *configs], overrides=overrides)
    return cfg["outdir"]
