#!/usr/bin/env bash
# Every check and timing that needs a GPU, in one run, for the moment a device is lent
# (the `device` tool's `run` executes this on a copy of the working tree). Budget: under
# 8 minutes on one GPU; each step is bounded by `timeout` so one slow step cannot eat it.
#   bash scripts/gpu_checks.sh            # results under ${OUT:-runs/gpu}
# Never run on a GPU yet (no device has been lent to this project). Steps:
# the CUDA parity tests (AMP + channels-last training vs CPU accuracy, check's verdicts on
# cpu vs cuda, the estimators on GPU tensors); the device-layout tests; PGD throughput
# against torchattacks on the GPU; the dependency estimators on the GPU; zoo step times.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu}"
mkdir -p "$out"
# Here: the project's venv. On the lent GPU machine (no .venv, no network): its python3,
# which holds a CUDA torch; the package is installed there without dependencies, and a
# missing dependency must travel as wheels (the device tool's README says how).
if [ -n "${PYTHON:-}" ]; then python="$PYTHON"
elif [ -x .venv/bin/python ]; then python=.venv/bin/python
else
    python=python3
    site=/tmp/semirobust-site
    "$python" -m pip install -q --no-deps --no-build-isolation --target "$site" . >"$out/install.log" 2>&1 \
        || { echo "installing the package failed; see $out/install.log"; exit 1; }
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
missing=$("$python" - <<'PY'
import importlib.util
needed = ["torch", "numpy", "scipy", "sympy", "hypothesis", "matplotlib", "sklearn", "tqdm",
          "safetensors", "numba", "pyautoattack", "pytest", "torchattacks"]
print(" ".join(n for n in needed if importlib.util.find_spec(n) is None))
PY
)
[ -z "$missing" ] || echo "missing Python packages (carry them as wheels): $missing" | tee "$out/missing.txt"
"$python" -c "import torch; print(torch.__version__, torch.cuda.is_available())" | tee "$out/torch.txt"
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log
    local name="$1" limit="$2"; shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1; local rc=$?
    echo "   rc=$rc, $(tail -n 1 "$out/$name.log")"
    [ "$rc" -eq 0 ] || status=1
}
step parity_tests 180 "$python" -m pytest -q -p no:cacheprovider tests/test_gpu_parity.py tests/test_device.py
step attack_throughput 90 "$python" benchmarks/attacks.py --device cuda --repeats 5 --json "$out/attacks.json"
step dependency_gpu 120 "$python" benchmarks/dependency.py --device cuda --repeats 1 --n 5000 --json "$out/dependency.json"
step zoo_step_times 60 "$python" benchmarks/zoo_step_times.py --device cuda --repeats 2
exit "$status"
