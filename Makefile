# Every target sets up what it needs from PyPI on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURE_VENV ?= .venv-fixtures

BENCH_VENV ?= .venv-bench

.PHONY: demo test sanitize tsan fixtures bench clean

$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/*.c src/*.h) fastlstm/_kernels.pyx
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m fastlstm demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

# The test suite against an AddressSanitizer + UndefinedBehaviorSanitizer build (own venv).
sanitize:
	PYTHON=$(PYTHON) .ci/sanitize

# The C thread teams under ThreadSanitizer (clang + LLVM libomp/archer, installed when missing).
tsan:
	.ci/tsan

# Regenerates tests/fixtures with real Keras 3 (tensorflow-cpu) and Keras 2 (tf-keras).
fixtures:
	$(PYTHON) -m venv $(FIXTURE_VENV)
	$(FIXTURE_VENV)/bin/python -m pip install -q --upgrade pip
	$(FIXTURE_VENV)/bin/python -m pip install -q tensorflow-cpu tf-keras h5py
	cd tests/fixtures && ../../$(FIXTURE_VENV)/bin/python make_fixtures.py --keras 3
	cd tests/fixtures && ../../$(FIXTURE_VENV)/bin/python make_fixtures.py --keras 2

# Peers (ONNX Runtime, LiteRT, PyTorch 2.13.0 CPU, Keras) in their own venv; writes bench/results/
# (results.md for the four workloads, generate.md for autoregressive generation).
bench:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q "torch==2.13.0"
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench]'
	$(BENCH_VENV)/bin/python bench/run_bench.py
	$(BENCH_VENV)/bin/python bench/bench_generate.py
	$(BENCH_VENV)/bin/python bench/bench_overhead.py
	$(BENCH_VENV)/bin/python bench/bench_batch1.py
	$(BENCH_VENV)/bin/python bench/bench_real_models.py

clean:
	rm -rf build $(VENV) fastlstm/*.so fastlstm/_kernels.c
