# emoflow env "face" (envs/face.yaml), cpu image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/face.cpu.Dockerfile -t emoflow-face:cpu .
FROM mambaorg/micromamba:2.8.1
ENV PIP_NO_CACHE_DIR=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/face.yaml /tmp/env.yaml
RUN micromamba install --yes --name base --file /tmp/env.yaml \
    && micromamba clean --all --yes
# What Snakemake runs after creating the env: packages installed without their dependencies.
ARG MAMBA_DOCKERFILE_ACTIVATE=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/face.post-deploy.sh /tmp/post-deploy.sh
RUN bash /tmp/post-deploy.sh
