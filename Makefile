# DATAS: `make run` serves the portal with a demo network on SQLite, fed by simulated site agents;
# `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1:8000
# Simulated site agents `make run` starts beside the portal.
AGENTS ?= 3
# The embedded default: SQLite under var/, no Redis (Celery tasks run in-process).
EMBEDDED := env -u DATABASE_URL -u REDIS_URL

# `make serve`: gunicorn workers (default two per core plus one).
WORKERS ?= $(if $(filter gunicorn,$(SERVER)),$(shell echo $$(( $$(nproc) * 2 + 1 ))),$(shell nproc))

.PHONY: help venv run run-portal serve demo test test-postgres test-sqlite lint wheels bench clean

help:
	@echo "make run    portal with a demo network at http://$(HOST) (SQLite, no services), fed by"
	@echo "            $(AGENTS) simulated site agents (logs in var/agents/; AGENTS=0 for none)"
	@echo "make run-portal  the same portal without agents (with the autoreloader)"
	@echo "make serve  the portal under gunicorn ($(WORKERS) workers) on DATABASE_URL/REDIS_URL or the embedded default"
	@echo "make test   every test: PostgreSQL+Q3C and Redis (started if needed), then SQLite"
	@echo "make lint   ruff and the import-linter layering contracts (.importlinter)"
	@echo "make wheels the datas-pipeline and datas-agent wheels into dist/ (no Django in either)"

$(VENV)/.installed: requirements.txt pipeline/pyproject.toml pipeline/setup.py pipeline/datas_pipeline/kernels.pyx \
		pipeline/datas_pipeline/kernels_network.h pipeline/datas_pipeline/registration/_resample.pyx agent/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(EMBEDDED) $(PY) manage.py migrate --noinput
	$(EMBEDDED) $(PY) manage.py load_demo

run: demo
	$(EMBEDDED) $(PY) manage.py run_demo $(HOST) --agents $(AGENTS)

run-portal: demo
	$(EMBEDDED) $(PY) manage.py runserver $(HOST)

# Production: the settings come from the environment (README), static files from WhiteNoise.
# SERVER=granian (default: keep-alive, Rust HTTP; measured 2-4x gunicorn sync workers by
# bench/api_load.py) or gunicorn.
SERVER ?= granian
serve: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0
ifeq ($(SERVER),granian)
	DEBUG=$${DEBUG:-false} $(VENV)/bin/granian --interface wsgi network.wsgi:application \
	  --host $(firstword $(subst :, ,$(HOST))) --port $(lastword $(subst :, ,$(HOST))) \
	  --workers $(WORKERS) --blocking-threads 1 --backlog 2048 --no-access-log
else
	DEBUG=$${DEBUG:-false} $(VENV)/bin/gunicorn network.wsgi --bind $(HOST) --workers $(WORKERS) \
	  --max-requests 10000 --max-requests-jitter 1000 --access-logfile - --graceful-timeout 30
endif

test: venv
	bash scripts/test.sh $(PY)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

wheels: venv
	$(PY) -m build --wheel --outdir dist pipeline
	$(PY) -m build --wheel --outdir dist agent

clean:
	rm -rf var .pytest_cache dist .import_linter_cache
