# Late fusion per (partition, fusion group): src/emoflow/fusion. Method and weights are
# chosen on the validation split; test is only scored.


rule fusion:
    input:
        splits=f"{OUT}/splits/{{part}}.parquet",
        predictions=lambda w: predictions(w.part),
        reports=lambda w: experiment_reports(w.part),
        code=code("emoflow.fusion.stage"),
    output:
        choice=f"{OUT}/fusion/{{part}}/{{group}}.json",
        fused=f"{OUT}/fusion/{{part}}/{{group}}.parquet",
        submission=f"{OUT}/fusion/{{part}}/{{group}}.submission.csv",
    log:
        f"{OUT}/logs/fusion/{{part}}/{{group}}.log",
    conda:
        env("classify")
    threads: 1
    params:
        cfg=lambda w: PLAN.fusion_config(w.group),
    shell:
        "python -m emoflow.fusion.stage {input.splits:q} {output.choice:q} {output.fused:q} {output.submission:q}"
        " --predictions {input.predictions:q} --reports {input.reports:q} --config {params.cfg:q} > {log:q} 2>&1"
