# make demo: install, migrate, start the stack in the background, run the demo.
# make test: lint and run the whole test suite against the local PostgreSQL and Redis.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/marketplace
export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0
export WEB_HOST ?= 127.0.0.1
export WEB_PORT ?= 8000
export PSP_SANDBOX_HOST ?= 127.0.0.1
export PSP_SANDBOX_PORT ?= 12111
export PSP_API_BASE ?= http://$(PSP_SANDBOX_HOST):$(PSP_SANDBOX_PORT)
export PSP_SANDBOX_WEBHOOK_URL ?= http://$(WEB_HOST):$(WEB_PORT)/webhooks/psp
export DJANGO_SETTINGS_MODULE ?= config.settings.local
export DJANGO_DEBUG ?= false

.PHONY: install migrate demo run stop test lint bench-checkout bench-chaos bench-reconcile clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) scripts/ensure_database.py
	$(PY) manage.py migrate --no-input
	$(PY) manage.py create_operator_groups
	$(PY) manage.py collectstatic --no-input -v 0

demo: migrate
	bash scripts/demo.sh

run: migrate
	$(VENV)/bin/honcho start

stop:
	bash scripts/stack.sh stop

test: export DJANGO_SETTINGS_MODULE = config.settings.test
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .

bench-checkout: install
	$(PY) bench/checkout.py $(BENCH_ARGS)

bench-chaos: install
	$(PY) bench/chaos.py $(BENCH_ARGS)

bench-reconcile: install
	$(PY) bench/reconcile.py

clean: stop
	rm -rf var
