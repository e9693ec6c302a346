#!/usr/bin/env bash
# CI step: run the demo workflow through real SLURM and check it matches a local run.
#   bash scripts/ci_slurm.sh LOCAL_RESULTS [WORK_DIR]
#     LOCAL_RESULTS  results/demo of a finished local demo run (scripts/test.sh: $DEMO_WORK/results/demo)
#     WORK_DIR       where the SLURM run works (default .ci-work/slurm, git-ignored; emptied first)
# 1. starts a single-node SLURM cluster on localhost (scripts/slurm/start.sh; installs
#    slurm-wlm and munge when missing; needs root or sudo),
# 2. GPU-request check: a two-rule Snakefile asks for gpu=1 (-> sbatch --gpus=1) and
#    gres="gpu:fakegpu:2" (-> --gres) through the same profile; both jobs must run under
#    SLURM with CUDA_VISIBLE_DEVICES naming 1 and 2 of the node's fake GPUs,
# 3. runs the demo with --profile profiles/slurm into WORK_DIR,
# 4. compares WORK_DIR/results/demo with LOCAL_RESULTS (python "$REPO/tools/compare.py", floats
#    within 1e-6: every Parquet/CSV/JSON/NPZ table; see tools/compare.py),
# 5. stops the cluster (also on failure), prints the wall times.
# Environment: EMOFLOW_VENV (default .venv), EMOFLOW_SLURM_KEEP=1 leaves the cluster running,
# EMOFLOW_LOCAL_DEMO_SECONDS (the local run's wall time, printed beside the SLURM one),
# EMOFLOW_COMPARE_ATOL (default 1e-6).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,5p' "$0" >&2; exit 2; }
LOCAL=$(realpath "$1")
WORK=$(realpath -m "${2:-$REPO/.ci-work/slurm}")
[ -f "$LOCAL/report/summary.csv" ] || { echo "ci_slurm: $LOCAL is not the results directory of a finished demo run (no report/summary.csv)" >&2; exit 2; }
case "$WORK/" in "$LOCAL/"* | "$REPO/results/"* | "$REPO/") echo "ci_slurm: refusing WORK_DIR $WORK (inside the local results or the repo's results/)" >&2; exit 2 ;; esac
case "$LOCAL/" in "$WORK/"*) echo "ci_slurm: refusing WORK_DIR $WORK: it contains $LOCAL and is emptied first" >&2; exit 2 ;; esac
VENV=${EMOFLOW_VENV:-.venv}
export PATH="$(realpath "$VENV")/bin:$PATH"
ATOL=${EMOFLOW_COMPARE_ATOL:-1e-6}
step() { printf '\n== %s ==\n' "$*"; }
now() { date +%s.%N; }
secs() { python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$1" "$2"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Options every SLURM run here needs on top of the profile: the CI cluster has no accounting
# database, so job states come from squeue (MinJobAge=300 s in scripts/slurm/slurm.conf.in >=
# 3 x 5 s; the default sacct would never see the jobs and snakemake would wait forever), and
# the first status check comes 5 s after a submission instead of 40 s. There are no accounts:
# the plugin (2.8.0) warns "No SLURM account given, trying to guess", fails to guess and
# submits without one, which is right here. The local profile must not override the SLURM one.
SMK=(python -m snakemake --profile "$REPO/profiles/slurm" --workflow-profile none
  --slurm-status-command squeue --slurm-init-seconds-before-status-checks 5)

on_exit() {
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "ci_slurm: FAILED (exit $rc); controller log tail:" >&2
    $SUDO tail -n 20 /var/log/slurm/slurmctld.log >&2 || true
    find "$WORK" -path '*logs/slurm*' -name '*.log' -exec tail -n 20 {} + >&2 2>/dev/null || true
  fi
  if [ "${EMOFLOW_SLURM_KEEP:-0}" != 1 ]; then
    bash "$REPO/scripts/slurm/stop.sh" || true
  fi
  exit "$rc"
}
trap on_exit EXIT

step "SLURM: start a single-node cluster"
t0=$(now)
bash "$REPO/scripts/slurm/start.sh"
t_start=$(secs "$t0" "$(now)")

step "SLURM: GPU requests reach the scheduler"
rm -rf "$WORK"; mkdir -p "$WORK/gpu-check"
cat >"$WORK/gpu-check/Snakefile" <<'EOF'
# GPU requests through profiles/slurm: gpu=1 -> sbatch --gpus=1; gres -> sbatch --gres.
ENV = "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES-}} SLURM_JOB_ID=${{SLURM_JOB_ID-}}"


rule all:
    input:
        "gpus.txt",
        "gres.txt",


rule gpus:
    output:
        "gpus.txt",
    resources:
        gpu=1,
    shell:
        f'echo "{ENV}" > {{output}}'


rule gres:
    output:
        "gres.txt",
    resources:
        gres="gpu:fakegpu:2",
        cpus_per_gpu=1,
    shell:
        f'echo "{ENV}" > {{output}}'
EOF
t0=$(now)
(cd "$WORK/gpu-check" && "${SMK[@]}" -s Snakefile --quiet rules)
t_gpu=$(secs "$t0" "$(now)")
check_gpus() {  # FILE N: the job ran under SLURM and saw N devices
  local line; line=$(cat "$WORK/gpu-check/$1")
  echo "$1: $line"
  [[ "$line" =~ SLURM_JOB_ID=[0-9]+ ]] || { echo "ci_slurm: $1: the job did not run under SLURM" >&2; return 1; }
  local devs; devs=$(sed -n 's/^CUDA_VISIBLE_DEVICES=\([^ ]*\).*/\1/p' <<<"$line")
  [ -n "$devs" ] && [ "$(tr ',' '\n' <<<"$devs" | wc -l)" -eq "$2" ] ||
    { echo "ci_slurm: $1: expected CUDA_VISIBLE_DEVICES with $2 GPU(s), got '$devs'" >&2; return 1; }
}
check_gpus gpus.txt 1
check_gpus gres.txt 2

step "SLURM: demo workflow through --profile profiles/slurm"
t0=$(now)
(cd "$WORK" && "${SMK[@]}" -s "$REPO/Snakefile" --directory "$WORK" --quiet rules)
t_demo=$(secs "$t0" "$(now)")

step "compare with the local run ($LOCAL)"
t0=$(now)
python "$REPO/tools/compare.py" "$LOCAL" "$WORK/results/demo" --atol "$ATOL"
t_cmp=$(secs "$t0" "$(now)")

step "wall times"
echo "cluster start: ${t_start} s; GPU-request check: ${t_gpu} s; demo via SLURM: ${t_demo} s; compare: ${t_cmp} s"
[ -z "${EMOFLOW_LOCAL_DEMO_SECONDS:-}" ] || echo "demo locally (--cores 2): ${EMOFLOW_LOCAL_DEMO_SECONDS} s"
