# Input functions and config of rules/robustness.smk.

ROBUST = CFG["robustness"]


def robustness_config():
    """The robustness section the stage reads, with the FER+ -> FER2013 class map."""
    return json.dumps(
        {
            **{k: v for k, v in ROBUST.items() if k != "enabled"},
            "data_root": CFG["data_root"],
            "label_map": labels.label_map(CFG, "ferplus8", "fer2013"),
        },
        sort_keys=True,
    )


def robustness_scores():
    return expand(
        f"{OUT}/robustness/scores/{{target}}_n{{noise}}.json",
        target=ROBUST["targets"],
        noise=ROBUST["noise"],
    )


def robustness_targets():
    return [f"{OUT}/report/robustness.csv"] if ROBUST["enabled"] else []
