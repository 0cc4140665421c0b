# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test soak bench unit integration lint clickhouse-server clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## The main job on embedded parts: broker, worker, API and demo traffic. Ctrl-C stops all.
run: install
	$(VENV)/bin/lifecycle up

## Lint, types, unit and integration tests against the real broker and ClickHouse.
test: install clickhouse-server lint
	$(PY) -m pytest -q

## Long fault runs: a worker killed with SIGKILL mid-stream, checked against the reference.
soak: install clickhouse-server
	$(PY) -m pytest -q -m soak

## Throughput of the full worker against the raw client limit, on the same topic contents.
bench: install
	$(PY) -m bench.throughput --users $(or $(USERS),10000) --events $(or $(EVENTS),200000)

unit: install
	$(PY) -m pytest -q tests/unit

integration: install clickhouse-server
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

clean:
	rm -rf .lifecycle .pytest_cache .mypy_cache .ruff_cache
