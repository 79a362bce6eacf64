# Sourced by the set-up scripts that install a server into its own virtualenv in the cache, outside the repo.
# Each such venv is stamped with .installed when its install passed its checks; a stamped venv is kept.
CACHE="${ACCELERATE_LAB_CACHE:-$HOME/.cache/accelerate_lab}"
PYTHON="${PYTHON:-python3}"

# venv_ready DIR: whether DIR holds a finished install
venv_ready() { [[ -f "$1/.installed" ]]; }

# fresh_venv DIR: an empty virtualenv at DIR (whatever a failed earlier attempt left there is removed)
fresh_venv() {
  rm -rf "$1"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$1"
}

# venv_pip DIR ARGS...: pip install ARGS into DIR, quietly (pip's "Location" warnings dropped)
venv_pip() {
  "$1/bin/pip" install --quiet --disable-pip-version-check "${@:2}" 2>&1 | grep -v "^WARNING: Location" || true
}
