# 三长通 — the two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask
export FLASK_APP := portal
APT_PACKAGES := fonts-noto-cjk libharfbuzz-subset0 libpangoft2-1.0-0 chromium poppler-utils postgresql
#: PostgreSQL used by `make test` (and `make bench`); created by `make pg`.
PG_URL ?= postgresql://portal:portal@127.0.0.1:5432/portal_test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install system-deps python-deps assets db pg test-sqlite test-postgres lint bench clean

run: db
	@$(PY) -m portal.banner
	$(FLASK) run --host 127.0.0.1 --port 5000

test: install pg lint test-sqlite test-postgres

install: system-deps python-deps assets

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

python-deps: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

assets: portal/static/vendor/htmx.min.js
portal/static/vendor/htmx.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p portal/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

db: install
	$(FLASK) init-db
	$(FLASK) seed demo

pg: system-deps
	@ver=$$(pg_lsclusters -h | awk 'NR==1{print $$1}'); name=$$(pg_lsclusters -h | awk 'NR==1{print $$2}'); \
	pg_lsclusters -h | awk 'NR==1{print $$4}' | grep -q online || $(SUDO) pg_ctlcluster $$ver $$name start
	@$(SUDO) runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='portal'" | grep -q 1 || \
	  $(SUDO) runuser -u postgres -- psql -qc "CREATE ROLE portal LOGIN PASSWORD 'portal' CREATEDB"
	@for d in portal_test portal_bench; do \
	  $(SUDO) runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='$$d'" | grep -q 1 || \
	  $(SUDO) runuser -u postgres -- createdb -O portal $$d; \
	done

lint: python-deps
	$(VENV)/bin/ruff check .

test-sqlite: install
	$(VENV)/bin/pytest

test-postgres: install pg
	PORTAL_TEST_DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest

bench: install pg
	$(PY) bench/run.py --database-url postgresql://portal:portal@127.0.0.1:5432/portal_bench

clean:
	rm -rf $(VENV) node_modules portal/static/vendor test-output
