# Manifest -> shard sheets: src/emoflow/dataset.


rule shard_sheet:
    input:
        # ancient: the manifest's timestamp does not matter, the shard's own
        # content does (params.digest), so adding one video reruns one shard.
        manifest=ancient(MANIFEST),
        code=code("emoflow.dataset.shards"),
    output:
        f"{OUT}/shards/{{shard}}.parquet",
    log:
        f"{OUT}/logs/shards/{{shard}}.log",
    conda:
        env("base")
    threads: 1
    params:
        digest=shard_digest,
        cfg=stage_slice(CFG, "sharding"),
    shell:
        "python -m emoflow.dataset.shards {input.manifest:q} {wildcards.shard:q} {output:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"


rule splits:
    input:
        # ancient: what matters is the labels' content (params.digest), not the timestamp
        manifest=ancient(MANIFEST),
        code=code("emoflow.dataset.splits"),
    output:
        table=f"{OUT}/splits/{{part}}.parquet",
        csv=f"{OUT}/splits/{{part}}.csv",
    log:
        f"{OUT}/logs/splits/{{part}}.log",
    conda:
        env("base")
    threads: 1
    params:
        digest=LABELS_DIGEST,
        cfg=stage_slice(CFG, "evaluation"),
    shell:
        "python -m emoflow.dataset.splits {input.manifest:q} {wildcards.part:q} {output.table:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"
