#!/bin/bash
# The GPU checks, for a machine whose Ray cluster has a GPU: the GPU training test, then the GPU mode of
# bench/train.py (10M rows x 28, depth 8, 500 rounds). Logs go to $OUT (the device tool) or bench/out.
# Only the XGBoost GPU tests run: the other families need their own wheels there.
#   bash bench/gpu_check.sh            # needs ray, xgboost and cupy importable
set -uo pipefail
out=${OUT:-bench/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import ray, xgboost, cupy; print('ray', ray.__version__, 'xgboost', xgboost.__version__, 'cupy', cupy.__version__)" || exit 1
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/train/test_gpu.py -k "on_the_gpu or on_the_host" 2>&1 | tee "$out/gpu-tests.log"
timeout 420 python3 bench/train.py --gpu --repeat 2 2>&1 | grep -v "^20..-..-.. ..:..:..,... *INFO" | tee "$out/train-gpu.log"
