# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing, installs the CPU torch wheel first (a plain `torch`
# requirement would pull a multi-GB CUDA build), then this package with its dev extra.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.semirobust-installed
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# torchattacks: the independent reference of the attack cross-check test and benchmark;
	# --no-deps because it declares torchvision, which would replace the CPU torch.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps torchattacks==3.5.1
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/semirobust demo --out runs/demo --resume

test: $(STAMP)
	$(PY) -m pytest -q

bench: demo
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
