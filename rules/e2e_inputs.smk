# Input functions of rules/e2e.smk (end-to-end multimodal networks, emoflow.e2e): thin
# wrappers around the plan (emoflow.workflow.plan), as rules/common.smk.
from emoflow.e2e import spec as e2e_spec  # noqa: E402


def e2e_inputs(w):
    """The shard tables of the audio feature and of the face feature (or its transform cache)."""
    return PLAN.e2e_inputs(w.experiment, w.part)


def e2e_args(wildcards, input):
    """--audio / --face arguments (left out when the branch is off)."""
    parts = []
    for key in ("audio", "face"):
        files = list(getattr(input, key))
        if files:
            parts.append(f"--{key} " + " ".join(shlex.quote(f) for f in files))
    return " ".join(parts)


def e2e_tta_inputs(w):
    """The shard's crops (as rule features reads them) and the frame CNN fit."""
    meta = fitted_model(w.table)
    return {
        "crops": L.crop_inputs(w.shard),
        "model": [meta, str(Path(meta).with_suffix(".pt"))],
    }
