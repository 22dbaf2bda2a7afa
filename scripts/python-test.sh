#!/bin/bash
# Runs python/test_walloc_shards.py when a Python with numpy and safetensors is at hand
# ($PYTHON, else python3); otherwise says so and succeeds (the Swift tests do not need Python).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null || ! "$py" -c "import numpy, safetensors" 2>/dev/null; then
    echo "python-test: skipped (no $py with numpy and safetensors; e.g. PYTHON=/path/to/venv/bin/python make test)"
    exit 0
fi
WALLOC="${WALLOC:-$root/.build/release/walloc}" "$py" "$root/python/test_walloc_shards.py"
