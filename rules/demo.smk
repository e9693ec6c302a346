# The embedded demo corpus (generated, never committed): src/emoflow/demo.

if DEMO:

    rule demo_data:
        input:
            code=code("emoflow.demo.generate"),
        output:
            manifest=f"{OUT}/demo/manifest.csv",
            clips=[os.path.relpath(p) for p in VIDEOS["path"]],
        log:
            f"{OUT}/logs/demo_data.log",
        conda:
            env("base")
        threads: 1
        params:
            outdir=lambda w, output: os.path.dirname(output.manifest),
            cfg=stage_slice(CFG, "demo"),
        shell:
            "python -m emoflow.demo.generate {params.outdir:q} --config {params.cfg:q} > {log:q} 2>&1"
