# Shared by scripts/slurm/start.sh and stop.sh (sourced, not run).
SLURM_CONF_DIR=/etc/slurm
# a line with this word marks the configuration files start.sh writes (stop.sh removes them)
MARKER="emoflow-ci-slurm"
MUNGED_PID=/run/munge/munged.pid
SLURMCTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

die() {
  echo "slurm: error: $*" >&2
  exit 1
}

# pid_alive NAME PIDFILE: the PID file names a live (not zombie) process called NAME.
# Exited daemons can linger as zombies (e.g. under gVisor), so `kill -0` is not enough.
pid_alive() {
  local name=$1 file=$2 pid state
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "slurm: timed out after ${secs} s waiting for $what" >&2
  return 1
}

# stop_daemon NAME PIDFILE: SIGTERM the daemon of PIDFILE, SIGKILL after 30 s; removes the file.
stop_daemon() {
  local name=$1 file=$2 pid
  if pid_alive "$name" "$file"; then
    pid=$(tr -dc '0-9' <"$file")
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$name (pid $pid) to exit" 30 not pid_alive "$name" "$file"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_for "$name (pid $pid) to die" 5 not pid_alive "$name" "$file" || true
    fi
    echo "slurm stop: stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

not() { ! "$@"; }
munge_ok() { munge -n | unmunge; }
ctld_ok() { scontrol ping | grep -q "is UP"; }
no_jobs() { [ -z "$(squeue -h -o %i)" ]; }
node_ready() { sinfo -h -N -n localhost -o %T | grep -Eq '^(idle|mixed|allocated)'; }
