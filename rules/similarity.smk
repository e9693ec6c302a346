# Expression similarity (src/emoflow/similarity): the 16-d expression embedding, fitted on
# FER2013 face triplets over a frame CNN trunk (rule fit_expression_embedding, rules/features.smk;
# the expression_embedding extractor applies it through rule features), and, when it is on,
# every face crop of the run embedded once for `emoflow similar` (rule similarity_index).


include: "similarity_inputs.smk"


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
