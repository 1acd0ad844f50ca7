# fleqc: `make demo` runs a sample end to end, `make test` runs the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS_STAMP := $(VENV)/.installed-extras

.PHONY: install install-extras demo test test-extras test-slow bench eforth clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	@echo "make install: a virtual environment in $(VENV) with fleqc (editable) and numpy, lark, click, rich,"
	@echo "  matplotlib (fleqc show), textual (fleqc debug) and the test tools (pytest, hypothesis)."
	@echo "  About 1 minute with a warm pip cache, up to 5 minutes when everything is downloaded."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,plot,debug]'
	@echo "compiling the incremental engine's kernels with numba (once; a few minutes on two cores; cached)"
	$(BIN)/python -m fleqc.transformer.warm
	@echo "make install: done; run .venv/bin/fleqc --help, make demo or make test"
	@touch $(STAMP)

install: $(STAMP)

# The interop extras (PyTorch CPU build, ONNX + ONNX Runtime, TransformerLens, safetensors): see
# README, "Other engines"; constraints-cpu.txt pins the CPU-only torch wheel.
$(EXTRAS_STAMP): $(STAMP) pyproject.toml constraints-cpu.txt
	@echo "make install-extras: PyTorch (CPU build), ONNX and ONNX Runtime, TransformerLens and safetensors"
	@echo "  into $(VENV); about 1 GB to download, 3 to 10 minutes."
	$(BIN)/pip install -q -c constraints-cpu.txt -e '.[test,interop]'
	@touch $(EXTRAS_STAMP)

install-extras: $(EXTRAS_STAMP)

demo: $(STAMP)
	$(BIN)/fleqc build samples/factorial.fleq -o /tmp/fleqc-demo-factorial.npz
	$(BIN)/fleqc run /tmp/fleqc-demo-factorial.npz
	$(BIN)/fleqc run samples/gcd.fleq --backend transformer
	$(BIN)/fleqc run samples/fleq_matrix_chain.fleq
	$(BIN)/fleqc calc "(1 + 2) * 7 / 3"
	$(BIN)/fleqc run samples/classic_hello.sq

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q  # one BLAS thread: faster on 2 cores (1:44 vs 5:35)

test-extras: $(EXTRAS_STAMP)
	$(BIN)/python -m pytest -q tests/test_interop_torch.py tests/test_interop_onnx.py tests/test_interop_lens.py \
		tests/test_interop_safetensors.py tests/test_interop_cases.py

# eForth (howerj/subleq, a Forth system for a 16-bit SUBLEQ VM) on the transformer: `2 2 + . cr`
# prints " 4" and " ok" after 13.9 million steps (bench/classic_speed.py extrapolates its time from a
# checked prefix: docs/measurements.md). Needs ../shared/corpus. --stats would time every layer of
# every pass, one pass per call: left out.
CORPUS ?= ../shared/corpus/subleq
FORTH  ?= 2 2 + . cr
eforth: $(STAMP)
	@test -f $(CORPUS)/13_howerj_eforth.dec || { echo "no eForth image at $(CORPUS) (set CORPUS=...)"; exit 1; }
	echo '$(FORTH)' | OPENBLAS_NUM_THREADS=1 $(BIN)/fleqc run $(CORPUS)/13_howerj_eforth.dec --bits 16 \
		--memory 65536 --input - --max-steps 100000000

test-slow: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -m slow -o timeout=0

# Every benchmark, written to docs/measurements.md with its command, the machine and the date
# (bench/run_all.py; about 10-15 minutes on 2 cores). One benchmark: python bench/run_all.py --only NAME
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist .pytest_cache *.egg-info
