# emoflow env "base" (envs/base.yaml), cpu image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/base.cpu.Dockerfile -t emoflow-base:cpu .
FROM mambaorg/micromamba:2.8.1
# System packages no conda-forge package supplies (envs/README.md): the demo's speech.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
USER $MAMBA_USER
ENV PIP_NO_CACHE_DIR=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/base.yaml /tmp/env.yaml
RUN micromamba install --yes --name base --file /tmp/env.yaml \
    && micromamba clean --all --yes
