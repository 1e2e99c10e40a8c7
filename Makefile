.PHONY: setup run test lint schema bench

.DEFAULT_GOAL := run
include deploy/deploy.mk

setup:
	@bash scripts/setup.sh

## Set up everything and run web, worker, beat and the simulator in the foreground.
run: setup
	@bash scripts/run.sh

## Set up everything and run the whole test suite: the app, then the infrastructure checks.
test: setup
	@bash scripts/test.sh
	@$(MAKE) --no-print-directory test-deploy

## Ingest benchmarks against the stack `make run` started (see bench/ingest.py).
bench: setup
	@bash -c 'source .local/env && python bench/ingest.py'

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

## Regenerate the committed OpenAPI schema (docs/openapi.yaml).
schema: setup
	@bash -c 'source .local/env && python manage.py spectacular --file docs/openapi.yaml'
