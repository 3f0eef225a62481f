# Every target installs what it needs on a fresh machine (Debian, Python 3.11, root).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_SOURCES := $(filter-out trading_engine/core/__init__.py,$(wildcard trading_engine/core/*.py))
BENCH_OPS ?= 1000000
BENCH_DIR := .bench
WORKLOADS := ../shared/workloads/gen_orders.py
# The web UI's chart library, copied from the npm package that package-lock.json pins.
CHART_LIB := trading_engine/api/static/lightweight-charts.mjs
# The browser the tests drive (Debian's; Playwright's own download is never used).
CHROMIUM ?= /usr/bin/chromium

.PHONY: install build lint test bench loadtest order-entry run screenshot clean

install: $(VENV)/.installed trading_engine/core/.compiled $(CHART_LIB)

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

# npm checks the tarball against package-lock.json's sha512 integrity; scripts never run.
# The standalone ES module build has the library's one dependency inside it.
$(CHART_LIB): package.json package-lock.json
	@command -v npm >/dev/null || \
		{ echo "installing npm"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs $@

$(CHROMIUM):
	@echo "installing chromium for the browser tests"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

build: install

lint: install
	$(BIN)/ruff check trading_engine tests benchmarks build_core.py
	$(BIN)/ruff format --check trading_engine tests benchmarks build_core.py
	$(BIN)/mypy

test: lint $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q

# docs/web-ui.png: the page with demo orders and trades (over ten minutes, for ten
# one-minute candles), taken by the browser test.
screenshot: install $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) WEB_UI_SCREENSHOT=docs/web-ui.png WEB_UI_SCREENSHOT_MINUTES=10 \
		$(BIN)/python -m pytest -q tests/browser -k screenshot

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

# The order-entry figures of docs/performance.md beside issue 23's targets, in one run: the echo,
# REST single orders without and with Redis (wrk), orders over the WebSocket (closed loop, open
# loop at $$RATE 2000/s and $$LOW_RATE 200/s), batches over the WebSocket and REST,
# cancel-on-disconnect and `bench engine --journal postgres`, on fresh servers of its own
# (ports 8281-8283, Redis 8289). SECONDS_=10 ROUNDS=2 by default.
order-entry: install
	sh benchmarks/order_entry.sh

# The engine with demo symbols and users on 127.0.0.1:8000 ($$PORT), on a local PostgreSQL
# in .data unless DATABASE_URL is set. `make run HOST=0.0.0.0` listens on every interface
# (only on the command line: zsh has a HOST variable of its own). Ctrl-C
# stops it cleanly.
HOST := 127.0.0.1
run: install
	$(BIN)/trading-engine serve --demo --host $(HOST)

clean:
	$(BIN)/python build_core.py --clean 2>/dev/null || true
	rm -rf $(VENV) $(BENCH_DIR) build .mypy_cache .ruff_cache .pytest_cache node_modules $(CHART_LIB)
