# Every target installs what it needs first; MODE=docker|local overrides the choice `make up` makes.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
export FLEET_DB_PORT ?= 55432
export FLEET_DATABASE_URL ?= postgresql://postgres@127.0.0.1:$(FLEET_DB_PORT)/fleet

ifeq ($(MODE),)
MODE := $(shell docker info >/dev/null 2>&1 && echo docker || echo local)
endif

.PHONY: help deps db up down clean-db migrate run test-deps test test-abuse test-faults test-system lint typecheck check simulate webhook-receiver bench bench-queries fuzz admin-key admin

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps:  ## install uv and the locked Python dependencies
	@bash scripts/bootstrap.sh

db: deps  ## start the local TimescaleDB cluster (installing it if missing) and create the database
	@bash scripts/db.sh up
	@$(PY) -m app.cli.migrate --create-database

up:  ## start the database, the MQTT broker and the API, and print the URLs
ifeq ($(MODE),docker)
	@echo "make up: Docker engine found, using docker compose (MODE=local to override)"
	docker compose up -d --build --wait
	@echo "api: http://127.0.0.1:$${FLEET_PORT:-8000}  (Swagger UI: /docs; more replicas: docker compose up -d --scale api=3)"
else
	@echo "make up: no Docker engine answered, using the local cluster (MODE=docker to override)"
	@$(MAKE) --no-print-directory db
	@bash scripts/mqtt.sh start
	@bash scripts/api.sh start
endif
	@echo "auth: every route but /, /docs and the /console page needs a credential; 'make admin-key' prints a new admin key to this terminal (once)"

down:  ## stop the API, the broker and the database
ifeq ($(MODE),docker)
	docker compose down
else
	@bash scripts/api.sh stop
	@bash scripts/mqtt.sh stop
	@bash scripts/db.sh down
endif

clean-db: down  ## stop everything and delete the local database files
	@bash scripts/db.sh clean

migrate: db  ## apply pending migrations
	@$(PY) -m app.cli.migrate

run: db  ## run the API in the foreground
	@$(PY) -m app

test-deps: deps  ## what the tests need beyond Python, each installed once: TimescaleDB, Chromium, Prometheus, Mosquitto, nginx
	@bash scripts/db.sh install
	@bash scripts/mqtt.sh install
	@bash scripts/browser.sh
	@bash scripts/prometheus.sh
	@bash scripts/nginx.sh

test: test-deps  ## the unit, store and api tiers against a real TimescaleDB (started if needed); nothing is skipped
	@$(PY) -m pytest -m "not system"

test-system: test-deps  ## the system tier: real API processes, broker, browser, nginx; faults, abuse, derived state
	@$(PY) -m pytest -m system

test-abuse: test-deps  ## only the abuse suite: each attack of the security review, against a real API process
	@$(PY) -m pytest -m abuse

test-faults: test-deps  ## only the fault suite: PostgreSQL and API crashes under load, every reading accounted for
	@$(PY) -m pytest -m faults

lint: deps
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

typecheck: deps
	@.venv/bin/mypy

check: lint typecheck test test-system  ## what CI runs: ruff, mypy --strict, every tier of tests

admin-key: db  ## create an operator key with every scope and print it here, once (never logged)
	@$(PY) -m app.cli.admin create-key "admin (make admin-key)" --scope admin --scope read --scope stream --scope export --scope ingest --scope operate

admin: db  ## the admin CLI: make admin ARGS="list" | "provision-robot R1" | "revoke 3" ...
	@$(PY) -m app.cli.admin $(ARGS)

simulate: deps  ## run the fleet simulator against the API (make up first); ARGS=--incidents for alerts, ARGS="--transport mqtt" through the robot client
	@$(PY) -m simulator $(if $(FLEET_ADMIN_KEY),,--local-key) $(ARGS)

webhook-receiver: deps  ## print the alert webhooks it receives on :9000, checking signatures with SECRET=whsec_...
	@$(PY) -m simulator.webhook_receiver $(if $(SECRET),--secret "$(SECRET)") $(ARGS)

bench: deps db  ## ingest benchmark (QUICK=1 for a short run)
	@$(PY) -m benchmarks.ingest $(if $(QUICK),--quick) $(ARGS)

fuzz: deps db  ## schemathesis --checks all against a real API (needs Python 3.12+ on the machine)
	@bash scripts/fuzz.sh $(ARGS)

bench-queries: deps db  ## query benchmark (QUICK=1 for a short run)
	@$(PY) -m benchmarks.queries $(if $(QUICK),--quick) $(ARGS)
