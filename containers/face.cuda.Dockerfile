# emoflow env "face" (envs/face.yaml), cuda image. Written by tools/containers.py
# from the env file: do not edit, rerun it. Build from the repository root:
#   docker build -f containers/face.cuda.Dockerfile -t emoflow-face:cuda .
FROM mambaorg/micromamba:2.8.1 AS micromamba
FROM nvidia/cuda:13.0.0-base-ubuntu22.04
# micromamba added to the CUDA image as micromamba-docker documents it (same user, same
# activation scripts as the CPU image).
USER root
ARG MAMBA_USER=mambauser
ARG MAMBA_USER_ID=57439
ARG MAMBA_USER_GID=57439
ENV MAMBA_USER=$MAMBA_USER MAMBA_ROOT_PREFIX="/opt/conda" MAMBA_EXE="/bin/micromamba"
COPY --from=micromamba "$MAMBA_EXE" "$MAMBA_EXE"
COPY --from=micromamba /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=micromamba /usr/local/bin/_activate_current_env.sh /usr/local/bin/_activate_current_env.sh
COPY --from=micromamba /usr/local/bin/_dockerfile_shell.sh /usr/local/bin/_dockerfile_shell.sh
COPY --from=micromamba /usr/local/bin/_entrypoint.sh /usr/local/bin/_entrypoint.sh
COPY --from=micromamba /usr/local/bin/_dockerfile_initialize_user_accounts.sh /usr/local/bin/_dockerfile_initialize_user_accounts.sh
COPY --from=micromamba /usr/local/bin/_dockerfile_setup_root_prefix.sh /usr/local/bin/_dockerfile_setup_root_prefix.sh
RUN /usr/local/bin/_dockerfile_initialize_user_accounts.sh \
    && /usr/local/bin/_dockerfile_setup_root_prefix.sh
USER $MAMBA_USER
SHELL ["/usr/local/bin/_dockerfile_shell.sh"]
ENTRYPOINT ["/usr/local/bin/_entrypoint.sh"]
CMD ["/bin/bash"]
ENV PIP_NO_CACHE_DIR=1
# The same pins with the GPU builds swapped in (the build fails if a swap finds nothing):
#   download.pytorch.org/whl/cpu  ->  download.pytorch.org/whl/cu130
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/face.yaml /tmp/env.cpu.yaml
RUN sed -e 's#download.pytorch.org/whl/cpu#download.pytorch.org/whl/cu130#' /tmp/env.cpu.yaml > /tmp/env.yaml \
    && grep -qF 'download.pytorch.org/whl/cu130' /tmp/env.yaml \
    && micromamba install --yes --name base --file /tmp/env.yaml \
    && micromamba clean --all --yes
# What Snakemake runs after creating the env: packages installed without their dependencies.
ARG MAMBA_DOCKERFILE_ACTIVATE=1
COPY --chown=$MAMBA_USER:$MAMBA_USER envs/face.post-deploy.sh /tmp/post-deploy.sh
RUN bash /tmp/post-deploy.sh
