.PHONY: setup run test test-fast lint typecheck schema bench bench-deps chaos soak lock audit warehouse

.DEFAULT_GOAL := run
include deploy/deploy.mk

setup:
	@bash scripts/setup.sh

## Set up everything and run web, worker, beat and the simulator in the foreground.
run: setup
	@bash scripts/run.sh

## Set up everything and run the whole test suite: the app, then the infrastructure checks.
test: setup
	@$(MAKE) --no-print-directory typecheck
	@bash scripts/warehouse.sh install
	@bash scripts/test.sh
	@$(MAKE) --no-print-directory test-deploy

## The tests that start no process (no Celery worker, web server, browser, redis-server or moto):
## a quick check while editing. More pytest options: make test-fast ARGS="--lf -x".
test-fast: setup
	@bash scripts/test.sh -m "not processes" $(ARGS)

## Benchmarks: start the stack, measure, stop it, write docs/PERFORMANCE.md (see bench/run.py).
## A subset: make bench ONLY=api,worker; more options: make bench ARGS="--quick" (or --soak).
## The live side (map, sockets; writes its own section): make bench ONLY=live.
bench: export BENCH_COMMAND = make bench$(if $(ONLY), ONLY=$(ONLY))$(if $(ARGS), ARGS="$(ARGS)")
bench: bench-deps
	@bash -c 'source .local/env && python bench/run.py $(if $(ONLY),--only $(ONLY)) $(ARGS)'

bench-deps: setup
	@bash -c 'source .local/env && { [ .venv/.bench-stamp -nt requirements/bench.txt ] \
	  || { pip install -q --require-hashes -r requirements/bench.txt && touch .venv/.bench-stamp; }; }'

## Fault scenarios under a steady load (bench/chaos/), each on SQS (moto) and on Redis: prints the table, writes it into docs/,
## exits non-zero when an accepted ping is lost or duplicated. A subset: make chaos ONLY=worker_kill (both brokers;
## ARGS="--transport sqs" for one).
## The web listens on CHAOS_PORT (default 8320), the run's own Redis on CHAOS_PORT+3, moto's SQS on +4.
chaos: bench-deps
	@bash -c 'source .local/env && python -m bench.chaos.run $(if $(ONLY),--only $(ONLY)) $(ARGS)'

## 30 minutes at 1,000 pings/s, watching memory (not in CI): make soak ARGS="--soak-minutes 5".
soak: bench-deps
	@bash -c 'source .local/env && python -m bench.chaos.run --soak $(ARGS)'

## The analysts' warehouse (warehouse/, dbt): a local warehouse database fed by logical replication
## from the service's database, `dbt build` on it (every model and test), and the docs site in
## .local/warehouse/docs/. After some minutes of `make run` (its simulator), the marts have data.
warehouse: setup
	@bash scripts/warehouse.sh build

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
	@$(MAKE) --no-print-directory typecheck

## mypy with the Django and DRF plugins (pyproject.toml: strict on services, selectors and infra/).
## The Django plugin loads the settings, so it reads .local/env as the app does.
typecheck: setup
	@bash -c 'source .local/env && .venv/bin/mypy'

## Regenerate the committed OpenAPI schema (docs/openapi.yaml).
schema: setup
	@bash -c 'source .local/env && python manage.py spectacular --file docs/openapi.yaml'

## Compile requirements/*.in (edit those) into the hashed locks requirements/*.txt, with uv.
## Deterministic: existing pins are kept unless an .in asks otherwise (UPGRADE=1 bumps all).
lock:
	@bash scripts/lock.sh

## Known vulnerabilities in every lock file (pip-audit). Needs PyPI's vulnerability data
## over the network, so it is not part of `make test`.
audit:
	@bash scripts/tools.sh
	@status=0; for lock in requirements/production.txt requirements/local.txt requirements/deploy.txt \
		requirements/tools.txt deploy/requirements-checkov.txt; do \
		echo "==> $$lock"; \
		.venv-tools/bin/pip-audit --strict --progress-spinner off --require-hashes --disable-pip -r $$lock || status=1; \
	done; exit $$status
