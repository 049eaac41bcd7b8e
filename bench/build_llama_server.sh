#!/usr/bin/env bash
# Build llama.cpp's llama-server, llama-bench and llama-quantize from the sources vendored in
# the llama-cpp-python sdist that serverroom pins, so both servers run the very same llama.cpp.
#   bash bench/build_llama_server.sh   ->   bench/_build/{llama-server,llama-bench,llama-quantize}
# The last line printed is the llama-server path; the other two lie next to it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/_build"
version="$(python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
targets=(llama-server llama-bench llama-quantize)
mkdir -p "$out"
missing=()
for target in "${targets[@]}"; do
  [ -x "$out/$target" ] || missing+=("$target")
done
if [ "${#missing[@]}" -gt 0 ]; then
  cd "$out"
  if [ ! -d "llama_cpp_python-$version" ]; then
    python -m pip download --no-deps --no-binary :all: -q -d . "llama-cpp-python==$version"
    tar xzf "llama_cpp_python-$version.tar.gz"
  fi
  src="$out/llama_cpp_python-$version/vendor/llama.cpp"
  cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$out/build" --target "${missing[@]}" -j "$(nproc)"
  for target in "${missing[@]}"; do
    cp "$out/build/bin/$target" "$out/$target"
  done
fi
echo "$out/llama-server"
