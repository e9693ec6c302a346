"""The one training loop of every torch model emoflow trains: the frame CNN
(:mod:`emoflow.nets.train`), C3D (:mod:`emoflow.features.c3d`), the sequence heads
(:mod:`emoflow.classify.sequence`), the end-to-end network (:mod:`emoflow.e2e.fit`) and the
expression embedding (:mod:`emoflow.similarity.fit`).

What differs between them is passed in: ``steps(epoch)`` yields each batch's loss (the
caller draws its batch, augments and runs the forward pass, in its own random order), and
``end_epoch(epoch)`` scores the epoch on held-out training data and returns its history
row and score.  The loop owns the rest, once: the optimiser step (and the caller's extra
step, then the scheduler's), which epoch is best (highest score; a score of ``None``, no
held-out data, keeps the latest epoch), its weights, early stopping after ``patience``
epochs without a better one, a per-epoch checkpoint hook, and the best weights loaded back
at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass
class Progress:
    """Where a run of epochs stands: what a resume checkpoint keeps of it."""

    epoch: int = 0  # epochs done
    best_epoch: int = 0
    best_key: Any = None  # the best epoch's score (None: none scored yet)
    best_state: dict | None = None  # its weights
    history: list[dict] = field(default_factory=list)
    waited: int = 0  # epochs since the best one
    stopped_early: bool = False


def snapshot(model) -> dict:
    """A copy of the model's weights (buffers included)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def higher(key, progress: Progress) -> bool:
    """The default choice: a strictly higher score than the best so far (ties keep the
    earlier epoch; scores may be tuples, e.g. (accuracy, -loss))."""
    return progress.best_key is None or key > progress.best_key


def run_epochs(
    model,
    opt,
    epochs: int,
    steps: Callable[[int], Iterable],
    end_epoch: Callable[[int], tuple[dict, Any]],
    *,
    sched=None,
    after_step: Callable[[], None] | None = None,
    begin_epoch: Callable[[int], None] | None = None,
    better: Callable[[Any, Progress], bool] = higher,
    patience: int | None = None,
    progress: Progress | None = None,
    checkpoint: Callable[[Progress], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Progress:
    """Train ``model`` in place for epochs ``progress.epoch + 1 .. epochs`` (1-based); on
    return it holds the best epoch's weights (``progress.best_state``, when one was kept).

    Per epoch: ``begin_epoch(epoch)``, ``model.train()``, then for each loss that
    ``steps(epoch)`` yields: zero the gradients, backward, ``opt.step()``,
    ``after_step()``, ``sched.step()``.  Then ``end_epoch(epoch)`` gives (history row,
    score); an epoch is kept when its score is ``None`` or ``better(score, progress)``;
    ``checkpoint(progress)`` runs; after ``patience`` epochs (None or 0: never) without a
    kept one, training stops.  ``progress`` resumes a run (a checkpoint's, or one that
    starts with given best weights, e.g. the untrained network scored as epoch 0)."""
    p = progress if progress is not None else Progress()
    for epoch in range(p.epoch + 1, int(epochs) + 1):
        if begin_epoch is not None:
            begin_epoch(epoch)
        model.train()
        for loss in steps(epoch):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            if sched is not None:
                sched.step()
        row, key = end_epoch(epoch)
        p.history.append(row)
        p.epoch = epoch
        if key is None or better(key, p):
            p.best_epoch, p.best_key, p.best_state, p.waited = epoch, key, snapshot(model), 0
        else:
            p.waited += 1
        if checkpoint is not None:
            checkpoint(p)
        if patience and p.waited >= patience:
            p.stopped_early = True
            if log:
                log(f"no better epoch for {p.waited} epochs (best: epoch {p.best_epoch}): stopping")
            break
    if p.best_state is not None:
        model.load_state_dict(p.best_state)
    return p
