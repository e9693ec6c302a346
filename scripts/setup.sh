#!/usr/bin/env bash
# Set up emoflow on a Debian/Ubuntu machine: system packages (apt) and a venv in .venv
# with every stage's Python packages. Idempotent: a second run only checks.
#   bash scripts/setup.sh            # then: .venv/bin/snakemake --cores 2
# Environment: EMOFLOW_VENV (default .venv), EMOFLOW_SKIP_APT=1 to skip apt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${EMOFLOW_VENV:-.venv}
PYTHON=${PYTHON:-python3}

# ffmpeg: probe/frames/audio; libvlfeat-dev: cyvlfeat (dense SIFT, GMM, Fisher vectors);
# espeak-ng: the demo's speech; build tools for the packages that compile; slurm-wlm and
# munge: the CI's single-node SLURM cluster (scripts/ci_slurm.sh; daemons are not started here).
APT_PACKAGES=(ffmpeg libvlfeat-dev espeak-ng build-essential python3-dev python3-venv pkg-config slurm-wlm munge)

if [ "${EMOFLOW_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

stamp="$VENV/.emoflow-setup"
want=$(cat requirements.txt constraints.txt requirements-nodeps.txt pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import emoflow" 2>/dev/null; then
  echo "setup: $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "setup: installing Python packages into $VENV (first time: a few minutes)"
"${PIP[@]}" install -q -c constraints.txt -r requirements.txt
"${PIP[@]}" install -q --no-deps -r requirements-nodeps.txt
# cyvlfeat compiles against the system libvlfeat and the venv's numpy + Cython.
"${PIP[@]}" install -q -c constraints.txt --no-build-isolation cyvlfeat==0.7.1
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -W ignore -c "import emoflow, snakemake, cyvlfeat, ffmpeg, face_recognition_models" >/dev/null
echo "$want" > "$stamp"
echo "setup: done ($VENV)"
