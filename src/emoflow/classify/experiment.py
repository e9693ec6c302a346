"""One experiment's fitted classifier: fitted by the classify stage, applied by the stage and
by the predictor (emoflow.predict.apply) through the same :meth:`Experiment.predict_proba`.

An :class:`Experiment` is the classifier of a spec (``type``: a scikit-learn kind, or
``sequence`` for the torch sequence heads), its fitted model and the training prior that
stands in for a video whose feature is missing.  What comes before it -- reading the
feature, the temporal encoder, speaker normalisation -- belongs to the caller: the stage
fits those on the training split, the predictor applies the fitted ones.

* :meth:`Experiment.fit`: scikit-learn kinds by speaker-grouped cross-validation on the
  training videos (:func:`emoflow.classify.models.search`), refitted on all of them;
  sequence heads with their epoch chosen on a seeded ``holdout`` fraction of the training
  *speakers* (:func:`emoflow.dataset.holdout.speaker_holdout`).
* :meth:`Experiment.save` / :meth:`Experiment.load`: a skops file (loaded with an explicit
  type allow-list, never pickle) or a torch state file (``weights_only``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoflow.storage import atomic_path

FORMATS = {"sklearn": "skops", "torch": "torch"}


def prior(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of the training labels ``y``."""
    return np.bincount(y, minlength=n_classes) / max(1, len(y))


@dataclass
class Experiment:
    classes: list[str]
    spec: dict  # the classifier spec (config classifiers.<name>)
    kind: str  # "sklearn" | "torch"
    model: object
    prior: np.ndarray  # (C,) what it says for a video it cannot see

    @property
    def sequence(self) -> bool:
        return self.kind == "torch"

    @classmethod
    def fit(cls, classes, spec: dict, y, groups, X=None, sequences=None, evaluation=None, threads: int = 1, log=None):
        """(fitted experiment, fit report) from the training videos only: their labels ``y``,
        speakers ``groups`` and either video vectors ``X`` or frame ``sequences``."""
        evaluation = evaluation or {}
        metric, seed = evaluation.get("metric", "accuracy"), int(evaluation.get("seed", 0))
        y, groups = np.asarray(y), np.asarray(groups)
        p = prior(y, len(classes))
        if spec["type"] == "sequence":
            from emoflow.classify import sequence as seqm
            from emoflow.dataset.holdout import speaker_holdout

            hold = speaker_holdout(groups, float(spec.get("holdout", 0.2)), seed)
            keys = ("epochs", "batch_size", "lr", "weight_decay", "max_len", "patience")
            model, history = seqm.fit(
                [s for s, h in zip(sequences, hold) if not h],
                y[~hold],
                [s for s, h in zip(sequences, hold) if h],
                y[hold],
                len(classes),
                spec,
                seed=seed,
                threads=threads,
                log=log,
                **{k: spec[k] for k in keys if k in spec},
            )
            best = max(history, key=lambda h: (h["val_acc"], -h["val_loss"]))
            report = {
                "holdout_speakers": int(len(np.unique(groups[hold]))),
                "best_epoch": best["epoch"],
                "holdout_accuracy": best["val_acc"],
                "epochs_run": len(history),
                "history": history,
            }
            return cls(list(classes), spec, "torch", model, p), report
        from emoflow.classify import models

        model, report = models.search(
            X, y, groups, spec, metric=metric, folds=int(evaluation.get("cv_folds", 5)), seed=seed, threads=threads
        )
        return cls(list(classes), spec, "sklearn", model, p), report

    def predict_proba(self, n: int, have, X=None, sequences=None) -> np.ndarray:
        """(n, C) class probabilities: the model's for the rows ``have`` (their video vectors
        ``X``, or frame ``sequences``, one per such row, in order), the prior elsewhere."""
        probs = np.tile(np.asarray(self.prior, float), (n, 1))
        idx = np.flatnonzero(np.asarray(have, bool))
        if not len(idx):
            return probs
        if self.sequence:
            from emoflow.classify import sequence as seqm

            probs[idx] = seqm.predict_proba(self.model, list(sequences), max_len=self.spec.get("max_len", 64))
        else:
            from emoflow.classify.models import proba_full

            probs[idx] = proba_full(self.model, X, len(self.classes))
        return probs

    @property
    def model_format(self) -> str:
        return FORMATS[self.kind]

    def save(self, path: str | Path, meta: dict) -> None:
        """The fitted model alone (its prior and spec live in the experiment's report)."""
        if self.sequence:
            from emoflow.classify import sequence as seqm

            with atomic_path(Path(path)) as tmp:
                seqm.save(self.model, tmp, meta)
        else:
            import skops.io as sio

            with atomic_path(Path(path), suffix=".skops") as tmp:
                sio.dump(self.model, tmp)

    @staticmethod
    def load_model(path: str | Path, model_format: str):
        """(kind, model) of a saved model, without running code from the file: a torch state
        (tensors and plain data) or a skops file whose every type is on emoflow's allow-list
        (:func:`emoflow.predict.bundle.check_skops`)."""
        p = Path(path)
        if model_format == "torch":
            from emoflow.classify import sequence as seqm

            return "torch", seqm.load(p)[0]
        if model_format != "skops":
            raise ValueError(f"{path}: unknown model format {model_format!r}")
        import skops.io as sio

        from emoflow.predict.bundle import check_skops

        return "sklearn", sio.load(p, trusted=check_skops(p))
