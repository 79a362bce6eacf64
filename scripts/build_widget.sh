#!/usr/bin/env bash
# Builds the widget bundle (widget/ -> accelerate_lab/static/, git-ignored) for the lab and the tests.
# npm packages are installed once per package-lock.json into a cache outside the repo and linked in
# as widget/node_modules; the bundle is rebuilt only when its inputs (TypeScript, CSS, the WGSL of
# shaders/, the build script, the lock file) changed. Also installs Python Playwright's package when
# the venv (first argument) lacks it; Playwright drives the system Chromium, never its own download.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
CACHE="${ACCELERATE_LAB_CACHE:-$HOME/.cache/accelerate_lab}"

lock_hash=$(sha256sum widget/package-lock.json | cut -c1-16)
# the folder must be called node_modules: Node finds a package's siblings by that name
modules="$CACHE/npm-$lock_hash/node_modules"
if [[ ! -f "$modules/.installed" ]]; then
  echo "build_widget: installing npm packages into $modules"
  work=$(mktemp -d)
  cp widget/package.json widget/package-lock.json "$work/"
  # no install scripts: onnxruntime-node's (pulled in by @huggingface/transformers) downloads from the
  # internet and fails offline; nothing here needs one (esbuild finds its platform binary without it)
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  rm -rf "$CACHE/npm-$lock_hash"
  mkdir -p "$CACHE/npm-$lock_hash"
  mv "$work/node_modules" "$modules"
  rm -rf "$work"
  touch "$modules/.installed"
fi
if [[ "$(readlink widget/node_modules 2>/dev/null)" != "$modules" ]]; then
  rm -rf widget/node_modules
  ln -s "$modules" widget/node_modules
fi

stamp=accelerate_lab/static/.inputs
inputs=$(find widget/src -type f | sort | xargs cat widget/package-lock.json widget/build.mjs widget/tsconfig.json shaders/*.wgsl | sha256sum | cut -c1-32)
if [[ ! -f accelerate_lab/static/browser_device.js || "$(cat "$stamp" 2>/dev/null)" != "$inputs" ]]; then
  echo "build_widget: type-checking and bundling widget/"
  (cd widget && node_modules/.bin/tsc --noEmit -p . && node build.mjs)
  echo "$inputs" > "$stamp"
fi

if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c "import playwright" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "playwright>=1.45"
fi
