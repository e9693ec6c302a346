# Manifest -> shard sheets: src/emoflow/dataset.

if CORPUS:

    rule manifest:
        # a corpus folder -> the run's manifest (emoflow.dataset.corpora); the files it
        # leaves out are listed beside it. params.digest: the rows found when the DAG was
        # built, so files added to the corpus rerun it.
        input:
            code=code("emoflow.dataset.corpora"),
        output:
            manifest=MANIFEST,
            unmatched=f"{OUT}/manifest/manifest.unmatched.csv",
        log:
            f"{OUT}/logs/manifest.log",
        conda:
            env("base")
        threads: 1
        params:
            adapter=CFG["dataset"]["corpus"]["adapter"],
            root=CFG["dataset"]["corpus"]["root"],
            options=json.dumps(PLAN.corpus_options(), sort_keys=True),
            digest=PLAN.corpus_digest,
        shell:
            "python -m emoflow.dataset.corpora {params.adapter:q} {params.root:q} -o {output.manifest:q}"
            " --absolute --options {params.options:q} > {log:q} 2>&1"


rule shard_sheet:
    input:
        # ancient: the manifest's timestamp does not matter, the shard's own
        # content does (params.digest), so adding one video reruns one shard.
        manifest=ancient(MANIFEST),
        code=code(STAGES["shard_sheet"].module),
    output:
        sheet=L.sheet(),
    log:
        L.log("shards"),
    conda:
        env("base")
    threads: 1
    params:
        digest=lambda w: PLAN.digests[w.shard],
        cfg=stage_slice(CFG, "sharding"),
    shell:
        STAGES["shard_sheet"].shell()


rule splits:
    input:
        # ancient: what matters is the labels' content (params.digest), not the timestamp
        manifest=ancient(MANIFEST),
        code=code("emoflow.dataset.splits"),
        protocol=PLAN.protocol_files,  # evaluation.protocol's YAML (editing it reruns the splits)
    output:
        table=f"{OUT}/splits/{{part}}.parquet",
        csv=f"{OUT}/splits/{{part}}.csv",
    log:
        f"{OUT}/logs/splits/{{part}}.log",
    conda:
        env("base")
    threads: 1
    params:
        digest=PLAN.labels_digest,
        cfg=stage_slice(CFG, "evaluation", "splits"),
    shell:
        "python -m emoflow.dataset.splits {input.manifest:q} {wildcards.part:q} {output.table:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"
