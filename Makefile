# The two commands of the README: `make lab` (set up, open JupyterLab on the tutorials) and
# `make test` (set up, then every test tier, the tutorials, ruff and mypy). Both are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := dev,gpu,api,lab,servers,browser,models,reference,llm,docs
export XDG_RUNTIME_DIR ?= /tmp
export HF_HUB_OFFLINE := 1

.PHONY: setup lab test lint typecheck docs pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[$(EXTRAS)]"
	touch $@

# Optional parts register their own set-up scripts; each is idempotent and cheap when done.
SETUP_SCRIPTS := $(wildcard scripts/install_model_weights.sh scripts/install_llm_weights.sh \
	scripts/setup_servers.sh scripts/setup_llama_server.sh scripts/setup_vllm.sh scripts/build_widget.sh)

setup: $(VENV)/.installed
	bash scripts/setup_system.sh
	for script in $(SETUP_SCRIPTS); do bash $$script $(VENV) || exit 1; done

lab: setup
	$(BIN)/jupyter lab notebooks/00_tour.ipynb

lint: setup
	$(BIN)/ruff check accelerate_lab tests bench
	$(BIN)/ruff format --check accelerate_lab tests bench

typecheck: setup
	$(BIN)/mypy

# Every tier (gpu, browser, server, slow) runs: no marker is deselected here.
pytest: setup
	$(BIN)/pytest -p no:cacheprovider --timeout 900 --doctest-modules accelerate_lab tests --nbval-lax notebooks

# The documentation in strict mode: a broken link or cross-reference fails (site in build/site).
docs: setup
	$(BIN)/mkdocs build --strict

test: lint typecheck docs pytest

bench: setup
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist
