#!/usr/bin/env bash
# The test command (the README's second set-up command runs it; .ci/run too):
#   1. the demo workflow end to end (one run, reused by the tests that need one)
#   2. pytest
#   3. ruff check + ruff format --check (Python), snakemake --lint, snakefmt --check, dry runs
#      of the default config and presets
#   4. the demo again through real SLURM (a single-node cluster on localhost,
#      scripts/ci_slurm.sh), its outputs compared with the local run's (floats within 1e-6)
#   5. the conda envs as far as no conda allows (tools/check_envs.py): each env's pip layer
#      in a clean venv, its rules' imports and one real job on the demo run's data
# Run after scripts/setup.sh. Environment: EMOFLOW_VENV (default .venv), EMOFLOW_TEST_WORKERS
# (pytest workers, default 2; 0 = none), EMOFLOW_CI_SLURM=0
# skips step 4 (it needs root or sudo to start the SLURM daemons).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${EMOFLOW_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
SMK=(python -m snakemake)
step() { printf '\n== %s ==\n' "$*"; }

step "static checks: ruff check, ruff format --check, snakefmt --check, snakemake --lint"
ruff check .
ruff format --check .
snakefmt --check .
"${SMK[@]}" --lint

step "dry runs: default config and presets"
"${SMK[@]}" -n --quiet rules
for preset in configs/*.yaml; do
  if "${SMK[@]}" -n --quiet rules --configfile "$preset" >/tmp/emoflow-dry.log 2>&1; then
    echo "dry run OK: $preset"
  elif grep -qE "data root .* does not exist|corpus root .* holds no .* files to use" /tmp/emoflow-dry.log; then
    echo "dry run skipped (shared data or corpus absent; tests/test_corpora.py dry-runs it): $preset"
  else
    cat /tmp/emoflow-dry.log; exit 1
  fi
done

step "end-to-end demo run (fresh)"
DEMO_WORK=${EMOFLOW_CI_WORK:-$PWD/.ci-work}
rm -rf "$DEMO_WORK"; mkdir -p "$DEMO_WORK"
start=$(date +%s)
"${SMK[@]}" -s "$PWD/Snakefile" --directory "$DEMO_WORK" --cores 2 --quiet rules
demo_s=$(( $(date +%s) - start ))
echo "demo run: $demo_s s"
export EMOFLOW_DEMO_RESULTS="$DEMO_WORK/results/demo"

slurm_rc=0
if [ "${EMOFLOW_CI_SLURM:-1}" != 0 ]; then
  step "the demo through real SLURM (profiles/slurm), compared with the local run"
  set +e
  EMOFLOW_LOCAL_DEMO_SECONDS=$demo_s bash scripts/ci_slurm.sh "$EMOFLOW_DEMO_RESULTS" "$DEMO_WORK-slurm"
  slurm_rc=$?
  set -e
  [ "$slurm_rc" -eq 0 ] || echo "SLURM step FAILED (exit $slurm_rc)"
fi

step "conda envs: each env's pip layer in a clean venv, its rules' imports, one real job"
set +e
python tools/check_envs.py --demo "$DEMO_WORK"
envs_rc=$?
set -e

step "pytest"
# two workers, each test file on one of them (module fixtures run once): the one extra demo
# run of tests/test_interrupt.py overlaps the other files instead of following them
set +e
python -m pytest -q -n "${EMOFLOW_TEST_WORKERS:-2}" --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi
[ "$envs_rc" -eq 0 ] || { echo "conda env check failed (exit $envs_rc)"; [ "$rc" -ne 0 ] || rc=$envs_rc; }
[ "$slurm_rc" -eq 0 ] || { echo "SLURM step failed (exit $slurm_rc)"; [ "$rc" -ne 0 ] || rc=$slurm_rc; }
exit "$rc"
