#!/usr/bin/env bash
# Science acceptance of issue 4 (not CI; minutes of CPU): trains the flip-flop and the
# oscillator configurations in bench/science/ and prints one JSON object with their final
# summaries and the pass/fail of each criterion.
#   bash bench/science_acceptance.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
jslds="$build/cli/jslds"
for name in flipflop_gru64 oscillator_8hz; do
  rm -rf "$out/$name"
  "$jslds" train "$here/science/$name.toml" --run-dir "$out/$name" 2> "$out/$name.log"
done
/usr/bin/env python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
ff = json.load(open(f"{out}/flipflop_gru64/result.json"))["summary"]
osc = json.load(open(f"{out}/oscillator_8hz/result.json"))["summary"]
bps, bpsj = osc.get("val_bps"), osc.get("val_bps_jslds")
print(json.dumps({
    "bench": "science_acceptance",
    "flipflop": {"rel_state_error": ff.get("rel_state_error"), "val_mse": ff.get("val_mse"),
                 "val_mse_jslds": ff.get("val_mse_jslds"), "steps": ff.get("steps_done"),
                 "pass_rel_state_error_le_0.05": ff.get("rel_state_error", 1) <= 0.05},
    "oscillator": {"val_bps": bps, "val_bps_jslds": bpsj, "rel_state_error": osc.get("rel_state_error"),
                   "steps": osc.get("steps_done"),
                   "pass_val_bps_gt_0": bps is not None and bps > 0,
                   "pass_jslds_within_10pct": bps is not None and bpsj is not None and abs(bpsj - bps) <= 0.1 * abs(bps)},
}))
PY
