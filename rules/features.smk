# Feature extractors, one job per (extractor, shard): src/emoflow/features.
# Which input, env and code each extractor has comes from emoflow.features.registry.


rule features:
    input:
        data=feature_inputs,
        model=lambda w: PLAN.feature_model(w.name),
        code=feature_code,
    output:
        table=L.features("{name}"),
        skips=L.feature_skips("{name}"),
    log:
        L.log("features/{name}"),
    conda:
        feature_env
    threads: 1
    resources:
        gpu=feature_gpu,
    params:
        cfg=lambda w: PLAN.feature_config(w.name),
    shell:
        STAGES["features"].shell()


rule fit_tfidf:
    input:
        manifest=lambda w: PLAN.fit_manifest(w.name),
        transcripts=per_shard(L.text()),
        code=code("emoflow.features.tfidf"),
    output:
        f"{OUT}/models/tfidf/{{name}}.json",
    log:
        f"{OUT}/logs/fit_tfidf/{{name}}.log",
    conda:
        env("text")
    threads: 1
    params:
        cfg=lambda w: PLAN.entry_config(w.name),
    shell:
        "python -m emoflow.features.tfidf fit {input.manifest:q} {output:q} {input.transcripts:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"


rule fit_audio_cnn:
    input:
        manifest=lambda w: PLAN.fit_manifest(w.name),
        audio=PLAN.audio_inputs(),
        code=code("emoflow.features.audio_cnn"),
    output:
        meta=f"{OUT}/models/audio_cnn/{{name}}.json",
        model=f"{OUT}/models/audio_cnn/{{name}}.keras",
    log:
        f"{OUT}/logs/fit_audio_cnn/{{name}}.log",
    conda:
        env("audio")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=lambda w: PLAN.entry_config(w.name),
        classes=json.dumps(CLASSES),
    shell:
        "python -m emoflow.features.audio_cnn fit {input.manifest:q} {output.meta:q} --audio {input.audio:q}"
        " --config {params.cfg:q} --classes {params.classes:q} --threads {threads} > {log:q} 2>&1"


rule fit_frame_cnn:
    input:
        manifest=lambda w: PLAN.fit_manifest(w.name),
        crops=lambda w: PLAN.train_crops(w.name),
        images=lambda w: PLAN.train_images(w.name),
        init=lambda w: PLAN.init_checkpoint(w.name),
        votes=lambda w: PLAN.train_votes(w.name),
        code=code("emoflow.features.frame_cnn"),
    output:
        meta=f"{OUT}/models/frame_cnn/{{name}}.json",
        model=f"{OUT}/models/frame_cnn/{{name}}.pt",
    log:
        f"{OUT}/logs/fit_frame_cnn/{{name}}.log",
    cache: True  # between projects: `--cache` with $SNAKEMAKE_OUTPUT_CACHE (README)
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=lambda w: PLAN.fit_config(w.name),
        classes=json.dumps(CLASSES),
    shell:
        "python -m emoflow.features.frame_cnn fit {output.meta:q} --manifest {input.manifest:q}"
        " --crops {input.crops:q} --config {params.cfg:q} --classes {params.classes:q}"
        " --threads {threads} > {log:q} 2>&1"


rule fit_c3d:
    input:
        manifest=lambda w: PLAN.fit_manifest(w.name),
        crops=PLAN.all_crop_inputs(),
        init=lambda w: PLAN.init_checkpoint(w.name),
        code=code("emoflow.features.c3d"),
    output:
        meta=f"{OUT}/models/c3d/{{name}}.json",
        model=f"{OUT}/models/c3d/{{name}}.pt",
    log:
        f"{OUT}/logs/fit_c3d/{{name}}.log",
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=lambda w: PLAN.fit_config(w.name),
        classes=json.dumps(CLASSES),
    shell:
        "python -m emoflow.features.c3d fit {input.manifest:q} {output.meta:q} --crops {input.crops:q}"
        " --config {params.cfg:q} --classes {params.classes:q} --threads {threads} > {log:q} 2>&1"
