# Every target installs what it needs on a fresh machine (Debian, Python 3.11, root).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_SOURCES := $(filter-out trading_engine/core/__init__.py,$(wildcard trading_engine/core/*.py))
BENCH_OPS ?= 1000000
BENCH_DIR := .bench
WORKLOADS := ../shared/workloads/gen_orders.py

.PHONY: install build lint test bench loadtest run clean

install: $(VENV)/.installed trading_engine/core/.compiled

# The virtualenv, with the package (editable) and its dev tools; redone when pyproject changes.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c "import ensurepip" 2>/dev/null || \
		{ echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv python3-dev gcc >/dev/null; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# The core compiled with mypyc; falls back to pure Python (slower, same behaviour) if it can't.
trading_engine/core/.compiled: $(CORE_SOURCES) build_core.py $(VENV)/.installed
	@$(BIN)/python build_core.py || echo "warning: running the pure-Python core"
	@touch $@

build: install

lint: install
	$(BIN)/ruff check trading_engine tests benchmarks build_core.py
	$(BIN)/ruff format --check trading_engine tests benchmarks build_core.py
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: install
	@mkdir -p $(BENCH_DIR)
	@for p in mixed cancel sweep; do \
		f=$(BENCH_DIR)/$$p-$(BENCH_OPS).csv; \
		test -s $$f || $(BIN)/python $(WORKLOADS) --ops $(BENCH_OPS) --seed 1 --profile $$p > $$f; \
		echo "== replay $$p ($(BENCH_OPS) ops, seed 1)"; \
		$(BIN)/trading-engine bench replay $$f; \
	done

# The HTTP figures of docs/performance.md: wrk (throughput) and hey (latency at a fixed rate)
# against a fresh `serve --demo` on port $$PORT (8077). RATE=500 SECONDS_=10 by default.
loadtest: install
	sh benchmarks/http_load.sh

# The engine with demo symbols and users on 127.0.0.1:8000 ($$PORT), on a local PostgreSQL
# in .data unless DATABASE_URL is set. `make run HOST=0.0.0.0` listens on every interface
# (only on the command line: zsh has a HOST variable of its own). Ctrl-C
# stops it cleanly.
HOST := 127.0.0.1
run: install
	$(BIN)/trading-engine serve --demo --host $(HOST)

clean:
	$(BIN)/python build_core.py --clean 2>/dev/null || true
	rm -rf $(VENV) $(BENCH_DIR) build .mypy_cache .ruff_cache .pytest_cache
