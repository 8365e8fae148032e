#!/usr/bin/env bash
# Science acceptance of the analysis (issue 5, with issue 4's science section; MODEL.md §8).
# Not a test: it trains three models with `jslds train` (minutes each on one core) and prints
# one JSON object with the figures and the pass/fail of every criterion.
#
#   bash bench/science.sh [BUILD_DIR] [OUT_DIR] [NAME…]
#
#   BUILD_DIR  holds cli/jslds (default: build/ beside bench/)
#   OUT_DIR    run directories and logs (default: a new temporary directory)
#   NAME…      any of flipflop oscillator ring_theta (default: all three), or ring_theta_4s
# Environment: SCIENCE_REUSE=1 keeps a run whose result.json already exists in OUT_DIR (only
# the evaluation is redone).
#
# The configurations are bench/science/science_NAME.toml; each documents its targets.
# Criteria (MODEL §8 and issue 5), with the summaries exactly as docs/analysis.md defines them:
#   flipflop    rel_state_error <= 0.05 and, in MODEL §8's words, "8 stable fixed points (or 8
#               marginal clusters)": n_stable == 8 or n_stable_clusters == 8 (clusters of
#               stable or marginal fixed points at the default cluster_tol); the figures also
#               give n_stable_clusters at other cluster_tol values (`jslds analyze --set`)
#   oscillator  val_bps > 0, |val_bps_jslds - val_bps| <= 0.1 |val_bps|, |dominant_freq_hz - 8| <= 0.5
#   ring_theta  ring_score >= 0.6, n_stable_clusters >= 2, theta_mode == 1
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
out="${2:-$(mktemp -d)}"
shift $(( $# < 2 ? $# : 2 ))
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(flipflop oscillator ring_theta)
jslds="$build/cli/jslds"
[ -x "$jslds" ] || { echo "error: $jslds not found (build it: ninja -C $build jslds)" >&2; exit 2; }
mkdir -p "$out"

for name in "${names[@]}"; do
  config="$here/science/science_$name.toml"
  [ -f "$config" ] || { echo "error: no configuration $config" >&2; exit 2; }
  if [ "${SCIENCE_REUSE:-0}" = 1 ] && [ -f "$out/$name/result.json" ]; then
    echo "science: $name: reusing $out/$name" >&2
    continue
  fi
  rm -rf "${out:?}/$name"
  echo "science: training $name ($config), log $out/$name.log" >&2
  start=$(date +%s)
  "$jslds" train "$config" --run-dir "$out/$name" 2> "$out/$name.log" || {
    echo "error: jslds train $name failed; see $out/$name.log" >&2; exit 1; }
  echo "science: $name done in $(( $(date +%s) - start )) s" >&2
done

# n_stable_clusters depends on analysis.cluster_tol (default 0 = unique_tol, at which merged
# fixed points are never linked): re-analyse the flip-flop checkpoint over a range of linkage
# distances so the report shows how the count depends on it.
cluster_tols=(0.1 0.2 0.3 0.5 0.75 1.0 1.5)
for name in "${names[@]}"; do
  [ "$name" = flipflop ] || continue
  for tol in "${cluster_tols[@]}"; do
    "$jslds" analyze "$out/flipflop" --json --set "analysis.cluster_tol=$tol" \
      --output "$out/flipflop_cluster_tol.h5" > "$out/flipflop_cluster_tol_$tol.json" 2>> "$out/flipflop_cluster_tol.log"
  done
  rm -f "$out/flipflop_cluster_tol.h5"
done

python3 - "$out" "${names[@]}" <<'PY'
import glob, json, math, sys

out, names = sys.argv[1], sys.argv[2:]


def num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def le(a, b):
    return a is not None and a <= b


report = {"bench": "science", "out_dir": out}
for name in names:
    r = json.load(open(f"{out}/{name}/result.json"))
    s = r["summary"]
    fps = [p for p in r["fixed_points"] if p["source"] == "numerical"]
    figures = {"status": r["status"], "steps": s.get("steps_done"), "train_seconds": s.get("train_seconds")}
    for key in ("val_bps", "val_bps_jslds", "val_mse", "val_mse_jslds", "rel_state_error", "fp_residual",
                "n_fixed_points", "n_stable", "n_marginal", "n_saddle", "n_stable_clusters", "spectral_radius",
                "n_slow_modes", "dominant_freq_hz", "theta_mode", "ring_score"):
        if key in s:
            figures[key] = num(s[key])
    figures["q_max"] = max((p["q"] for p in fps), default=None)
    checks = {}
    if name == "flipflop":
        checks["rel_state_error_le_0.05"] = le(s.get("rel_state_error"), 0.05)
        # MODEL §8: "8 stable fixed points (or 8 marginal clusters)": either reading passes;
        # both figures are reported.
        figures["n_stable_eq_8"] = s.get("n_stable") == 8
        figures["n_stable_clusters_eq_8"] = s.get("n_stable_clusters") == 8
        checks["8_stable_fixed_points_or_8_clusters"] = s.get("n_stable") == 8 or s.get("n_stable_clusters") == 8
        by_tol = {}
        for path in sorted(glob.glob(f"{out}/flipflop_cluster_tol_*.json")):
            tol = path.rsplit("_", 1)[1][:-len(".json")]
            by_tol[tol] = json.load(open(path))["summary"]["n_stable_clusters"]
        figures["n_stable_clusters_by_cluster_tol"] = by_tol
    elif name == "oscillator":
        bps, bpsj, f = s.get("val_bps"), s.get("val_bps_jslds"), num(s.get("dominant_freq_hz"))
        checks["val_bps_gt_0"] = bps is not None and bps > 0
        checks["val_bps_jslds_within_10pct"] = bps is not None and bpsj is not None and abs(bpsj - bps) <= 0.1 * abs(bps)
        checks["dominant_freq_within_0.5_of_8"] = f is not None and abs(f - 8.0) <= 0.5
    elif name.startswith("ring_theta"):
        checks["ring_score_ge_0.6"] = (s.get("ring_score") or 0) >= 0.6
        checks["n_stable_clusters_ge_2"] = (s.get("n_stable_clusters") or 0) >= 2
        checks["theta_mode_eq_1"] = s.get("theta_mode") == 1
    figures["checks"] = checks
    figures["pass"] = all(checks.values())
    report[name] = figures
report["pass"] = all(report[n]["pass"] for n in names)
print(json.dumps(report))
PY
