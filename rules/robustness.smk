# Label-noise and occlusion robustness of the frame CNN (src/emoflow/robustness): one
# small FER2013 frame CNN per training target kind and label-noise rate, each scored on
# FER2013 public_test (clean labels, FER+ votes, occluders), then a table and two plots.
# Off unless robustness.enabled; the models are ordinary frame_cnn fits.


include: "robustness_inputs.smk"


rule robustness_fit:
    input:
        images=data_path(ROBUST["net"]["train"]["path"]),
        votes=data_path(ROBUST["votes"]),
        code=code("emoflow.robustness.stage"),
    output:
        meta=f"{OUT}/robustness/models/{{target}}_n{{noise}}.json",
        model=f"{OUT}/robustness/models/{{target}}_n{{noise}}.pt",
        faces=f"{OUT}/robustness/models/{{target}}_n{{noise}}.faces.parquet",
    log:
        f"{OUT}/logs/robustness/fit_{{target}}_n{{noise}}.log",
    wildcard_constraints:
        target="hard|votes|uncertainty",
        noise="[0-9]+",
    # FER2013 and FER+ only: shared between workflows (`--cache`, README). Snakemake's cache
    # key hashes params, not wildcards, so target and noise are params too.
    cache: True
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        target=lambda w: w.target,
        noise=lambda w: w.noise,
        cfg=lambda w: robustness_config(),
        classes=json.dumps(labels.classes(CFG, "fer2013")),
    shell:
        "python -m emoflow.robustness.stage fit {params.target:q} {params.noise:q} {output.meta:q}"
        " {output.faces:q} --config {params.cfg:q} --classes {params.classes:q}"
        " --threads {threads} > {log:q} 2>&1"


rule robustness_score:
    input:
        meta=f"{OUT}/robustness/models/{{target}}_n{{noise}}.json",
        model=f"{OUT}/robustness/models/{{target}}_n{{noise}}.pt",
        faces=f"{OUT}/robustness/models/{{target}}_n{{noise}}.faces.parquet",
        images=data_path(ROBUST["net"]["train"]["path"]),
        votes=data_path(ROBUST["votes"]),
        code=code("emoflow.robustness.stage"),
    output:
        f"{OUT}/robustness/scores/{{target}}_n{{noise}}.json",
    log:
        f"{OUT}/logs/robustness/score_{{target}}_n{{noise}}.log",
    wildcard_constraints:
        target="hard|votes|uncertainty",
        noise="[0-9]+",
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=lambda w: robustness_config(),
    shell:
        "python -m emoflow.robustness.stage score {input.meta:q} {input.faces:q} {output:q}"
        " --config {params.cfg:q} --threads {threads} > {log:q} 2>&1"


rule robustness_report:
    input:
        scores=robustness_scores(),
        code=code("emoflow.robustness.report"),
    output:
        table=report(
            f"{OUT}/report/robustness.csv",
            caption="captions/robustness.rst",
            category="Robustness",
        ),
        markdown=f"{OUT}/report/robustness.md",
        noise=report(
            f"{OUT}/report/robustness_noise.png",
            caption="captions/robustness.rst",
            category="Robustness",
        ),
        occlusion=report(
            f"{OUT}/report/robustness_occlusion.png",
            caption="captions/robustness.rst",
            category="Robustness",
        ),
    log:
        f"{OUT}/logs/robustness/report.log",
    conda:
        env("classify")
    threads: 1
    resources:
        gpu=0,
    params:
        outdir=lambda w, output: os.path.dirname(output.table),
    shell:
        "python -m emoflow.robustness.report {params.outdir:q} --scores {input.scores:q} > {log:q} 2>&1"
