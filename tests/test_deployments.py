"""The deployments rule on the demo run: the same fitted systems scored each clip alone,
a speaker's clips together and with an enrolment; the speaker batch is the workflow's own
figure (reproduced), and only speaker-normalised experiments may differ between them."""

from __future__ import annotations

import json

import numpy as np

from emoflow.evaluate.deployments import DEPLOYMENTS, halves


def test_halves_split_each_speaker_in_two():
    ids = [f"v{i}" for i in range(11)]
    spk = np.array(["a"] * 6 + ["b"] * 5, object)
    h = halves(ids, spk, seed=0)
    assert h[spk == "a"].sum() == 3 and h[spk == "b"].sum() == 2
    np.testing.assert_array_equal(h, halves(list(reversed(ids))[::-1], spk, seed=0))  # by id, not by order given


def test_deployments_report_on_the_demo(demo_run):
    path = demo_run / "report" / "deployments.json"
    assert path.is_file(), "the demo run has no report/deployments.json"
    res = json.loads(path.read_text())
    assert res["speaker_batch_reproduces_workflow_max_abs_diff"] <= 1e-6
    summary_md = (demo_run / "report" / "deployments.md").read_text()
    assert "each clip alone" in summary_md and "enrolled speaker" in summary_md
    normalised = [n for n, s in res["systems"].items() if s["kind"] == "experiment" and s["normalize"] == "speaker"]
    for name, s in res["systems"].items():
        assert set(DEPLOYMENTS) <= set(s)
        if s["kind"] == "experiment" and s["normalize"] != "speaker":
            assert s["clip_alone"] == s["speaker_batch"] == s["enrolment"], name
    # the workflow's own test figures are the speaker-batch ones
    for name in normalised:
        rep = json.loads((demo_run / "models" / "classify" / "main" / f"{name}.json").read_text())
        assert abs(rep["scores"]["test"]["accuracy"] - res["systems"][name]["speaker_batch"]["accuracy"]) < 1e-12
    assert res["headline"]["best_fused"]["system"].startswith("fusion:")
