#!/usr/bin/env bash
# One prepared GPU check (bench/gpu.py; docs/performance.md, "The prepared GPU check").
#   make install && bash bench/gpu.sh       on a GPU host: under ten minutes on one H100
#   bash bench/gpu.sh --tiny                the same code on the CPU with tiny models
# Runs .venv's Python when there is one, else python3 (or $PYTHON): the check needs torch,
# transformers, accelerate, pyarrow and scikit-learn, no Django and no database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi
exec "$python" bench/gpu.py "$@"
