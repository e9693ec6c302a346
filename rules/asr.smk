# Offline speech recognition, one job per shard: src/emoflow/asr.


rule asr:
    input:
        index=L.audio_index(),
        wavs=L.audio_wavs(),
        code=code(STAGES["asr"].module),
    output:
        table=L.text(),
        skips=L.skips("asr"),
    log:
        L.log("asr"),
    conda:
        env("text")
    threads: 1
    params:
        cfg=stage_slice(CFG, "asr", "feature_inputs"),
    shell:
        STAGES["asr"].shell()
