# Probe, frames and audio, one job per shard: src/emoflow/media.


rule probe:
    input:
        sheet=f"{OUT}/shards/{{shard}}.parquet",
        media=shard_media,
        code=code("emoflow.media.probe"),
    output:
        table=f"{OUT}/probe/{{shard}}.parquet",
        skips=f"{OUT}/skips/probe/{{shard}}.parquet",
    log:
        f"{OUT}/logs/probe/{{shard}}.log",
    conda:
        env("base")
    threads: 1
    params:
        cfg=stage_slice(CFG, "probe"),
    shell:
        "python -m emoflow.media.probe {input.sheet:q} {output.table:q} {output.skips:q}"
        " --config {params.cfg:q} > {log:q} 2>&1"


rule frames:
    input:
        sheet=f"{OUT}/shards/{{shard}}.parquet",
        probe=f"{OUT}/probe/{{shard}}.parquet",
        code=code("emoflow.media.frames"),
    output:
        table=f"{OUT}/frames/{{shard}}.parquet",
        skips=f"{OUT}/skips/frames/{{shard}}.parquet",
    log:
        f"{OUT}/logs/frames/{{shard}}.log",
    conda:
        env("base")
    threads: 2
    params:
        cfg=stage_slice(CFG, "frames"),
    shell:
        "python -m emoflow.media.frames {input.sheet:q} {input.probe:q} {output.table:q} {output.skips:q}"
        " --config {params.cfg:q} --threads {threads} > {log:q} 2>&1"


rule audio:
    input:
        sheet=f"{OUT}/shards/{{shard}}.parquet",
        probe=f"{OUT}/probe/{{shard}}.parquet",
        code=code("emoflow.media.audio"),
    output:
        index=f"{OUT}/audio/{{shard}}.parquet",
        wavs=directory(f"{OUT}/audio/{{shard}}"),
        skips=f"{OUT}/skips/audio/{{shard}}.parquet",
    log:
        f"{OUT}/logs/audio/{{shard}}.log",
    conda:
        env("base")
    threads: 1
    params:
        cfg=stage_slice(CFG, "audio"),
    shell:
        "python -m emoflow.media.audio {input.sheet:q} {input.probe:q} {output.index:q} {output.wavs:q}"
        " {output.skips:q} --config {params.cfg:q} --threads {threads} > {log:q} 2>&1"


rule media_summary:
    input:
        probe=per_shard(f"{OUT}/probe/{{shard}}.parquet"),
        frames=per_shard(f"{OUT}/frames/{{shard}}.parquet"),
        audio=per_shard(f"{OUT}/audio/{{shard}}.parquet"),
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
