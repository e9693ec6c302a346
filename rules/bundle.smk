# The model bundle `emoflow predict` loads: src/emoflow/predict/bundle.py. One fusion
# group (config bundle.group) of one partition (bundle.part): its fusion choice, the
# experiments it uses with their fitted encoders and extractors, and the config slices the
# per-video rules ran with.


rule bundle:
    input:
        fusion=f"{OUT}/fusion/{BUNDLE_PART}/{BUNDLE_GROUP}.json",
        files=lambda w: PLAN.bundle_inputs(),
        code=code("emoflow.predict.bundle"),
    output:
        directory(f"{OUT}/bundle"),
    log:
        f"{OUT}/logs/bundle.log",
    conda:
        env("predict")
    threads: 1
    params:
        spec=bundle_spec,
    shell:
        "python -m emoflow.predict.bundle {params.spec:q} {output:q} > {log:q} 2>&1"
