# relief: `make demo` runs the pipeline end to end through Airflow; `make test` runs every test.
# Each target builds .venv from requirements.lock first when needed (offline from the package index).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ROOT := $(CURDIR)

DEMO_DIR := $(ROOT)/demo
DEMO_PATIENTS ?= 1500
DEMO_SEED ?= 2026

export AIRFLOW_HOME := $(ROOT)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export AIRFLOW__LOGGING__LOGGING_LEVEL := WARNING
# make test RELIEF_SKIP_LIVE_AIRFLOW=1 skips the live Airflow (api-server + scheduler) test.
export RELIEF_SKIP_LIVE_AIRFLOW

.PHONY: demo test lint format bench venv clean browser

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --require-virtualenv -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	@echo "== 1/3 synthetic delivery ($(DEMO_PATIENTS) patients, seed $(DEMO_SEED)) -> demo/landing"
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)/landing
	$(BIN)/relief synth --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED) --out $(DEMO_DIR)/landing/delivery-001
	@echo "== 2/3 Airflow: relief_nightly via 'airflow dags test' (AIRFLOW_HOME=.airflow, SQLite metadata)"
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)-migrate.log; exit 1)
	RELIEF_DEMO=1 RELIEF_LANDING_DIR=$(DEMO_DIR)/landing \
	RELIEF_WAREHOUSE_URL=sqlite:///$(DEMO_DIR)/warehouse.db RELIEF_REPORT_DIR=$(DEMO_DIR)/reports \
	  $(BIN)/airflow dags test relief_nightly > $(DEMO_DIR)/airflow.log 2>&1 \
	  || (tail -n 60 $(DEMO_DIR)/airflow.log; echo "airflow dags test failed; full log: demo/airflow.log"; exit 1)
	@echo "== 3/3 results"
	@$(BIN)/relief status --limit 1 --warehouse sqlite:///$(DEMO_DIR)/warehouse.db

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Headless Chromium renders the report in tests/report (Debian package; installed when root).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test of the report will be skipped"; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Issue 8's table: every stage at three scales on both engines, median of 3 (~45 min here).
# Quicker: make bench BENCH_ARGS="--scales 1000 10000".
BENCH_ARGS ?= --scales 1000 10000 100000 --repeats 3
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .airflow .airflow-migrate.log demo reports relief_warehouse.db
