# Input functions and settings of rules/similarity.smk (the similarity index), kept apart
# from the rules as rules/common.smk is (the embedding's fit: emoflow.workflow.plan).
SIMILARITY = CFG["similarity"]


def _similarity_feature():
    """The expression_embedding entry the index uses (similarity.feature, else the only one)."""
    names = sorted(
        n
        for n, p in PLAN.features_all.items()
        if p["extractor"] == "expression_embedding"
    )
    chosen = SIMILARITY["feature"]
    if chosen and chosen not in names:
        raise WorkflowError(
            f"{_CONFIG_SOURCE}: similarity.feature: {chosen!r} is not an expression_embedding entry ({names})"
        )
    if not chosen and len(names) > 1:
        raise WorkflowError(
            f"{_CONFIG_SOURCE}: similarity.feature: several expression_embedding entries ({names}); name one"
        )
    return chosen or (names[0] if names else None)


SIMILARITY_FEATURE = _similarity_feature() if SIMILARITY["index"] else None
# a fit made elsewhere (e.g. another run's models/expression_embedding/<name>.json), for
# runs that fit none: the demo has no FER2013 triplets to train on
SIMILARITY_MODEL = (
    data_path(SIMILARITY["model"])
    if SIMILARITY["index"] and SIMILARITY["model"]
    else None
)
if SIMILARITY_MODEL and SIMILARITY_FEATURE:
    raise WorkflowError(
        f"{_CONFIG_SOURCE}: similarity.model is set and the run fits expression_embedding "
        f"entry {SIMILARITY_FEATURE!r}: the index would have two models; drop one"
    )


def similarity_model(wildcards):
    """The fit the index embeds with: similarity.model, else the run's own (the bundle
    partition's, under k-fold)."""
    if SIMILARITY_MODEL:
        meta = SIMILARITY_MODEL
    elif not SIMILARITY_FEATURE:
        raise WorkflowError(
            "similarity index: no expression_embedding feature is on and no similarity.model "
            "(or similarity.index is false)"
        )
    else:
        meta = fitted_model(feature_of(SIMILARITY_FEATURE, BUNDLE_PART))
    return {"model": meta, "weights": str(Path(meta).with_suffix(".pt"))}


def similarity_targets():
    """The index, when an expression embedding is on or similarity.model names one."""
    return (
        [f"{OUT}/similarity/index.parquet"]
        if SIMILARITY_FEATURE or SIMILARITY_MODEL
        else []
    )
