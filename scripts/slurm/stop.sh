#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by scripts/slurm/start.sh: cancel the jobs
# still queued or running, then stop slurmd, slurmctld and munged by their PID files
# (SIGTERM, SIGKILL after 30 s). Idempotent: daemons that do not run are skipped.
# Configuration (/etc/slurm), state and the installed packages stay; start.sh reuses them.
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
echo "slurm stop: done"
