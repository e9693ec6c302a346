# Face detection, tracking and alignment, one job per shard: src/emoflow/faces.


rule faces:
    input:
        sheet=f"{OUT}/shards/{{shard}}.parquet",
        probe=f"{OUT}/probe/{{shard}}.parquet",
        frames=f"{OUT}/frames/{{shard}}.parquet",
        hints=face_hints(),
        code=code("emoflow.faces.stage"),
    output:
        faces=f"{OUT}/faces/{{shard}}.parquet",
        videos=f"{OUT}/faces/{{shard}}.videos.parquet",
        crops=f"{OUT}/crops/{{shard}}.parquet",
        skips=f"{OUT}/skips/faces/{{shard}}.parquet",
    log:
        f"{OUT}/logs/faces/{{shard}}.log",
    conda:
        env("face")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=stage_slice(CFG, "faces"),
    shell:
        "python -m emoflow.faces.stage {input.sheet:q} {input.probe:q} {input.frames:q} {output.faces:q}"
        " {output.videos:q} {output.crops:q} {output.skips:q} --config {params.cfg:q}"
        " --threads {threads} > {log:q} 2>&1"


rule faces_summary:
    input:
        videos=per_shard(f"{OUT}/faces/{{shard}}.videos.parquet"),
        code=code("emoflow.faces.summary"),
    output:
        f"{OUT}/report/faces_summary.json",
    log:
        f"{OUT}/logs/faces_summary.log",
    conda:
        env("base")
    threads: 1
    shell:
        "python -m emoflow.faces.summary {output:q} {input.videos:q} > {log:q} 2>&1"
