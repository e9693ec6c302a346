# emoflow env "visual-torch" (envs/visual-torch.yaml), cpu image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/visual-torch.cpu.Dockerfile -t emoflow-visual-torch:cpu .
FROM mambaorg/micromamba:2.8.1
ENV PIP_NO_CACHE_DIR=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/visual-torch.yaml /tmp/env.yaml
RUN micromamba install --yes --name base --file /tmp/env.yaml \
    && micromamba clean --all --yes
