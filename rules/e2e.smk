# End-to-end multimodal networks (config e2e.<name>, one experiment each): src/emoflow/e2e.
# Rule e2e_tta caches the frame CNN's features of every face crop under the 12 face
# transforms once per run (TTA and training read them); rule e2e fits an experiment's seed
# ensemble on the partition's training split (epochs on held-out training speakers) and
# writes predictions, report and model exactly where and as rule classify does.


include: "e2e_inputs.smk"


ruleorder: e2e > classify


rule e2e_tta:
    input:
        unpack(e2e_tta_inputs),
        code=code(STAGES["e2e_tta"].module),
    output:
        table=L.e2e_tta("{table}_tta"),
    log:
        f"{OUT}/logs/e2e_tta/{{table}}/{{shard}}.log",
    wildcard_constraints:
        table=_alternatives(PLAN.e2e_tta_tables),
    conda:
        env("visual-torch")
    threads: 1
    resources:
        gpu=GPU,
    params:
        cfg=lambda w: PLAN.e2e_tta_config(w.table),
        name=lambda w: e2e_spec.tta_table(w.table),
    shell:
        STAGES["e2e_tta"].shell()


rule e2e:
    input:
        unpack(e2e_inputs),
        splits=f"{OUT}/splits/{{part}}.parquet",
        code=code("emoflow.e2e.stage"),
    output:
        predictions=f"{OUT}/predictions/{{part}}/{{experiment}}.parquet",
        report=f"{OUT}/models/classify/{{part}}/{{experiment}}.json",
        model=f"{OUT}/models/classify/{{part}}/{{experiment}}.model",
    log:
        f"{OUT}/logs/e2e/{{part}}/{{experiment}}.log",
    wildcard_constraints:
        experiment=_alternatives(E2E_SPECS),
    conda:
        env("classify")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=lambda w: PLAN.e2e_config(w.experiment, w.part),
        args=e2e_args,
    shell:
        "python -m emoflow.e2e.stage {wildcards.experiment:q} {input.splits:q} {output.predictions:q}"
        " {output.report:q} {output.model:q} {params.args} --config {params.cfg:q}"
        " --threads {threads} > {log:q} 2>&1"
