#!/usr/bin/env bash
# All GPU checks and timings of issue 12 in one device run (docs/performance.md says what each row means).
#
# Before the call, once, here (where pip works), in the repository root:
#     bash /work/shared/tools/device-wheels.sh        # pydantic, albumentations, ... into .whl/ (git-ignored)
# Then one call of the device tool:
#     run(command="bash benchmarks/device_gpu_check.sh", carry=[".whl"], timeout_s=540)
# QUICK=1 leaves out the torch.compile rows (inductor compiles MiT-B1 forward + backward: minutes).
# Results land in $OUT (8 files at most): env_checks.txt, train.txt/.json, train_compile.txt/.json,
# pfa_ops.txt, eval.txt/.json; the summary at the end is what the tool's output tail shows.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 2; }
    export PYTHONPATH=/tmp/site:$PWD
else
    echo "no .whl/ wheels carried (run /work/shared/tools/device-wheels.sh first); trying the image's packages"
    export PYTHONPATH=$PWD
fi
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
cd benchmarks

step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep going on failure
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start))s"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, torch.cuda.get_device_name())"
    uptime
    step checks 240 python3 check_cuda_sync_free.py $([ "${QUICK:-0}" = 1 ] && echo --skip-compile)
} 2>&1 | tee "$OUT/env_checks.txt"

step train 150 python3 bench_gpu_train.py --device cuda --levers fused,channels_last,syncs --json "$OUT/train.json" \
    2>&1 | tee "$OUT/train.txt"
step pfa_ops 150 python3 bench_pfa_ops.py --device cuda --repeats 15 $([ "${QUICK:-0}" = 1 ] && echo --skip-compile) \
    2>&1 | tee "$OUT/pfa_ops.txt"
step eval 90 python3 bench_gpu_eval.py --device cuda --json "$OUT/eval.json" 2>&1 | tee "$OUT/eval.txt"
if [ "${QUICK:-0}" != 1 ]; then
    step train_compile 240 python3 bench_gpu_train.py --device cuda --levers compile,fused --json "$OUT/train_compile.json" \
        2>&1 | tee "$OUT/train_compile.txt"
fi

echo
echo "################ summary"
grep -h -E "^(PASS|FAIL)" "$OUT/env_checks.txt"
for file in train pfa_ops eval train_compile; do
    [ -f "$OUT/$file.txt" ] && { echo "--- $file"; grep -v -E "^(  |===)" "$OUT/$file.txt" | tail -25; }
done
