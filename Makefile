# Two entry points (README): `make run` = dvc repro on the default params, `make test` = the test suite.
# Each sets up .venv with python -m venv + pip on a fresh machine (run: the package and its small serve extra, what
# the README uses after it; test: the sweep extra and the test tools too); later calls reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# the Makefile's one pin of torch (pip takes these from this machine's disk where it can; the lock records the same)
TORCH := torch==2.14.1 torchvision==0.29.1
HASH := $(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.run-$(HASH)
STAMP := $(VENV)/.test-$(HASH)
export DVC_NO_ANALYTICS := 1
SHELL := /bin/bash
DOCS := README.md $(wildcard docs/*.md)
.SHELLFLAGS := -o pipefail -c
# pip warns once per configured-but-absent local index on some machines; keep real messages only
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location .* is ignored' || true; }

.PHONY: run test test-fast lint fmt docs bench gpu-check venv browser clean lock

venv: $(STAMP)

# what `dvc repro` needs: torch (from this machine's disk where pip finds it there) and the package; and the serve
# extra (fastapi, uvicorn: small), so that the README's commands after `make run` all work
$(RUN_STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) $(TORCH) $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[serve]' $(QUIET_PIP)
	rm -f $(VENV)/.run-* $(VENV)/.test-*
	touch $@

# and for the tests: the serve and sweep extras, the test tools
$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[test]' $(QUIET_PIP)
	touch $@

run: $(RUN_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro
	@echo "make run: done; open reports/report.html. In a new shell, first: . .venv/bin/activate"

# The report test renders reports/report.html in a real headless browser: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# ruff (configured in pyproject.toml): lint and format check; `make fmt` fixes what it can and formats.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cog --check -p "import sys; sys.path[:0] = ['src', '.']" $(DOCS) || { echo "a generated section is stale: make docs"; exit 1; }

# The figures of README.md and docs/ are generated from the committed results and benchmark tables (study/docs.py)
docs: $(STAMP)
	$(BIN)/python -c "import sys; sys.path[:0] = ['src', '.']; from study.docs import params_comments as c; from pathlib import Path; p = Path('params.yaml'); p.write_text(c(p.read_text()))"
	$(BIN)/cog -r -p "import sys; sys.path[:0] = ['src', '.']" $(DOCS)

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) browser lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# The developer's tier: params, models, losses, metrics, stage CLIs and one tiny real `dvc repro` (< 2 min here).
test-fast: $(STAMP) lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.train_speed

# Re-resolve every dependency in a throwaway venv (newest versions pyproject.toml allows) and pin them all.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check $(TORCH) $(QUIET_PIP)
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' $(QUIET_PIP)
	{ sed -n '1,2p' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^mnist-gan'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .venv-lock

clean:
	rm -rf $(VENV)

# On a machine with a GPU: speed, a full default run and its metrics, determinism and export (benchmarks/gpu_check.py)
gpu-check: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro fetch
	$(BIN)/python -m benchmarks.gpu_check --out results/gpu_check
