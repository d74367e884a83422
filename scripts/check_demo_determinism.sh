#!/usr/bin/env bash
# Two runs of `semirobust demo --seed 0 --device cpu` into two fresh folders, then every
# leaf of their results.json compared exactly (python -m semirobust.testing.determinism).
# Exit 0: identical; 1: the differing numbers are printed. Takes two demo runs (minutes).
# Usage: scripts/check_demo_determinism.sh [FOLDER]   (default runs/determinism)
set -euo pipefail
out="${1:-runs/determinism}"
python="${PYTHON:-.venv/bin/python}"
rm -rf "$out/first" "$out/second"
for run in first second; do
    OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$python" -m semirobust.empirical.cli demo --seed 0 --device cpu --out "$out/$run"
done
for file in results.json independent-init/results.json; do
    echo "== $file"
    "$python" -m semirobust.testing.determinism "$out/first/$file" "$out/second/$file"
done
