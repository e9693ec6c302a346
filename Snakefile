# emoflow: labelled videos -> multimodal emotion predictions.
# Wiring only: the config is validated and the DAG's inputs are planned in
# rules/common.smk; each stage lives in one rules/*.smk file and calls src/emoflow.


configfile: f"{workflow.basedir}/config.yaml"


# Every envs/*.yaml pre-built in one image (containers/containerize.Dockerfile, as
# `snakemake --containerize` prints it; build: containers/README.md):
# `--sdm conda apptainer` runs each rule's env inside it, nothing is solved at run time.
containerized: f"{workflow.basedir}/containers/emoflow-envs.sif"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/dataset.smk"
include: "rules/media.smk"
include: "rules/faces.smk"
include: "rules/asr.smk"
include: "rules/features.smk"
include: "rules/similarity.smk"
include: "rules/encode.smk"
include: "rules/classify.smk"
include: "rules/e2e.smk"
include: "rules/fusion.smk"
include: "rules/report.smk"
include: "rules/bundle.smk"
include: "rules/robustness.smk"


rule all:
    default_target: True
    input:
        targets(),
        bundle_targets(),
        deployment_targets(),
        robustness_targets(),
