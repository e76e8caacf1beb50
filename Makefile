# lakeline — developer entry points. Every target sets up what it needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_HOME ?= .demo

.PHONY: help demo test check lint typecheck unit bench bench-dq soak clean browser docs docs-serve

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml package.json package-lock.json
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,aws,ui,docs]'
	command -v npm >/dev/null && npm install --no-audit --no-fund --silent || echo "npm not found: ASL validation tests will be skipped"
	touch $(STAMP)

# The SAM CLI in a venv of its own (its pins are not ours): `sam validate --lint` in the tests.
SAM_STAMP := .venv-sam/.installed
$(SAM_STAMP):
	$(PY) -m venv .venv-sam
	echo '*' > .venv-sam/.gitignore
	.venv-sam/bin/pip install -q 'aws-sam-cli>=1.130,<2'
	touch $(SAM_STAMP)

demo: $(STAMP) ## create a lake in .demo, generate data, land it, run the pipeline, show results
	LAKELINE_HOME=$(DEMO_HOME) bash scripts/demo.sh

# The UI tests drive Debian's headless chromium through Playwright (no browser download).
browser: ## install Debian's headless chromium for the UI tests (when missing)
	@test -x /usr/lib/chromium/chromium-headless-shell -o -x /usr/lib/chromium/chromium || \
		{ test "$$(id -u)" = 0 && apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-headless-shell; } || \
		echo "chromium missing and not root: the UI browser tests will fail (apt-get install chromium-headless-shell)"

test: $(STAMP) $(SAM_STAMP) browser ## lint, type-check, check the import layers and run the whole test suite
	$(BIN)/ruff check lakeline tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2 --dist loadgroup

docs: $(STAMP) ## build the documentation site into site/ (strict: a broken link or reference fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP) ## serve the documentation site on http://127.0.0.1:8000 while you edit it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8000

check: test ## alias of test (ruff + mypy strict + import layers + pytest)

bench: $(STAMP) ## benchmarks: 1M records vs a DuckDB reference, then 5M for bounded memory; one summary table
	rm -f bench/out/results.jsonl
	$(BIN)/python bench/bench_shipments.py --records 1000000
	$(BIN)/python bench/bench_shipments.py --records 5000000 --no-reference
	$(BIN)/python bench/bench_declared.py --records 1000000
	$(BIN)/python bench/bench_iceberg.py --rows 1000000
	$(BIN)/python bench/bench_totesys.py --sales-orders 1000000
	$(BIN)/python bench/bench_lineage.py --nodes 1000000 --single 10000
	$(BIN)/python bench/bench_carbon.py --rows 1000000
	$(BIN)/python bench/bench_cold_start.py
	$(BIN)/python bench/bench_sql.py
	$(BIN)/python bench/bench_latency.py
	$(MAKE) bench-dq
	$(BIN)/python bench/summary.py

bench-dq: $(STAMP) ## DQ rules on 1M rows: lakeline vs Great Expectations (GE only in .venv-ge)
	test -x .venv-ge/bin/python || ($(PY) -m venv .venv-ge && echo '*' > .venv-ge/.gitignore)
	.venv-ge/bin/python -c 'import great_expectations, pandas' 2>/dev/null || \
		.venv-ge/bin/pip install -q 'great_expectations>=1.0,<2' 'pandas>=2'
	$(BIN)/python bench/bench_dq.py --rows 1000000

soak: $(STAMP) ## the long cases: 200 SIGKILLs at random points, 60 rounds of random write faults
	LAKELINE_SOAK_KILLS=200 LAKELINE_SOAK_ROUNDS=60 $(BIN)/pytest -q -m soak tests/functional/test_crash_recovery.py tests/faults

clean: ## remove the venv and demo lake
	rm -rf $(VENV) .venv-ge .venv-sam $(DEMO_HOME) .mypy_cache .pytest_cache .ruff_cache
