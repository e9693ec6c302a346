# Expression similarity (src/emoflow/similarity): the 16-d expression embedding, fitted on
# FER2013 face triplets over a frame CNN trunk (rule fit_expression_embedding; the
# expression_embedding extractor applies it through rule features), and, when it is on,
# every face crop of the run embedded once for `emoflow similar` (rule similarity_index).


include: "similarity_inputs.smk"


rule fit_expression_embedding:
    input:
        unpack(embedding_trunk),
        data=embedding_data,
        code=code("emoflow.similarity.fit"),
    output:
        meta=f"{OUT}/models/expression_embedding/{{name}}.json",
        model=f"{OUT}/models/expression_embedding/{{name}}.pt",
    log:
        f"{OUT}/logs/fit_expression_embedding/{{name}}.log",
    cache: True  # between projects: `--cache` with $SNAKEMAKE_OUTPUT_CACHE (README)
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=embedding_fit_config,
    shell:
        "python -m emoflow.similarity.fit {input.trunk:q} {output.meta:q}"
        " --config {params.cfg:q} --threads {threads} > {log:q} 2>&1"


rule similarity_index:
    input:
        unpack(similarity_model),
        crops=per_shard(L.crops()),
        code=code("emoflow.similarity.index"),
    output:
        index=f"{OUT}/similarity/index.parquet",
        meta=f"{OUT}/similarity/index.json",
    log:
        f"{OUT}/logs/similarity_index.log",
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        stages=json.dumps(
            {
                "probe": CFG["probe"],
                "frames": CFG["frames"],
                "faces": {**CFG["faces"], "hints": None},
            },
            sort_keys=True,
        ),
    shell:
        "python -m emoflow.similarity.index {output.index:q} {input.model:q} {input.crops:q}"
        " --stages {params.stages:q} --threads {threads} > {log:q} 2>&1"
