#!/usr/bin/env bash
# Build llama.cpp's llama-server from the sources vendored in the llama-cpp-python sdist that
# serverroom pins, so both servers run the very same llama.cpp.
#   bash bench/build_llama_server.sh   ->   bench/_build/llama-server
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/_build"
version="$(python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
mkdir -p "$out"
if [ ! -x "$out/llama-server" ]; then
  cd "$out"
  if [ ! -d "llama_cpp_python-$version" ]; then
    python -m pip download --no-deps --no-binary :all: -q -d . "llama-cpp-python==$version"
    tar xzf "llama_cpp_python-$version.tar.gz"
  fi
  src="$out/llama_cpp_python-$version/vendor/llama.cpp"
  cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$out/build" --target llama-server -j "$(nproc)"
  cp "$out/build/bin/llama-server" "$out/llama-server"
fi
echo "$out/llama-server"
