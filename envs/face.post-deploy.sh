#!/usr/bin/env bash
# Snakemake runs this once after creating the env (--use-conda): packages whose declared
# dependencies are outdated pins that emoflow does not need.
set -euo pipefail
python -m pip install --no-deps facenet-pytorch==2.6.0
