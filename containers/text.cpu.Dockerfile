# emoflow env "text" (envs/text.yaml), cpu image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/text.cpu.Dockerfile -t emoflow-text:cpu .
FROM mambaorg/micromamba:2.8.1
ENV PIP_NO_CACHE_DIR=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/text.yaml /tmp/env.yaml
RUN micromamba install --yes --name base --file /tmp/env.yaml \
    && micromamba clean --all --yes
