# README's two commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONFIG ?= configs/amazon-food-kitchen.yaml
OUT ?= runs/amazon-food-kitchen
STAMP := $(VENV)/.installed

.PHONY: setup browser run experiments new-items test bench clean

setup: $(STAMP)

# torch is installed first, from the pin, so no other package can pull a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip -c constraints.txt
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/hgrec run --config $(CONFIG) --out $(OUT)

# The page's end-to-end test drives Debian's Chromium (never a downloaded browser); without
# it that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ; } || \
		echo "chromium could not be installed: the browser test will be skipped"

# P1 Table 1's ablations and the new-item protocol on top of `make run` (same run folder: finished stages are reused).
experiments: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/hgrec run --config configs/amazon-food-kitchen-ablations.yaml --out $(OUT)

# The new-item protocol on top of `make run` (same run folder): models retrained without 20%
# of the food items, in $(OUT)/new-items/.
new-items: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/hgrec run --config configs/amazon-food-kitchen-new-items.yaml --out $(OUT)

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/graph_build.py

clean:
	rm -rf $(VENV) runs .cache
