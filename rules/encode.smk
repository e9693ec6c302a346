# Temporal encoding of frame-level features, one job per (partition, feature, encoding):
# src/emoflow/encode. The encoder is fitted on the partition's training videos only.


rule encode:
    input:
        splits=f"{OUT}/splits/{{part}}.parquet",
        features=lambda w: PLAN.encoded_inputs(w.name, w.part),
        code=code("emoflow.encode.stage"),
    output:
        table=f"{OUT}/encoded/{{part}}/{{name}}.{{encoding}}.parquet",
        model=f"{OUT}/models/encode/{{part}}/{{name}}.{{encoding}}.npz",
    log:
        f"{OUT}/logs/encode/{{part}}/{{name}}.{{encoding}}.log",
    conda:
        env("classify")
    threads: 1
    params:
        cfg=lambda w: json.dumps(CFG["encodings"][w.encoding], sort_keys=True),
    shell:
        "python -m emoflow.encode.stage {input.splits:q} {output.table:q} {output.model:q}"
        " --inputs {input.features:q} --config {params.cfg:q} > {log:q} 2>&1"
