#!/usr/bin/env bash
# The whole-space job on a lent GPU, in one short prepared run (evaluation/whole_space/README.md,
# "On a GPU"), from the repository root of the device machine's copy of the checkout:
#   1. the GPU, driver and torch it runs on;
#   2. crosscheck: CELLS (default 200) committed cells scored on the GPU against the CPU chunks
#      (crosscheck_<device>.md; exit status 3 if a proxy moved beyond its bound);
#   3. the job on the GPU over [START, STOP) (default 8000-15625, away from the CPU job, which
#      climbs from 0) for RUN_SECONDS (default 300), then stopped with SIGTERM: the shard's line
#      is written and what it scored exported as chunks;
#   4. chunks/ (with shards.jsonl), the cross-check report and the logs copied to $OUT.
# Commit the returned chunks into evaluation/whole_space/chunks/ afterwards.
#
#   bash evaluation/whole_space/gpu_session.sh
#
# Needs the CIFAR-10 reference images and the NB201 ground truth under $XIGSNR_DATA_ROOT
# (default shared/data: carry shared/data/images/cifar10_jpeg_train5000_test10000.npz and
# shared/data/nb201/nb201_groundtruth_all15625.csv through a git-ignored link shared -> ../shared).
# DEVICE=cpu RUN_SECONDS=30 CELLS=2 ROOT=<a copy of the job's folder> tries it without a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
STRATEGY=${STRATEGY:-vmap}
WORKERS=${WORKERS:-4}
CELLS=${CELLS:-200}
START=${START:-8000}
STOP=${STOP:-15625}
RUN_SECONDS=${RUN_SECONDS:-300}
DATA=${XIGSNR_DATA_ROOT:-shared/data}
ROOT=${ROOT:-evaluation/whole_space}
OUT_DIR=${OUT:-gpu_session_out}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
JOB=("$PY" evaluation/whole_space/job.py)
ON=(--device "$DEVICE" --strategy "$STRATEGY" --workers "$WORKERS" --root "$ROOT" --data-root "$DATA")
mkdir -p "$OUT_DIR"
status=0

echo "== 1. device"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
} | tee "$OUT_DIR/device.txt"

echo "== 2. crosscheck: $CELLS committed cells on $DEVICE"
timeout 300 "${JOB[@]}" crosscheck --cells "$CELLS" "${ON[@]}" 2>&1 | tee "$OUT_DIR/crosscheck.txt"
status=${PIPESTATUS[0]}

echo "== 3. the job on $DEVICE over [$START, $STOP) for $RUN_SECONDS s"
timeout -s TERM -k 30 "$RUN_SECONDS" "${JOB[@]}" run --start "$START" --stop "$STOP" "${ON[@]}" 2>&1 \
    | tee "$OUT_DIR/run.log"
"${JOB[@]}" status --root "$ROOT" 2>&1 | tee "$OUT_DIR/status.txt"

echo "== 4. outputs"
cp -r "$ROOT/chunks" "$OUT_DIR/"
cp "$ROOT"/crosscheck_*.md "$ROOT"/logs/memory.log "$OUT_DIR/" 2>/dev/null
ls -la "$OUT_DIR" "$OUT_DIR/chunks"
exit "$status"
