# Two commands for a fresh machine: `make run` starts the app, `make test` runs every test.
# Each creates .venv (and installs the project into it) when it is missing or out of date, with
# llama.cpp built for this machine's accelerator (packaging/llama_build.py; LLMLB_GPU overrides).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test lint llama agents translations gpu-check bench-hub bench-node bench-ui bundle wheel-check screenshots clean

# The agent CLIs the tests drive (Claude Code, the Codex CLI), pinned in tools/agents and
# installed by `make agents` (npm and the npm registry) into a git-ignored folder; `make test`
# hands them to the tests when they are there, and the tests skip without them.
AGENTS := .cache/agents
AGENT_BIN := $(CURDIR)/$(AGENTS)/node_modules/.bin
AGENT_ENV = $(if $(wildcard $(AGENT_BIN)/claude),LLMLB_CLAUDE=$(AGENT_BIN)/claude) \
	$(if $(wildcard $(AGENT_BIN)/codex),LLMLB_CODEX=$(AGENT_BIN)/codex)

$(STAMP): pyproject.toml packaging/llama_build.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) packaging/llama_build.py install
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

# The build for the accelerator that is here (a no-op when it is installed already; a changed
# LLMLB_GPU builds and installs the other one).
llama: $(STAMP)
	$(PY) packaging/llama_build.py install

# The UI's translations: the .ts sources are kept in the repo, the .qm the app loads is built
# from them with Qt's lrelease. `make translations` runs lupdate after UI strings change.
QM := app/ui/translations/llmlb_ja.qm
$(QM): app/ui/translations/llmlb_ja.ts $(STAMP)
	$(PY) packaging/translations.py build

translations: $(STAMP)
	$(PY) packaging/translations.py update

run: llama $(QM)
	$(VENV)/bin/llmlb

serve: llama $(QM)
	$(VENV)/bin/llmlb serve

# The tests use llama.cpp's RPC server on loopback as a GPU (built once from the same source).
test: lint $(QM)
	$(AGENT_ENV) LLMLB_TEST_RPC_SERVER=$$($(PY) packaging/llama_build.py rpc-server) \
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# `npm ci` from the lock file (exact versions, checked hashes); the CLIs must then start.
$(AGENTS)/.installed: tools/agents/package.json tools/agents/package-lock.json
	mkdir -p $(AGENTS)
	cp tools/agents/package.json tools/agents/package-lock.json $(AGENTS)/
	cd $(AGENTS) && npm ci --no-audit --no-fund
	$(AGENT_BIN)/claude --version
	$(AGENT_BIN)/codex --version
	touch $@

agents: $(AGENTS)/.installed

# Only the GPU path: the probe, the planner and offload through an RPC device on loopback.
gpu-check: llama
	LLMLB_TEST_RPC_SERVER=$$($(PY) packaging/llama_build.py rpc-server) \
	$(PY) -m pytest -q tests/node/test_rpc_device.py tests/node/test_offload.py tests/node/test_memory.py

lint: llama
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

bundle: $(STAMP) $(QM)
	bash packaging/build_bundle.sh

# The wheel `pipx install .` installs, in a fresh venv: --version and --self-test.
wheel-check: $(STAMP) $(QM)
	bash packaging/check_wheel.sh

clean:
	rm -rf $(VENV) $(AGENTS) build dist *.egg-info
