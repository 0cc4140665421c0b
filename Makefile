# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test soak bench bench-workers churn-quality unit integration lint clickhouse-server chromium prometheus dashboards clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## The main job on embedded parts: broker, worker, API and demo traffic. Ctrl-C stops all.
run: install prometheus
	$(VENV)/bin/lifecycle up

## Lint, types, unit and integration tests against the real broker and ClickHouse.
test: install clickhouse-server chromium prometheus lint
	$(PY) -m pytest -q

## Long fault runs, checked against the reference: a worker killed with SIGKILL mid-stream, and
## a large backfill produced while the worker is live.
soak: install clickhouse-server
	$(PY) -m pytest -q -m soak

PEER_PY := .venv-peer/bin/python
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	rm -f $(VENV)/.bench-*
	touch $@

# The Quix Streams peer in an environment of its own (its pins conflict with the product's).
$(PEER_PY): bench/peer-requirements.txt
	$(PYTHON) -m venv .venv-peer
	.venv-peer/bin/python -m pip install -q -r bench/peer-requirements.txt
	touch $@

## The benchmark: raw client limit, Quix Streams peer and the full pipeline on the same topic
## contents, then latency, reads, recovery and memory (one JSON object); then the API's lists
## and counts at a million users (one JSON object).
bench: install $(BENCH_STAMP) $(PEER_PY)
	$(PY) -m bench.throughput --users $(or $(USERS),10000) --events $(or $(EVENTS),200000)
	$(PY) -m bench.lists --users $(or $(LIST_USERS),1000000)

## The churn model on held-out users of the demo's simulated shop (docs/models.md); one JSON object.
churn-quality: install
	$(PY) -m bench.churn_quality --users $(or $(USERS),2000) --days $(or $(DAYS),240)

## Throughput with 1, 2 and 4 worker processes sharing the partitions, each run checked against
## the reference scorer; the last line is one JSON object.
bench-workers: install $(BENCH_STAMP)
	$(PY) -m bench.scaling --workers $(or $(WORKERS),1 2 4) --users $(or $(USERS),10000) \
		--events $(or $(EVENTS),200000)

## The Grafana dashboards generated from the KPI SQL (the tests check they are current).
dashboards: install
	$(PY) -m pipeline.dashboards deploy/grafana/dashboards

unit: install
	$(PY) -m pytest -q tests/unit

integration: install clickhouse-server chromium prometheus
	$(PY) -m pytest -q tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## Debian's ClickHouse server (18.16), which the integration tests start as a plain process.
clickhouse-server:
	@command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || { \
		echo "installing Debian's clickhouse-server for the integration tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clickhouse-server; }

## Debian's Chromium, which the console's browser tests drive headless through Playwright.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the console's browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

## Debian's Prometheus server (and promtool), which the pipeline-health test runs.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
		echo "installing Debian's prometheus for the pipeline-health test"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus; }

clean:
	rm -rf .lifecycle .pytest_cache .mypy_cache .ruff_cache .venv-peer
