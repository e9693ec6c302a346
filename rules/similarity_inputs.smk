# Input functions and settings of rules/similarity.smk (the expression embedding's fit and
# the similarity index), kept apart from the rules as rules/common.smk is.
from emoflow.similarity.fit import DEFAULTS as EMBEDDING_DEFAULTS  # noqa: E402

SIMILARITY = CFG["similarity"]


def _embedding(name):
    return {**EMBEDDING_DEFAULTS, **FEATURES[name]}


def _trunk_feature(name):
    """The frame_cnn entry whose fit is the embedding's trunk (its fold's under k-fold)."""
    trunk = _embedding(name)["trunk"]
    table = feature_of(trunk, PLAN.fold_of[name]) if name in PLAN.fold_of else trunk
    if FEATURES.get(table, {}).get("extractor") != "frame_cnn":
        raise WorkflowError(
            f"{_CONFIG_SOURCE}: features.{name}.trunk: {trunk!r} is not a frame_cnn entry "
            "(or set trunk_model to a frame CNN fit's JSON)"
        )
    return table


def embedding_trunk(wildcards):
    """The trunk's frame CNN fit: trunk_model, else the trunk entry's fit (JSON, weights)."""
    given = _embedding(wildcards.name)["trunk_model"]
    meta = data_path(given) if given else fitted_model(_trunk_feature(wildcards.name))
    return {"trunk": meta, "trunk_weights": str(Path(meta).with_suffix(".pt"))}


def embedding_data(wildcards):
    """FER2013 faces and the triplets (val scored once at the end, when present)."""
    p = _embedding(wildcards.name)
    val = data_path(p["val_triplets"]) if p["val_triplets"] else None
    return [data_path(p["images"]), data_path(p["triplets"])] + (
        [val] if val and Path(val).is_file() else []
    )


def embedding_fit_config(wildcards):
    params = dict(FEATURES[wildcards.name])
    framing = None
    if not _embedding(wildcards.name)["trunk_model"]:
        framing = FEATURES[_trunk_feature(wildcards.name)].get("framing")
    return json.dumps(
        {**params, "data_root": CFG["data_root"], "trunk_framing": framing},
        sort_keys=True,
    )


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
