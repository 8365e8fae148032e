#!/usr/bin/env bash
# The demo: sets up and builds jslds, then runs a small campaign on the built-in "ring-theta"
# simulation (a seed-like hippocampal/entorhinal session: position on a ring, two spatial
# maps, 8 Hz theta; no files needed) with `mpirun -np 3` (one coordinator, two workers),
# and prints the best run and every run's results.
#
#   bash scripts/demo.sh                 # under 2 minutes on an idle 2-core machine once built,
#                                        # 5 to 11 on a busy one (sweeps/demo.toml)
#   JSLDS_DEMO_DIR=/scratch/demo bash scripts/demo.sh
#
# Everything goes to demo-output/ (or $JSLDS_DEMO_DIR): the experiment database
# jslds.sqlite and the run directories runs/demo-ring-theta/<run>/. Running the script again
# resumes the campaign (done runs are kept; an interrupted one continues from its checkpoint)
# and prints the tables again. Remove the directory to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Dependencies and the program (only the jslds target: tests and benchmarks are built by
#    scripts/test.sh and bench/run_all.sh).
JSLDS_BUILD_TARGETS=${JSLDS_BUILD_TARGETS:-jslds} bash scripts/setup.sh
JSLDS=$(pwd)/${JSLDS_BUILD_DIR:-build}/cli/jslds

OUT=${JSLDS_DEMO_DIR:-demo-output}
mkdir -p "$OUT"
DB=$OUT/jslds.sqlite
RUNS=$OUT/runs
SPEC=sweeps/demo.toml
CAMPAIGN=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$SPEC" | head -1)

# 2. The campaign. Open MPI refuses root without these two variables; 3 ranks on fewer
#    cores need oversubscription. The workers share the cores (1 training thread each).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
echo "demo: campaign $CAMPAIGN ($SPEC) with mpirun -np 3 into $OUT/" >&2
"$JSLDS" sweep "$SPEC" --dry-run --db "$DB" --artifacts "$RUNS"
start=$(date +%s)
mpirun -np 3 --bind-to none "$JSLDS" sweep "$SPEC" --db "$DB" --artifacts "$RUNS"
echo "demo: sweep finished in $(( $(date +%s) - start )) s" >&2

# 3. Results. A stopped campaign (Ctrl-C, a signal) has only some runs done: say how to go on.
done_runs=$("$JSLDS" query --db "$DB" --campaign "$CAMPAIGN" --where 'status = "done"' \
  --columns number --format csv | tail -n +2 | wc -l)
total_runs=$("$JSLDS" query --db "$DB" --campaign "$CAMPAIGN" --columns number --format csv | tail -n +2 | wc -l)
if [ "$done_runs" -lt "$total_runs" ]; then
  echo "demo: $done_runs of $total_runs runs done; run 'bash scripts/demo.sh' again to resume the rest" >&2
fi
if [ "$done_runs" -eq 0 ]; then
  "$JSLDS" status "$CAMPAIGN" --db "$DB"
  exit 0
fi
echo
echo "== best run (jslds best $CAMPAIGN --db $DB)"
"$JSLDS" best "$CAMPAIGN" --db "$DB"
echo
echo "== every run (jslds query --campaign $CAMPAIGN --sort summary.val_bps desc)"
BASIC=number,status,params.loss.w_approx,params.loss.w_fp,params.model.latent_dim,summary.val_bps,summary.val_bps_jslds,summary.rel_state_error
STRUCTURE=summary.n_fixed_points,summary.n_stable_clusters,summary.ring_score,summary.theta_mode,summary.dominant_freq_hz
# The structure summaries exist once a run has been analysed (analysis.enabled, the default).
"$JSLDS" query --db "$DB" --campaign "$CAMPAIGN" --sort summary.val_bps desc \
    --columns "$BASIC,$STRUCTURE,duration_s" 2>/dev/null \
  || "$JSLDS" query --db "$DB" --campaign "$CAMPAIGN" --sort summary.val_bps desc \
    --columns "$BASIC,duration_s"
BEST=$("$JSLDS" best "$CAMPAIGN" --db "$DB" --format csv 2>/dev/null | sed -n 2p | cut -d, -f1)
echo
cat <<EOF
database:        $(cd "$(dirname "$DB")" && pwd)/$(basename "$DB")
run directories: $(cd "$RUNS" && pwd)/$CAMPAIGN/<run number>/
                 (config.toml, checkpoint.pt, train_state.pt, checkpoint.json, metrics.jsonl, analysis.h5, log.txt, result.json)

next:
  $JSLDS show $CAMPAIGN/${BEST:-1} --db $DB     # the best run: config, curve, fixed points, modes
  $JSLDS query --db $DB --where 'summary.val_bps > 0.8'
  $JSLDS export $CAMPAIGN --db $DB --format csv --out demo.csv
  sqlite3 $DB 'SELECT * FROM run_overview'       # or pandas.read_sql(...)
EOF
