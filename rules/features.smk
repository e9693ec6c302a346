# Feature extractors, one job per (extractor, shard): src/emoflow/features.
# Which input, env and code each extractor has comes from emoflow.features.registry.


rule features:
    input:
        data=feature_inputs,
        model=feature_model,
        code=feature_code,
    output:
        table=f"{OUT}/features/{{name}}/{{shard}}.parquet",
        skips=f"{OUT}/skips/features/{{name}}/{{shard}}.parquet",
    log:
        f"{OUT}/logs/features/{{name}}/{{shard}}.log",
    conda:
        feature_env
    threads: 1
    resources:
        gpu=feature_gpu,
    params:
        cfg=feature_config,
    shell:
        "python -m emoflow.features.base {wildcards.name:q} {output.table:q} {output.skips:q} {input.data:q}"
        " --config {params.cfg:q} --threads {threads} > {log:q} 2>&1"


rule fit_tfidf:
    input:
        manifest=fit_manifest,
        transcripts=per_shard(f"{OUT}/text/{{shard}}.parquet"),
        code=code("emoflow.features.tfidf"),
    output:
        f"{OUT}/models/tfidf/{{name}}.json",
    log:
        f"{OUT}/logs/fit_tfidf/{{name}}.log",
    conda:
        env("text")
    threads: 1
    params:
        cfg=lambda w: json.dumps(CFG["features"][w.name], sort_keys=True),
    shell:
        "python -m emoflow.features.tfidf fit {input.manifest:q} {output:q} {input.transcripts:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"


rule fit_audio_cnn:
    input:
        manifest=fit_manifest,
        audio=audio_inputs(),
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
        cfg=lambda w: json.dumps(CFG["features"][w.name], sort_keys=True),
        classes=json.dumps(labels.classes(CFG)),
    shell:
        "python -m emoflow.features.audio_cnn fit {input.manifest:q} {output.meta:q} --audio {input.audio:q}"
        " --config {params.cfg:q} --classes {params.classes:q} --threads {threads} > {log:q} 2>&1"


rule fit_frame_cnn:
    input:
        manifest=fit_manifest,
        crops=train_crops,
        images=train_images,
        init=init_checkpoint,
        votes=train_votes,
        code=code("emoflow.features.frame_cnn"),
    output:
        meta=f"{OUT}/models/frame_cnn/{{name}}.json",
        model=f"{OUT}/models/frame_cnn/{{name}}.pt",
    log:
        f"{OUT}/logs/fit_frame_cnn/{{name}}.log",
    conda:
        env("visual-torch")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=frame_cnn_fit_config,
        classes=json.dumps(labels.classes(CFG)),
        resume=lambda w: f"{OUT}/models/frame_cnn/{w.name}.resume",
    shell:
        "python -m emoflow.features.frame_cnn fit {input.manifest:q} {output.meta:q} --crops {input.crops:q}"
        " --config {params.cfg:q} --classes {params.classes:q} --resume {params.resume:q}"
        " --threads {threads} > {log:q} 2>&1"


rule fit_c3d:
    input:
        manifest=fit_manifest,
        crops=all_crop_inputs(),
        init=init_checkpoint,
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
        cfg=lambda w: json.dumps(
            {**FEATURES[w.name], "data_root": CFG["data_root"]}, sort_keys=True
        ),
        classes=json.dumps(labels.classes(CFG)),
    shell:
        "python -m emoflow.features.c3d fit {input.manifest:q} {output.meta:q} --crops {input.crops:q}"
        " --config {params.cfg:q} --classes {params.classes:q} --threads {threads} > {log:q} 2>&1"
