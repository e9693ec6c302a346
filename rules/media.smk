# Probe, frames and audio, one job per shard: src/emoflow/media.


rule probe:
    input:
        sheet=L.sheet(),
        media=lambda w: PLAN.shard_media(w.shard),
        code=code(STAGES["probe"].module),
    output:
        table=L.probe(),
        skips=L.skips("probe"),
    log:
        L.log("probe"),
    conda:
        env("base")
    threads: 1
    params:
        cfg=stage_slice(CFG, "probe"),
    shell:
        STAGES["probe"].shell()


rule frames:
    input:
        sheet=L.sheet(),
        probe=L.probe(),
        code=code(STAGES["frames"].module),
    output:
        table=L.frames(),
        skips=L.skips("frames"),
    log:
        L.log("frames"),
    conda:
        env("base")
    threads: 2
    params:
        cfg=stage_slice(CFG, "frames"),
    shell:
        STAGES["frames"].shell()


rule audio:
    input:
        sheet=L.sheet(),
        probe=L.probe(),
        code=code(STAGES["audio"].module),
    output:
        index=L.audio_index(),
        wavs=directory(L.audio_wavs()),
        skips=L.skips("audio"),
    log:
        L.log("audio"),
    conda:
        env("base")
    threads: 1
    params:
        cfg=stage_slice(CFG, "audio"),
    shell:
        STAGES["audio"].shell()


rule media_summary:
    input:
        probe=per_shard(L.probe()),
        frames=per_shard(L.frames()),
        audio=per_shard(L.audio_index()),
        skips=skip_tables("probe", "frames", "audio"),
        code=code("emoflow.media.summary"),
    output:
        summary=f"{OUT}/report/media_summary.json",
        skips=f"{OUT}/report/skips.csv",
    log:
        f"{OUT}/logs/media_summary.log",
    conda:
        env("base")
    threads: 1
    shell:
        "python -m emoflow.media.summary --probe {input.probe:q} --frames {input.frames:q}"
        " --audio {input.audio:q} --skips {input.skips:q}"
        " --out {output.summary:q} --skips-out {output.skips:q} > {log:q} 2>&1"
