# fleqc: `make demo` runs a sample end to end, `make test` runs the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-slow bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fleqc build samples/factorial.fleq -o /tmp/fleqc-demo-factorial.npz
	$(BIN)/fleqc run /tmp/fleqc-demo-factorial.npz
	$(BIN)/fleqc run samples/gcd.fleq --backend transformer
	$(BIN)/fleqc run samples/fleq_matrix_chain.fleq
	$(BIN)/fleqc calc "(1 + 2) * 7 / 3"

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q  # one BLAS thread: faster on 2 cores (1:44 vs 5:35)

test-slow: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/subleq_speed.py
	$(BIN)/python bench/fast_speed.py
	$(BIN)/python bench/fleq_accuracy.py

clean:
	rm -rf $(VENV) build dist .pytest_cache *.egg-info
