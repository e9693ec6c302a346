#!/usr/bin/env bash
# Install Debian's SLURM (slurm-wlm: slurmctld, slurmd, client commands) and MUNGE.
# Idempotent: installs only what is missing. Needs root (or sudo) and apt.
# The packages' daemons are NOT started here (Debian's policy-rc.d usually forbids it in
# containers anyway): scripts/slurm/start.sh configures and starts them by hand.
set -euo pipefail
PACKAGES=(slurm-wlm munge)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "slurm setup: slurm-wlm and munge already installed ($(dpkg-query -W -f='${Version}' slurm-wlm))"
  exit 0
fi
echo "slurm setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "slurm setup: installed slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm)"
