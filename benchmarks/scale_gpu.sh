#!/usr/bin/env bash
# The GPU check of the scale-out issue, for a lent GPU machine (CI never runs it):
# one epoch of mf-torch and ncf on CUDA, fp32 and with mixed precision, on the
# synthetic ML-25M shape. Uses the machine's own CUDA build of torch when .venv's
# is the CPU wheel. Writes benchmarks/results/scale-gpu.md (and $OUT/ when set).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [[ "${DEVICE:-cuda}" == cuda* ]]; then
    "$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null || py=python3
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$py" benchmarks/scale.py --ratings "${RATINGS:-25000000}" --device "${DEVICE:-cuda}" \
    --work "${WORK:-/tmp/cinerec-scale}" --stage-timeout "${STAGE_TIMEOUT:-240}" \
    --out benchmarks/results/scale-gpu.md
if [ -n "${OUT:-}" ]; then cp benchmarks/results/scale-gpu.md "$OUT/"; fi
