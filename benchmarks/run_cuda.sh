#!/usr/bin/env bash
# The CUDA checks in one go: the CUDA tests, then every CUDA benchmark case, on a machine with a GPU.
#
#   OUT=/path/for/results bash benchmarks/run_cuda.sh        (from anywhere; no network needed)
#
# Needs python3 with a CUDA build of torch, pytest and pytest-benchmark; the repository is used
# from the source tree (PYTHONPATH=., no install). Without optuna the study group skips with its
# reason; everything else runs. The CPU scratch baseline that the population speed-ups refer to
# is timed in the same session, on this machine's CPU, so every figure is also a ratio to it.
#
# What it measures, in one pytest-benchmark run: the population kernel at K = 262,144 and
# 1,048,576 (l2, l1 and the search-space mix) through the fused Triton kernel (variant auto), the
# torch kernels replayed as CUDA graphs (torch) and run eagerly (torch-eager), and the plain
# batched form (reference, at 262,144); the smaller CUDA population sizes; the seed's update
# loops on CUDA (group update-loops-run / -step); scaling and the study on CUDA. Targets:
# >= 10 M trajectories/s for l2 and >= 3 M/s for l1 on an H100/H200 (docs/benchmarks.md).
#
# Writes under "$OUT" (default runs/benchmarks/cuda): env.txt (versions, GPU, driver),
# cuda-tests.log, benchmarks-cuda.log and benchmarks-cuda.json (pytest-benchmark JSON; copy it
# into runs/benchmarks/ for the report and for `pytest-benchmark compare`).
# Exit code: 0 when every step passed, 1 when a step failed, 2 when the machine lacks CUDA or a
# required package.
set -u -o pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-runs/benchmarks/cuda}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

"$PY" - >"$OUT/env.txt" 2>&1 <<'EOF'
import importlib, platform, sys
print("python", sys.version.split()[0], platform.platform())
for name in ("torch", "triton", "pytest", "pytest_benchmark", "optuna", "pandas", "numpy"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except ImportError as exc:
        print(name, "MISSING", exc)
import torch
print("cuda available", torch.cuda.is_available(), "cuda", torch.version.cuda)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "threads", torch.get_num_threads())
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
    >>"$OUT/env.txt" 2>&1 || true
cat "$OUT/env.txt"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: CUDA is not available to $PY (see $OUT/env.txt)" >&2
    exit 2
fi
for module in pytest pytest_benchmark; do
    if ! "$PY" -c "import $module" 2>/dev/null; then
        echo "error: $PY cannot import $module (install it, or put a copy on PYTHONPATH)" >&2
        exit 2
    fi
done

ignore=()
if ! "$PY" -c "import optuna" 2>/dev/null; then
    echo "optuna is missing: test modules that import it or studies are left out"
    while IFS= read -r path; do
        ignore+=(--ignore "$path")
    done < <(grep -rlE '^\s*(import|from) (optuna|studies)\b' tests --include='*.py' || true)
fi

status=0
echo "== CUDA tests"
"$PY" -m pytest tests -m cuda -q -ra -p no:cacheprovider ${ignore[@]+"${ignore[@]}"} 2>&1 \
    | tee "$OUT/cuda-tests.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then  # 5: no test carries the cuda marker
    status=1
fi

echo "== CUDA benchmark groups"
"$PY" -m pytest benchmarks -m cuda --benchmark-only -ra -p no:cacheprovider \
    --benchmark-json "$OUT/benchmarks-cuda.json" --benchmark-columns=min,median,max,rounds \
    2>&1 | tee "$OUT/benchmarks-cuda.log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    status=1
fi
exit "$status"
