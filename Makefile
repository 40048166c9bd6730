# Two commands for a fresh machine: `make run` starts the app, `make test` runs every test.
# Each creates .venv (and installs the project into it) when it is missing or out of date.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test lint bench-hub bench-node bench-ui bundle screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/llmlb

serve: $(STAMP)
	$(VENV)/bin/llmlb serve

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check app tests bench packaging
	$(PY) -m ruff format --check app tests bench packaging
	$(PY) -m mypy

bench-hub: $(STAMP)
	$(PY) bench/hub.py

bench-node: $(STAMP)
	$(PY) bench/node.py

bench-ui: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/ui.py

screenshots: $(STAMP)
	LLMLB_SCREENSHOTS=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/ui -q

bundle: $(STAMP)
	bash packaging/build_bundle.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
