# Identity Hub — everything a newcomer needs: `make run`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | cksum | cut -d' ' -f1)
PORT   ?= 8000
ISSUER ?= http://127.0.0.1:$(PORT)
# The issuer (and so the demo's redirect URI) follows the port: `make run PORT=8123`.
DEV    := HUB_DEBUG=1 HUB_ISSUER=$(ISSUER)

.PHONY: run test lint worker beat bench bench-sso bench-sync bench-footprint clean venv

venv: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

## make run [PORT=8000]: the hub on http://127.0.0.1:$(PORT) with SQLite, a mock upstream and demo data.
run: venv
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py demo
	$(DEV) $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## make worker / make beat [PORT=…]: Celery with the filesystem broker (or REDIS_URL), same issuer as `make run`.
worker: venv
	$(DEV) $(BIN)/celery -A identityhub worker --loglevel=INFO --concurrency=2

beat: venv
	$(DEV) $(BIN)/celery -A identityhub beat --loglevel=INFO --schedule var/celerybeat-schedule

## make test: the whole suite (SQLite by default; DATABASE_URL / REDIS_URL to use real services).
test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: bench-sso bench-sync bench-footprint

bench-sso: venv
	$(BIN)/python bench/sso_cycles.py

bench-sync: venv
	$(BIN)/python bench/sync_users.py

## make bench-footprint: entrypoint.sh all's memory (PSS) and start-up time against its budget.
bench-footprint: venv
	$(BIN)/python bench/footprint.py

clean:
	rm -rf $(VENV) var
