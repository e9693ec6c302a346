#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by scripts/slurm/start.sh: cancel the jobs
# still queued or running, then stop slurmd, slurmctld and munged by their PID files
# (SIGTERM, SIGKILL after 30 s). Idempotent: daemons that do not run are skipped.
# The configuration files start.sh wrote are removed (start.sh writes them again): with a
# slurm.conf naming a controller that no longer runs, every SLURM client call waits ~9 s for
# it, and Snakemake's SLURM executor plugin runs `scontrol show config` each time Snakemake
# starts, so every later snakemake command would stall (EMOFLOW_SLURM_KEEP_CONF=1 keeps them).
# State and the installed packages stay.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$HERE/stop.sh" "$@"; fi
# shellcheck source=lib.sh
. "$HERE/lib.sh"

if pid_alive slurmctld "$SLURMCTLD_PID"; then
  if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    echo "slurm stop: cancelling jobs: $(squeue -h -o %i | tr '\n' ' ')"
    squeue -h -o %i | xargs -r scancel || true
    wait_for "the jobs to end" 30 no_jobs || true
  fi
fi
stop_daemon slurmd "$SLURMD_PID"
stop_daemon slurmctld "$SLURMCTLD_PID"
stop_daemon munged "$MUNGED_PID"
if [ "${EMOFLOW_SLURM_KEEP_CONF:-0}" != 1 ]; then
  for f in "$SLURM_CONF_DIR/slurm.conf" "$SLURM_CONF_DIR/gres.conf"; do
    if [ -f "$f" ] && grep -q "$MARKER" "$f"; then rm -f "$f" && echo "slurm stop: removed $f"; fi
  done
fi
echo "slurm stop: done"
