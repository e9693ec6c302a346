#!/usr/bin/env bash
# Start a single-node SLURM cluster on localhost: munged, slurmctld, slurmd (node
# "localhost" with this machine's CPUs and memory and EMOFLOW_SLURM_GPUS fake GPUs, partition "ci").
#   bash scripts/slurm/start.sh        # then: sinfo, sbatch, snakemake --profile profiles/slurm
#   bash scripts/slurm/stop.sh         # stops the daemons again
# Idempotent: installs the packages when missing (scripts/slurm/setup.sh), leaves daemons
# that already run with the same configuration alone, restarts them when the rendered
# configuration changed. Needs root (re-runs itself with sudo otherwise).
# Writes /etc/slurm/{slurm,gres}.conf; refuses to overwrite a slurm.conf it did not write
# (a real cluster's) unless EMOFLOW_SLURM_FORCE=1.
# Environment: EMOFLOW_SLURM_GPUS (fake GPUs, default 2), EMOFLOW_SLURM_TIMEOUT (seconds to
# wait for the node, default 60).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$HERE/start.sh" "$@"; fi
# shellcheck source=lib.sh
. "$HERE/lib.sh"

N_GPUS=${EMOFLOW_SLURM_GPUS:-2}
TIMEOUT=${EMOFLOW_SLURM_TIMEOUT:-60}
[[ "$N_GPUS" =~ ^[1-9][0-9]*$ ]] || die "EMOFLOW_SLURM_GPUS must be a positive integer, got '$N_GPUS'"

command -v slurmctld >/dev/null && command -v munged >/dev/null || bash "$HERE/setup.sh"

# --- configuration ----------------------------------------------------------------------
for f in "$SLURM_CONF_DIR/slurm.conf" "$SLURM_CONF_DIR/gres.conf"; do
  if [ -s "$f" ] && ! grep -q "$MARKER" "$f" && [ "${EMOFLOW_SLURM_FORCE:-0}" != 1 ]; then
    die "$f exists and was not written by this script (no '$MARKER' line): not overwriting it. Set EMOFLOW_SLURM_FORCE=1 to replace it."
  fi
done
# This machine's hardware as slurmd sees it, under the node name "localhost".
hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]*//')
[[ "$hw" == *CPUs=* ]] || die "slurmd -C printed no hardware line: $(slurmd -C 2>&1 | head -3)"
node="NodeName=localhost NodeAddr=127.0.0.1${hw} Gres=gpu:fakegpu:${N_GPUS} State=UNKNOWN"
gpu_files="/dev/fakegpu[0-$((N_GPUS - 1))]"
[ "$N_GPUS" -gt 1 ] || gpu_files=/dev/fakegpu0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|@NODE@|$node|" "$HERE/slurm.conf.in" >"$tmp/slurm.conf"
sed -e "s|@GPU_FILES@|$gpu_files|" "$HERE/gres.conf.in" >"$tmp/gres.conf"
changed=0
for f in slurm.conf gres.conf; do
  cmp -s "$tmp/$f" "$SLURM_CONF_DIR/$f" || changed=1
done
if [ "$changed" = 1 ]; then
  if pid_alive slurmctld "$SLURMCTLD_PID" || pid_alive slurmd "$SLURMD_PID"; then
    echo "slurm start: configuration changed; restarting the SLURM daemons"
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$SLURMCTLD_PID"
  fi
  mkdir -p "$SLURM_CONF_DIR"
  install -m 0644 "$tmp/slurm.conf" "$SLURM_CONF_DIR/slurm.conf"
  install -m 0644 "$tmp/gres.conf" "$SLURM_CONF_DIR/gres.conf"
  echo "slurm start: wrote $SLURM_CONF_DIR/slurm.conf and gres.conf ($(echo "$hw" | grep -o 'CPUs=[0-9]*'), $N_GPUS fake GPUs)"
fi

# --- fake GPU devices (aliases of /dev/null) ----------------------------------------------
for ((i = 0; i < N_GPUS; i++)); do
  [ -c "/dev/fakegpu$i" ] || mknod -m 0666 "/dev/fakegpu$i" c 1 3 || die "cannot create /dev/fakegpu$i (mknod)"
done

# --- directories ----------------------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
install -d -m 0755 /var/spool/slurmd

# --- munge -----------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  echo "slurm start: creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if pid_alive munged "$MUNGED_PID"; then
  echo "slurm start: munged already running (pid $(cat "$MUNGED_PID"))"
else
  rm -f "$MUNGED_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- munged --pid-file="$MUNGED_PID" || die "munged did not start (see /var/log/munge/munged.log)"
  wait_for "munged" 10 munge_ok
  echo "slurm start: munged started (pid $(cat "$MUNGED_PID"))"
fi

# --- slurmctld, slurmd ------------------------------------------------------------------------
if pid_alive slurmctld "$SLURMCTLD_PID"; then
  echo "slurm start: slurmctld already running (pid $(cat "$SLURMCTLD_PID"))"
else
  rm -f "$SLURMCTLD_PID"
  # -c: start with an empty queue. A CI cluster has no jobs worth keeping, and a session
  # killed without stop.sh would otherwise bring back its queued and "running" jobs from
  # StateSaveLocation, where they hold the node for hours.
  slurmctld -c || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
  wait_for "slurmctld" "$TIMEOUT" ctld_ok
  echo "slurm start: slurmctld started (pid $(cat "$SLURMCTLD_PID"))"
fi
if pid_alive slurmd "$SLURMD_PID"; then
  echo "slurm start: slurmd already running (pid $(cat "$SLURMD_PID"))"
else
  rm -f "$SLURMD_PID"
  slurmd -N localhost || die "slurmd did not start (see /var/log/slurm/slurmd.log)"
  wait_for "slurmd pid file" 10 test -s "$SLURMD_PID"
  echo "slurm start: slurmd started (pid $(cat "$SLURMD_PID"))"
fi

# --- node ready ----------------------------------------------------------------------------
node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null | head -1; }
state=$(node_state)
if [[ "$state" == down* || "$state" == drain* ]]; then
  scontrol update NodeName=localhost State=RESUME || true
fi
wait_for "node localhost to be idle or in use" "$TIMEOUT" node_ready ||
  die "node state '$(node_state)'; reason: $(sinfo -h -R -n localhost 2>/dev/null); see /var/log/slurm/slurmd.log"
echo "slurm start: cluster ready"
sinfo -N -o "%N %P %T %c %m %G"
