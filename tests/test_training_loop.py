"""emoflow.nets.loop: the one training loop (frame CNN, C3D, sequence heads, e2e network,
expression embedding).  Real optimisation of a tiny model; what is checked is the loop's
own job: the step order, which epoch is kept, early stopping, checkpoints and resuming."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from emoflow.nets import loop  # noqa: E402


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    y = (x @ torch.tensor([1.0, -2.0, 0.5]) > 0).long()
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return x, y, model


def run(scores, patience=None, progress=None, checkpoint=None, epochs=None):
    """Train for len(scores) epochs; epoch e's score is scores[e - 1] (None: not scored)."""
    x, y, model = problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    weights = {}

    def steps(epoch):
        for s in range(0, 64, 16):
            calls.append(("batch", epoch))
            yield torch.nn.functional.cross_entropy(model(x[s : s + 16]), y[s : s + 16])

    def end_epoch(epoch):
        weights[epoch] = model.weight.detach().clone()
        return {"epoch": epoch}, scores[epoch - 1]

    p = loop.run_epochs(
        model,
        opt,
        epochs or len(scores),
        steps,
        end_epoch,
        after_step=lambda: calls.append(("after", None)),
        begin_epoch=lambda e: calls.append(("begin", e)),
        patience=patience,
        progress=progress,
        checkpoint=checkpoint,
    )
    return p, model, weights, calls


def test_keeps_the_best_epoch_and_loads_its_weights():
    p, model, weights, calls = run([0.5, 0.9, 0.7, 0.9])
    assert p.best_epoch == 2 and p.best_key == 0.9 and p.epoch == 4  # a tie keeps the earlier epoch
    assert torch.equal(model.weight, weights[2]) and not torch.equal(weights[2], weights[4])
    assert [c for c in calls if c[0] == "begin"] == [("begin", e) for e in range(1, 5)]
    assert calls[:3] == [("begin", 1), ("batch", 1), ("after", None)]  # the caller's step follows each batch
    assert [r["epoch"] for r in p.history] == [1, 2, 3, 4]


def test_tuple_scores_break_ties_and_none_keeps_the_latest():
    p, *_ = run([(0.8, -0.5), (0.8, -0.4), (0.7, -0.1)])
    assert p.best_epoch == 2
    p, model, weights, _ = run([None, None, None])
    assert p.best_epoch == 3 and torch.equal(model.weight, weights[3])


def test_patience_stops_after_that_many_epochs_without_a_better_one():
    p, _, weights, _ = run([0.6, 0.5, 0.5, 0.9, 0.9], patience=2)
    assert p.stopped_early and p.epoch == 3 and p.best_epoch == 1 and list(weights) == [1, 2, 3]
    p, *_ = run([0.6, 0.5, 0.5, 0.9], patience=0)  # 0: never stops early
    assert not p.stopped_early and p.best_epoch == 4


def test_resuming_continues_the_epochs_and_the_best_so_far():
    scores = [0.1, 0.4, 0.3, 0.8, 0.2]
    saved = {}

    def keep(p):  # what a checkpoint stores after each epoch
        if p.epoch == 2:
            saved["progress"] = loop.Progress(p.epoch, p.best_epoch, p.best_key, dict(p.best_state), list(p.history))

    def restored():  # run_epochs advances the Progress it is given
        c = saved["progress"]
        return loop.Progress(c.epoch, c.best_epoch, c.best_key, dict(c.best_state), list(c.history))

    first, *_ = run(scores[:2], checkpoint=keep)
    assert saved["progress"].best_epoch == 2 and first.epoch == 2
    resumed, _, weights, calls = run(scores, progress=restored())
    assert [c for c in calls if c[0] == "begin"] == [("begin", 3), ("begin", 4), ("begin", 5)]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5] and resumed.best_epoch == 4
    # a resumed run whose later epochs are all worse keeps the checkpoint's best weights
    worse, model, _, _ = run([0.1, 0.4, 0.3, 0.2, 0.1], progress=restored())
    assert worse.best_epoch == 2 and torch.equal(model.weight, saved["progress"].best_state["weight"])
