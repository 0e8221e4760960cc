#!/usr/bin/env bash
# The GPU checks and benchmarks of issue 10, in two parts that each fit a 10-minute call on a lent
# GPU machine. Logs go to $OUT (default /tmp/earshot-gpu).
#
#   bash benchmarks/gpu_suite.sh tests        # tests/test_cuda.py, front-end, training throughput
#   bash benchmarks/gpu_suite.sh inference    # every model's RTF, the FSDD recipe on the GPU, one hour
#
# Expects torch with CUDA, earshot importable (pip install -e . or PYTHONPATH=src) and, for the
# recipe and the long file, ../shared/data.
set -uo pipefail
OUT=${OUT:-/tmp/earshot-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, say how long it took
  local name=$1; shift
  echo "=== $name: $* ($(date -u +%H:%M:%S))"
  local t=$SECONDS
  "$@" 2>&1 | tee "$OUT/$name.log" | grep -v -E "^\s*$|Warning|warn\(" | tail -40
  echo "=== $name: exit ${PIPESTATUS[0]}, $((SECONDS - t)) s"
}
case ${1:-tests} in
  tests)
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    python3 -c "import torch, platform; print(platform.processor() or platform.machine(), torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"
    step cuda_tests python3 -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider
    step frontend python3 benchmarks/frontend.py --device cuda
    step throughput python3 benchmarks/train_throughput.py --device cuda --batch 64 --steps 20 --compile --workers 8
    ;;
  inference)
    step model_rtf python3 benchmarks/model_rtf.py --device cuda --seconds 600
    step fsdd python3 benchmarks/fsdd.py trainer.accelerator=gpu
    ckpt=$(ls -td runs/fsdd-*/checkpoints/best.ckpt | head -1)
    step long_file python3 benchmarks/long_file.py "$ckpt"
    ;;
esac
