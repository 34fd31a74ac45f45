# make demo: install, migrate, start the stack in the background, run the demo.
# make test: lint and run the whole test suite against the local PostgreSQL and Redis.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# Two database roles (README, "Database roles"): the app (gunicorn, Celery, the demo's commands) connects as
# DATABASE_URL's role; migrations and `manage.py db_roles` as DATABASE_OWNER_URL's (the local superuser, which
# creates both roles on a fresh machine), and DATABASE_OWNER_ROLE owns the tables.
export DATABASE_URL ?= postgres://marketplace_app:marketplace_app@127.0.0.1:5432/marketplace
export DATABASE_OWNER_URL ?= postgres://postgres@127.0.0.1:5432/marketplace
export DATABASE_OWNER_ROLE ?= marketplace_owner
export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0
export WEB_HOST ?= 127.0.0.1
export WEB_PORT ?= 8000
export PSP_SANDBOX_HOST ?= 127.0.0.1
export PSP_SANDBOX_PORT ?= 12111
export PSP_API_BASE ?= http://$(PSP_SANDBOX_HOST):$(PSP_SANDBOX_PORT)
export PSP_SANDBOX_WEBHOOK_URL ?= http://$(WEB_HOST):$(WEB_PORT)/webhooks/psp
export DJANGO_SETTINGS_MODULE ?= config.settings.local
export DJANGO_DEBUG ?= false

.PHONY: install migrate manage demo run stop test fuzz lint chromium screenshots bench-checkout bench-chaos bench-reconcile clean mutation

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) scripts/ensure_database.py
	DATABASE_URL="$$DATABASE_OWNER_URL" $(PY) manage.py migrate --no-input
	$(PY) manage.py db_roles
	$(PY) manage.py create_operator_groups
	$(PY) manage.py collectstatic --no-input -v 0

# Any manage.py command, with the venv's python and the variables above: make manage ARGS="create_api_key shop"
manage: install
	@$(PY) manage.py $(ARGS)

# Every run starts from nothing: the database and the PSP sandbox's storage are reset together (scripts/stack.sh
# reset, which says so), then migrated, so the sandbox and the books agree however many times it runs.
demo: install
	bash scripts/stack.sh reset
	@$(MAKE) --no-print-directory migrate
	bash scripts/demo.sh

run: migrate
	$(VENV)/bin/honcho start -c worker=$${WORKER_PROCESSES:-$$(nproc)}

stop:
	bash scripts/stack.sh stop

test: export DJANGO_SETTINGS_MODULE = config.settings.test
# The suite creates and migrates test_<name>, as the owner does; core/tests/test_db_roles.py connects as an app role.
test: export DATABASE_URL = $(DATABASE_OWNER_URL)
test: install chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# The API fuzzed against its OpenAPI schema for longer than the suite does (core/tests/test_schemathesis.py, 1,200
# examples per operation, phase and mode instead of the suite's 300).
fuzz: export DJANGO_SETTINGS_MODULE = config.settings.test
fuzz: export DATABASE_URL = $(DATABASE_OWNER_URL)
fuzz: install
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-1200} $(VENV)/bin/pytest core/tests/test_schemathesis.py

# The browser tests drive Debian's chromium (Playwright's own browser download is not reachable here);
# where it can't be installed they skip and say so.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 \
	      && apt-get install -y -q chromium >/dev/null 2>&1)) \
	  || echo "chromium could not be installed: the browser tests will skip"

lint: install
	$(VENV)/bin/ruff check .

# make mutation: mutmut over the money modules (docs/mutation.md), niced, one mutant at a time, on a test database
# and Redis databases of its own so that it never meets `make test`; fails below MUTATION_MIN_SCORE percent.
MUTATION_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/marketplace_mut
MUTATION_CELERY_BROKER_URL ?= redis://127.0.0.1:6379/10
MUTATION_RATE_LIMIT_REDIS_URL ?= redis://127.0.0.1:6379/11
MUTATION_JOBS ?= 1
MUTATION_MIN_SCORE ?= 90
mutation: export DJANGO_SETTINGS_MODULE = config.settings.test
mutation: export DATABASE_URL = $(MUTATION_DATABASE_URL)
mutation: export CELERY_BROKER_URL = $(MUTATION_CELERY_BROKER_URL)
mutation: export RATE_LIMIT_REDIS_URL = $(MUTATION_RATE_LIMIT_REDIS_URL)
mutation: install
	rm -rf mutants
	$(VENV)/bin/pytest -q -p no:cacheprovider --reuse-db --create-db core/tests/test_money.py  # a fresh test_<name>
	nice -n 19 $(PY) scripts/mutation.py run-by-module --max-children $(MUTATION_JOBS)
	$(PY) scripts/mutation.py check $(MUTATION_MIN_SCORE)

bench-checkout: install
	$(PY) bench/checkout.py $(BENCH_ARGS)

bench-chaos: install
	$(PY) bench/chaos.py $(BENCH_ARGS)

bench-reconcile: install
	$(PY) bench/reconcile.py

clean: stop
	rm -rf var

# The operators' console in Debian's Chromium at 1440x900 and 390x844: docs/screenshots/admin-*.png, in its own
# database (marketplace_screenshots, dropped and recreated; SCREENSHOTS_DATABASE_URL), nothing else started.
screenshots: install chromium
	SCREENSHOTS_DATABASE_URL=$${SCREENSHOTS_DATABASE_URL:-$${DATABASE_OWNER_URL%/*}/marketplace_screenshots} \
	  $(PY) scripts/screenshots.py
