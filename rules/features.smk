# Feature extractors, one job per (extractor, shard): src/emoflow/features.
# Which input, env and code each extractor has comes from emoflow.features.registry.


rule features:
    input:
        data=feature_inputs,
        model=lambda w: PLAN.feature_model(w.name),
        code=feature_code,
    output:
        table=L.features("{name}"),
        skips=L.feature_skips("{name}"),
    log:
        L.log("features/{name}"),
    conda:
        feature_env
    threads: 1
    resources:
        gpu=feature_gpu,
    params:
        cfg=lambda w: PLAN.feature_config(w.name),
    shell:
        STAGES["features"].shell()


# One rule definition for every fitted extractor (rules fit_tfidf, fit_audio_cnn, fit_frame_cnn,
# fit_c3d, fit_expression_embedding): what each reads, writes and where it runs comes from its
# registry Fit (emoflow.features.registry), its inputs from the plan, its command from
# emoflow.workflow.stages.FIT_SHELL. A fit that reads no run data is shared between
# workflows (cache: `--cache` with $SNAKEMAKE_OUTPUT_CACHE, README).
for _x, _fit in FITS.items():

    rule:
        name:
            f"fit_{_x}"
        input:
            unpack(fit_inputs),
            code=code(_fit.module, FIT_MODULE),
        output:
            **L.fit_outputs(_x, _fit.weights),
        log:
            L.log(f"fit_{_x}", "{name}"),
        cache: _fit.cache
        conda:
            env(registry.entry(_x).env)
        threads: _fit.threads
        resources:
            gpu=GPU if registry.entry(_x).gpu else 0,
        params:
            extractor=_x,
            inputs=fit_args,
            cfg=lambda w: PLAN.fit_config(w.name),
            classes=json.dumps(CLASSES),
        shell:
            FIT_SHELL
