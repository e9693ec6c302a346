# Face detection, tracking and alignment, one job per shard: src/emoflow/faces.


rule faces:
    input:
        sheet=L.sheet(),
        probe=L.probe(),
        frames=L.frames(),
        hints=PLAN.face_hints(),
        code=code(STAGES["faces"].module),
    output:
        faces=L.faces(),
        videos=L.face_videos(),
        crops=L.crops(),
        skips=L.skips("faces"),
    log:
        L.log("faces"),
    conda:
        env("face")
    threads: 2
    resources:
        gpu=GPU,
    params:
        cfg=stage_slice(CFG, "faces"),
    shell:
        STAGES["faces"].shell()


rule faces_summary:
    input:
        videos=per_shard(L.face_videos()),
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
