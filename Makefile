# sopcoach: the two commands a fresh machine needs are `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8866
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: serve test install install-test browser check bench clean

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

## Debian's chromium and a CJK font for the browser tests (Playwright's own download does not work here).
browser:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'noto.*cjk'; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

serve: install
	$(BIN)/sopcoach serve --port $(PORT)

check: install
	$(BIN)/sopcoach check

test: install-test browser
	$(BIN)/python -m pytest src tests
	rm -rf var/nbval && SOPCOACH_HOME=$(CURDIR)/var/nbval $(BIN)/python -m pytest -p no:cacheprovider --nbval-lax -o addopts= notebooks

bench: install-test browser
	$(BIN)/python benchmarks/exam_app.py
	$(BIN)/python benchmarks/analytics.py

clean:
	rm -rf $(VENV) var test-artifacts
