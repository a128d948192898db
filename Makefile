# sopcoach: the two commands a fresh machine needs are `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8866
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: serve lint typecheck test test-fast test-e2e install install-test browser fonts hub postgres check bench bench-cohort clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Debian's chromium, a CJK font and nginx for the browser tests (Playwright's own browser download
## does not work here; nginx is for tests/e2e/test_reverse_proxy.py, which runs docs/nginx.conf).
## Installing nginx must not leave a web server on port 80: in a container policy-rc.d keeps apt from
## starting it; the package's default site is removed, and on a systemd host the service is disabled.
browser:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	missing=; need_nginx=; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi 'noto.*cjk' || missing="$$missing fonts-noto-cjk"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_nginx=1; \
	if [ -n "$$missing$$need_nginx" ]; then \
	  $$SUDO apt-get update -qq || exit 1; \
	  if [ -n "$$need_nginx" ]; then \
	    if apt-cache show nginx-light >/dev/null 2>&1; then missing="$$missing nginx-light"; \
	    else missing="$$missing nginx"; fi; \
	  fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  if [ -n "$$need_nginx" ]; then \
	    $$SUDO rm -f /etc/nginx/sites-enabled/default; \
	    if [ -d /run/systemd/system ]; then $$SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi; \
	  fi; \
	fi

## A TrueType Chinese font (Debian's fonts-wqy-microhei) that the certificate PDF embeds (a subset), so it
## renders the same in any viewer; reportlab cannot embed the OpenType/CFF Noto CJK fonts. Without it the PDF
## falls back to a font the viewer must have (sopcoach.certification.certificates.cjk_font_file).
fonts:
	@if [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || [ -n "$$SOPCOACH_PDF_FONT" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq || exit 1; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-wqy-microhei >/dev/null

## Debian's PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin) for the tests, which run the
## records, exam, certificate, lesson, race and migration tests on SQLite and on PostgreSQL (the JupyterHub
## test keeps its records there too): tests/pg_cluster.py makes a private cluster per test worker in a
## temporary folder (unix socket there, no TCP port) and removes it at the end. The package's own cluster is not made (create_main_cluster off) and on a systemd host the
## service is disabled, so installing leaves no server running.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq || exit 1; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql-common >/dev/null || exit 1; \
	$$SUDO pg_conftool /etc/postgresql-common/createcluster.conf set create_main_cluster false || exit 1; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null || exit 1; \
	if [ -d /run/systemd/system ]; then $$SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true; fi; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null

## JupyterHub for tests/e2e/test_jupyterhub.py (and a Hub on this machine, docs/deploy.md): jupyterhub
## comes with the test extra (the `hub` extra); the Hub's proxy, configurable-http-proxy 5.3, is
## installed by npm into .venv/node (Debian's nodejs and npm first, when npm is missing).
CHP := $(VENV)/node/node_modules/.bin/configurable-http-proxy
$(CHP): | $(BIN)/python
	@command -v npm >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	npm install --prefix $(VENV)/node --no-audit --no-fund --loglevel=error configurable-http-proxy@5.3

hub: install-test $(CHP)

serve: install
	@$(MAKE) --no-print-directory fonts || echo "note: no Chinese TrueType font installed; certificate PDFs will not embed one (make fonts)"
	$(BIN)/sopcoach serve --port $(PORT) $(SERVE_ARGS)

check: install
	$(BIN)/sopcoach check

## Unit tests and doctests run on every core (pytest-xdist; JOBS=0 runs them in this process).
JOBS ?= auto
UNIT = $(BIN)/python -m pytest -n $(JOBS) -m "not e2e" src tests

## The notebooks, run top to bottom by nbval with a data home in a fresh temporary folder outside the
## repository (removed afterwards), so no database or var/ folder appears in the checkout. Each
## notebook stays on one worker (--dist loadfile): its cells share a kernel and run in order.
NBVAL = home=$$(mktemp -d) && SOPCOACH_HOME="$$home" SOPCOACH_DB_URL= \
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax -o addopts= -n $(JOBS) --dist loadfile notebooks; \
	status=$$?; rm -rf "$$home"; exit $$status

## ruff (pyproject.toml's [tool.ruff]) and mypy ([tool.mypy]); `make typecheck` runs mypy alone.
lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

typecheck: install-test
	$(BIN)/mypy src

## The whole suite: lint, unit tests and doctests (records tests on SQLite and PostgreSQL), the notebooks,
## then the browser tests (one at a time).
test: install-test browser fonts hub postgres lint
	$(UNIT)
	$(NBVAL)
	$(BIN)/python -m pytest -m e2e tests/e2e

## Everything but the browser tests: the fast loop while developing.
test-fast: install-test fonts postgres lint
	$(UNIT)
	$(NBVAL)

## Only the browser tests (a real learner server and Chromium).
test-e2e: install-test browser hub postgres
	$(BIN)/python -m pytest -m e2e tests/e2e

bench: install-test browser
	$(BIN)/python benchmarks/exam_app.py
	$(BIN)/python benchmarks/analytics.py

## 50 learners arriving over 60 s against one learner server (figures in the README).
bench-cohort: install-test browser
	$(BIN)/python benchmarks/cohort.py --learners 50 --arrive-over 60

clean:
	rm -rf $(VENV) var test-artifacts
