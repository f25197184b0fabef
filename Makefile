# Qunzhu — `make run` (embedded, needs only Python 3.11+) and `make test` (unit + integration).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# embedded mode's data directory (make run, make token)
QUNZHU_DATA_DIR ?= data

.PHONY: install prereqs run token client test test-unit test-integration test-faults stop-test-servers up down status bench bench-report lint clean demo

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	@test -x $(PY) || { echo "==> creating the virtual environment $(VENV) ($(PYTHON) -m venv)" >&2; $(PYTHON) -m venv $(VENV) >&2; }
	@echo "==> installing Qunzhu and its dependencies into $(VENV) (first time: about 1-2 minutes; later: seconds)" >&2
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]' >&2
	@touch $@
	@echo "==> installed into $(VENV)" >&2

## run: the whole platform in one process (SQLite under ./data or QUNZHU_DATA_DIR, in-process bus, gateway on :8000)
run: install
	$(PY) -m qunzhu run --data-dir '$(QUNZHU_DATA_DIR)'

## token: development login, a member token from ./data's (QUNZHU_DATA_DIR's) key file: make token PERSON=telegram:42 [COMMUNITY=<id>]
token: install
	@test -n "$(PERSON)" || { echo "usage: make token PERSON=telegram:42 [COMMUNITY=<community id>]" >&2; exit 2; }
	@$(PY) -m qunzhu token --person '$(PERSON)' --data-dir '$(QUNZHU_DATA_DIR)' $(if $(COMMUNITY),--community '$(COMMUNITY)')

## demo: a simulated community (3 groups × 200 members, 14 days) through embedded mode's real webhooks, then a report
demo: install
	$(PY) -m qunzhu demo

## prereqs: what the tests need here (PostgreSQL, Prometheus, Java 17+, Maven, Node.js + npm, Kafka jars): installed
## with apt-get when missing and root (or passwordless sudo), else an error naming the command to run
prereqs:
	@bash deploy/local/prereqs.sh

# Each test target runs in one shell that records the servers the tests start (tests/servers.py) and, on exit
# (also when interrupted), stops whatever the tests' own teardown did not (deploy/local/test-servers.sh).
TEST_SERVERS := QUNZHU_TEST_RUN_DIR="$$(bash deploy/local/test-servers.sh new)" || exit 1; export QUNZHU_TEST_RUN_DIR; \
	  trap 'bash deploy/local/test-servers.sh stop "$$QUNZHU_TEST_RUN_DIR"' EXIT; trap 'exit 130' INT TERM

## test: unit tests (SQLite, in-process bus), then integration tests (real Kafka + PostgreSQL, services as processes)
test: prereqs install
	@$(TEST_SERVERS); \
	  $(PY) -m pytest services -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: no unit tests were collected" >&2; exit 1; fi; \
	  if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	  $(PY) -m pytest tests --ignore=tests/reliability -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: no integration tests were collected" >&2; exit 1; fi; \
	  exit $$rc

test-unit: install
	$(PY) -m pytest services -q

test-integration: prereqs install
	@$(TEST_SERVERS); $(PY) -m pytest tests --ignore=tests/reliability -q

## test-faults: the fault suite (10,000 webhooks through restarts and kills of broker, database, services)
test-faults: prereqs install
	@$(TEST_SERVERS); $(PY) -m pytest tests/reliability -q -p no:cacheprovider

## stop-test-servers: stop anything a killed test run left running (brokers, clusters, Prometheus, services)
stop-test-servers:
	bash deploy/local/test-servers.sh stop

## client: regenerate the TypeScript client (clients/typescript) from the gateway's OpenAPI, then build it;
## commit clients/typescript afterwards (make test's drift check compares it with a fresh regeneration)
client: install
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "make client needs Node.js 18+ and npm: sudo apt-get install nodejs npm" >&2; exit 1; }
	$(PY) -m qunzhu openapi --output clients/typescript/openapi.json
	@cd clients/typescript && lock=$$(sha256sum package-lock.json | cut -d' ' -f1) && \
	  if [ "$$(cat node_modules/.qunzhu-package-lock.sha256 2>/dev/null)" != "$$lock" ]; then \
	    npm ci --no-audit --no-fund && echo "$$lock" > node_modules/.qunzhu-package-lock.sha256; fi
	cd clients/typescript && node scripts/generate.mjs && npm run --silent build

## up / down: the distributed stack on this machine (Kafka KRaft + PostgreSQL + one process per service)
up: install
	bash deploy/local/up.sh

down:
	bash deploy/local/down.sh

status:
	bash deploy/local/up.sh status

## bench: benchmarks print their figures and ratio to a limit measured in the same run; flame graphs of the
## ingest and scoring paths (py-spy SVG) and bench-report's charts go to bench/reports/
bench: install
	$(PY) bench/bus.py
	$(PY) bench/ingest.py --database postgres --flamegraph bench/reports/ingest-gateway.svg
	$(PY) bench/scheduler.py
	$(PY) bench/engagement.py --flamegraph bench/reports/scoring-engagement.svg
	$(PY) bench/membership.py
	$(PY) bench/e2e.py
	$(PY) bench/e2e.py --gateways 2 --engagement 2 --rounds 2 --rates 1000 --seconds 8
	$(PY) bench/report.py

## bench-report: one PNG per benchmark's history (bench/results.json) into bench/reports/; runs nothing
bench-report: install
	$(PY) bench/report.py

lint: install
	$(VENV)/bin/ruff check services tests bench

clean:
	rm -rf data .pytest_cache
