# emoflow env "classify" (envs/classify.yaml), cpu image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/classify.cpu.Dockerfile -t emoflow-classify:cpu .
FROM mambaorg/micromamba:2.8.1
ENV PIP_NO_CACHE_DIR=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/classify.yaml /tmp/env.yaml
RUN micromamba install --yes --name base --file /tmp/env.yaml \
    && micromamba clean --all --yes
