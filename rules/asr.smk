# Offline speech recognition, one job per shard: src/emoflow/asr.


rule asr:
    input:
        index=f"{OUT}/audio/{{shard}}.parquet",
        wavs=f"{OUT}/audio/{{shard}}",
        code=code("emoflow.asr.stage"),
    output:
        table=f"{OUT}/text/{{shard}}.parquet",
        skips=f"{OUT}/skips/asr/{{shard}}.parquet",
    log:
        f"{OUT}/logs/asr/{{shard}}.log",
    conda:
        env("text")
    threads: 1
    params:
        cfg=stage_slice(CFG, "asr", "feature_inputs"),
    shell:
        "python -m emoflow.asr.stage {input.index:q} {input.wavs:q} {output.table:q} {output.skips:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"
