# The run's summary table and plots: src/emoflow/evaluate. Everything here lands in
# `snakemake --report report.html`.


rule report:
    input:
        experiments=[p for part in PARTS for p in experiment_reports(part)],
        predictions=[p for part in PARTS for p in predictions(part)],
        fusion=PLAN.fusion_outputs(),
        fused=[p.removesuffix(".json") + ".parquet" for p in PLAN.fusion_outputs()],
        code=code("emoflow.evaluate.report"),
    output:
        summary=report(
            f"{OUT}/report/summary.csv",
            caption="captions/summary.rst",
            category="Results",
        ),
        markdown=f"{OUT}/report/summary.md",
        folds=report(
            f"{OUT}/report/folds.csv",
            caption="captions/folds.rst",
            category="Results",
        ),
        scores=report(
            f"{OUT}/report/scores.png",
            caption="captions/scores.rst",
            category="Results",
        ),
        confusion=report(
            expand(f"{OUT}/report/confusion_{{group}}.png", group=sorted(GROUPS)),
            caption="captions/confusion.rst",
            category="Results",
        ),
        weights=report(
            f"{OUT}/report/fusion_weights.png",
            caption="captions/weights.rst",
            category="Results",
        ),
    log:
        f"{OUT}/logs/report.log",
    conda:
        env("classify")
    threads: 1
    params:
        outdir=lambda w, output: os.path.dirname(output.summary),
        # a function: protocol texts may hold braces, which Snakemake would read as wildcards
        cfg=lambda w: json.dumps(
            {
                "classes": CLASSES,
                "evaluation": {"metric": PLAN.evaluation["metric"]},
                "protocol": PLAN.protocol,
            },
            sort_keys=True,
        ),
    shell:
        "python -m emoflow.evaluate.report {params.outdir:q} --experiments {input.experiments:q}"
        " --predictions {input.predictions:q} --fusion {input.fusion:q} --fused {input.fused:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"


rule deployments:
    input:
        splits=f"{OUT}/splits/{BUNDLE_PART}.parquet",
        experiments=experiment_reports(BUNDLE_PART),
        models=expand(
            f"{OUT}/models/classify/{BUNDLE_PART}/{{experiment}}.model",
            experiment=PLAN.fused,
        ),
        predictions=predictions(BUNDLE_PART),
        encoders=PLAN.deployment_encoders(BUNDLE_PART),
        features=PLAN.deployment_features(BUNDLE_PART),
        fusion=expand(
            f"{OUT}/fusion/{BUNDLE_PART}/{{group}}.json", group=sorted(GROUPS)
        ),
        fused=expand(
            f"{OUT}/fusion/{BUNDLE_PART}/{{group}}.parquet", group=sorted(GROUPS)
        ),
        code=code("emoflow.evaluate.deployments"),
    output:
        json=f"{OUT}/report/deployments.json",
        markdown=report(
            f"{OUT}/report/deployments.md",
            caption="captions/deployments.rst",
            category="Results",
        ),
    log:
        f"{OUT}/logs/deployments.log",
    conda:
        env("predict")
    threads: 1
    shell:
        "python -m emoflow.evaluate.deployments {output.json:q} {output.markdown:q} --splits {input.splits:q}"
        " --experiments {input.experiments:q} --models {input.models:q} --predictions {input.predictions:q}"
        " --encoders {input.encoders:q} --features {input.features:q} --fusion {input.fusion:q}"
        " --fused {input.fused:q} > {log:q} 2>&1"
