#!/usr/bin/env bash
# The GPU speed check, in one short run (under 8 minutes on one H100-class GPU):
#   1. the strategy tests on this machine's torch (CPU side, about 30 s);
#   2. every strategy on 16 NB201 architectures one by one, then 4 worker processes
#      scoring 400 architectures with the vmap strategy, TF32 off (agreement with the loop
#      on the GPU is printed; exit status 1 if any score differs by 1e-6 or more);
#   3. concurrency scaling: 8 worker processes on 800 architectures.
# Each step prints architectures per hour and the time for all 15,625.
#
#   bash evaluation/gpu_check.sh            # results under $OUT (or ./gpu_check_out)
#
# Uses the machine's own python3/torch and this checkout (no install, no network).
# CIFAR-10 images come from $XIGSNR_DATA_ROOT (or shared/data); without them the timing
# runs on random images of the same shape, and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${OUT:-gpu_check_out}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DATA=${XIGSNR_DATA_ROOT:-shared/data}
BENCH=(evaluation/bench_speed.py --device cuda --data-root "$DATA" --synthetic-ok)
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT_DIR/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    2>&1 | tee -a "$OUT_DIR/gpu.txt"

echo "== 1. strategy tests"
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_strategies.py 2>&1 | tail -3 | tee "$OUT_DIR/tests.txt"

echo "== 2. every strategy, 16 archs one by one; 4 workers (vmap) over 400 archs"
timeout 270 "$PY" "${BENCH[@]}" --archs 400 --per-arch 16 --workers 4 --json "$OUT_DIR/bench_w4.json" \
    2>&1 | tee "$OUT_DIR/bench_w4.txt" || status=1

echo "== 3. 8 workers (vmap) over 800 archs"
timeout 150 "$PY" "${BENCH[@]}" --archs 800 --workers 8 --strategies workers --json "$OUT_DIR/bench_w8.json" \
    2>&1 | tee "$OUT_DIR/bench_w8.txt" || status=1

exit $status
