#!/usr/bin/env bash
# Builds and runs every benchmark program in bench/, writes one JSON file with all figures and
# a description of the machine, and prints a short table.
#
#   bash bench/run_all.sh [--out FILE] [--with-reference] [--only NAME[,NAME…]]
#
#   --out FILE          where the JSON goes (default bench/results/bench-<UTC time>.json)
#   --with-reference    also run the plain-PyTorch comparators of ../shared/reference side by side
#                       (needs Debian's python3-torch python3-numpy; installed when missing)
#   --only a,b          run only these programs (data_load, query, train_step, fixed_points, dispatch)
#
# Each program prints one JSON object; a program that fails is recorded as {"error": "..."}
# and the others still run. Figures are measured on whatever else the machine is doing:
# run it on an idle machine.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=""
WITH_REF=0
ONLY=""
while (($#)); do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --with-reference) WITH_REF=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p bench/results
OUT=${OUT:-bench/results/bench-$(date -u +%Y%m%dT%H%M%SZ).json}
BUILD=${JSLDS_BUILD_DIR:-build}

bash scripts/setup.sh >&2 || { echo "run_all.sh: setup failed" >&2; exit 1; }
command -v python3 >/dev/null || apt-get install -y python3 >&2

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The OpenBLAS kernels `jslds` runs with (core/blas_core.h): on a CPU Debian's OpenBLAS does not
# know, jslds sets OPENBLAS_CORETYPE; every benchmark here, the reference's too, gets the same.
cmake --build "$BUILD" --target blas_core >&2
BLAS_CORE_JSON=$("$BUILD/bench/blas_core" 2>/dev/null || echo '{}')
BLAS_FORCED=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("forced", ""))' "$BLAS_CORE_JSON")
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$BLAS_FORCED" ]; then
  export OPENBLAS_CORETYPE=$BLAS_FORCED
  echo "run_all.sh: OPENBLAS_CORETYPE=$BLAS_FORCED for every benchmark (as jslds sets it on this CPU)" >&2
fi
export BLAS_CORE_JSON

# name | CMake target | command (relative to the repository root)
BENCHES=(
  "data_load|data_load|$BUILD/bench/data_load"
  "query|bench_query|$BUILD/bench/bench_query"
  "train_step|train_step|$BUILD/bench/train_step"
  "fixed_points|fixed_points|$BUILD/bench/fixed_points"
  "dispatch|bench_dispatch|$BUILD/bench/dispatch"
)
REFDIR="$ROOT/../shared/reference"
REFERENCE=(
  "ref_train_c1|/usr/bin/python3 $REFDIR/ref_jslds.py train-bench --neurons 61 --time 20 --batch 64 --latent 64 --factors 16 --inferred 0 --threads 1 --steps 50 --warmup 5 --malloc-tune"
  "ref_train_c1_nojslds|/usr/bin/python3 $REFDIR/ref_jslds.py train-bench --neurons 61 --time 20 --batch 64 --latent 64 --factors 16 --inferred 0 --threads 1 --steps 50 --warmup 5 --malloc-tune --no-jslds"
  "ref_train_c2|/usr/bin/python3 $REFDIR/ref_jslds.py train-bench --neurons 60 --time 100 --batch 32 --latent 128 --factors 16 --inferred 2 --threads 1 --steps 20 --warmup 3 --malloc-tune"
  "ref_jvp|/usr/bin/python3 $REFDIR/ref_jslds.py jvp-bench --latent 64 --batch 64 --reps 200 --malloc-tune"
  "ref_fixed_points|/usr/bin/python3 $REFDIR/ref_fixed_points.py bench --latent 64 --inits 1024 --max-iters 5000 --threads 1 --malloc-tune"
  "ref_fixed_points_2t|/usr/bin/python3 $REFDIR/ref_fixed_points.py bench --latent 64 --inits 1024 --max-iters 5000 --threads 2 --malloc-tune"
)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run_one() {  # name command…
  local name=$1; shift
  echo "run_all.sh: $name …" >&2
  local start=$(date +%s)
  if "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then
    # the last line that parses as a JSON object is the program's result
    python3 - "$TMP/$name.out" "$TMP/$name.json" <<'PY' || echo "{\"error\": \"no JSON object in the output\"}" >"$TMP/$name.json"
import json, sys
obj = None
for line in open(sys.argv[1]).read().splitlines()[::-1]:
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line); break
        except ValueError:
            pass
if obj is None:
    try:
        obj = json.loads(open(sys.argv[1]).read())
    except ValueError:
        sys.exit(1)
json.dump(obj, open(sys.argv[2], "w"))
PY
  else
    python3 -c 'import json,sys; print(json.dumps({"error": "exit status %s" % sys.argv[1], "stderr_tail": open(sys.argv[2]).read()[-2000:]}))' \
      "$?" "$TMP/$name.err" >"$TMP/$name.json"
  fi
  echo "run_all.sh: $name done in $(( $(date +%s) - start )) s" >&2
}

selected() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

targets=()
for b in "${BENCHES[@]}"; do
  IFS='|' read -r name target cmd <<<"$b"
  selected "$name" && targets+=("$target")
done
((${#targets[@]})) && cmake --build "$BUILD" --target "${targets[@]}" >&2

for b in "${BENCHES[@]}"; do
  IFS='|' read -r name target cmd <<<"$b"
  selected "$name" || continue
  exe=${cmd%% *}
  if [ ! -x "$exe" ]; then
    echo "{\"error\": \"$exe (target $target) was not built\"}" >"$TMP/$name.json"; continue
  fi
  # shellcheck disable=SC2086
  run_one "$name" $cmd
done

if ((WITH_REF)); then
  if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch python3-numpy python3-h5py >&2
  fi
  for r in "${REFERENCE[@]}"; do
    name=${r%%|*}; cmd=${r#*|}
    # shellcheck disable=SC2086
    run_one "$name" $cmd
  done
fi

python3 - "$TMP" "$OUT" "$BUILD" <<'PY'
import glob, json, os, platform, re, subprocess, sys
tmp, out, build = sys.argv[1:4]
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
machine = {
    "cores": os.cpu_count(),
    "cpu_model": cpu.group(1) if cpu else platform.processor(),
    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "kernel": platform.release(),
    "libtorch": sh("dpkg-query -W -f='${Version}' libtorch-dev"),
    "blas": sh("update-alternatives --query libblas.so.3-x86_64-linux-gnu | awk '/^Value:/{print $2}'"),
    "openblas_core": json.loads(os.environ.get("BLAS_CORE_JSON") or "{}"),
    "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    "openmpi": sh("dpkg-query -W -f='${Version}' openmpi-bin"),
    "sqlite": sh("dpkg-query -W -f='${Version}' libsqlite3-dev"),
    "compiler": sh("c++ --version | head -1"),
    "jslds": sh(f"{build}/cli/jslds --version"),
    "git_commit": sh("git rev-parse --short HEAD"),
    "load_average_at_end": os.getloadavg()[0],
}
results = {}
for f in sorted(glob.glob(os.path.join(tmp, "*.json"))):
    results[os.path.basename(f)[:-5]] = json.load(open(f))
# Side by side with the Python reference where both ran (issue 5's goal: at least 3x).
comparisons = {}
fp = results.get("fixed_points", {})
for ref_name, threads in (("ref_fixed_points", 1), ("ref_fixed_points_2t", 2)):
    ref = results.get(ref_name, {})
    ours = [r for r in fp.get("runs", []) if r.get("threads") == threads and r.get("variant") == "mean"]
    if ours and isinstance(ref.get("seconds"), (int, float)):
        comparisons[f"fixed_points_mean_{threads}t"] = {
            "reference_seconds": ref["seconds"], "reference_iterations": ref.get("iterations"),
            "jslds_seconds": ours[0]["seconds"], "jslds_iterations": ours[0].get("iterations"),
            "speedup": ref["seconds"] / ours[0]["seconds"]}
if comparisons:
    results["comparisons"] = comparisons
doc = {"machine": machine, "benchmarks": results}
json.dump(doc, open(out, "w"), indent=2)

# A short table: every numeric leaf, flattened, per benchmark.
def leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, f"{prefix}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, obj
    elif isinstance(obj, str) and prefix.endswith("error"):
        yield prefix, obj
print(f"machine: {machine['cores']} cores, {machine['cpu_model']}, LibTorch {machine['libtorch']}, BLAS {machine['blas']}"
      + (f", OPENBLAS_CORETYPE={machine['openblas_coretype']}" if machine['openblas_coretype'] else ""))
for name, r in results.items():
    print(f"\n{name}")
    for k, v in list(leaves(r))[:40]:
        print(f"  {k:<58} {v:.6g}" if isinstance(v, float) else f"  {k:<58} {v}")
print(f"\nall figures: {out}")
PY
