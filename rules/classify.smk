# Experiments (feature x encoding x classifier), one job per (partition, experiment):
# src/emoflow/classify. Fitted on the partition's training split only.


rule classify:
    input:
        splits=f"{OUT}/splits/{{part}}.parquet",
        features=lambda w: PLAN.experiment_inputs(w.experiment, w.part),
        code=code("emoflow.classify.stage"),
    output:
        predictions=f"{OUT}/predictions/{{part}}/{{experiment}}.parquet",
        report=f"{OUT}/models/classify/{{part}}/{{experiment}}.json",
        model=f"{OUT}/models/classify/{{part}}/{{experiment}}.model",
    log:
        f"{OUT}/logs/classify/{{part}}/{{experiment}}.log",
    wildcard_constraints:
        experiment=_alternatives(EXPERIMENTS),
    conda:
        env("classify")
    threads: 1
    resources:
        gpu=experiment_gpu,
    params:
        cfg=lambda w: PLAN.experiment_config(w.experiment),
    shell:
        "python -m emoflow.classify.stage {wildcards.experiment:q} {input.splits:q} {output.predictions:q}"
        " {output.report:q} {output.model:q} --inputs {input.features:q} --config {params.cfg:q}"
        " --threads {threads} > {log:q} 2>&1"
