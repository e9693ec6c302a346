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
