#!/usr/bin/env bash
# Builds the engine's optional native kernels (engine/native: oneDNN convolutions, dense layers and the rules'
# elementwise passes) as a Node-API addon with npm's bundled node-gyp. Needs g++, Node's headers and oneDNN's
# (Debian's libdnnl-dev, installed here with apt-get when missing and running as root).
# Without them it says why and exits 0: the engine then runs the TF.js backend's own kernels, as before.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/engine/native"
OUT="$SRC/build/Release/relevance_native.node"
log() { echo "[build-native] $*" >&2; }

if [ -f "$OUT" ] && [ "$OUT" -nt "$SRC/relevance_native.cc" ] && [ "$OUT" -nt "$SRC/binding.gyp" ] \
  && [ "$OUT" -nt "$0" ] && ls "$(dirname "$OUT")"/libdnnl.so* >/dev/null 2>&1; then
  exit 0
fi

DNNL_HEADER=/usr/include/oneapi/dnnl/dnnl.hpp
if [ ! -f "$DNNL_HEADER" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  log "apt-get install libdnnl-dev"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q libdnnl-dev >&2 || { apt-get update -q >&2 && apt-get install -y -q libdnnl-dev >&2; }
fi
if [ ! -f "$DNNL_HEADER" ]; then
  log "not built: oneDNN's headers are missing (Debian: apt-get install libdnnl-dev); the engine uses the backend's own kernels"
  exit 0
fi

NODE_GYP="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
NODE_DIR="$(node -p 'require("path").resolve(process.execPath, "../..")')"
if [ ! -f "$NODE_GYP" ] || [ ! -f "$NODE_DIR/include/node/node_api.h" ]; then
  log "not built: needs npm's bundled node-gyp ($NODE_GYP) and Node's headers ($NODE_DIR/include/node)"
  exit 0
fi
if (cd "$SRC" && node "$NODE_GYP" rebuild --loglevel=warn --nodedir="$NODE_DIR" >&2); then
  log "built $OUT"
  # the libraries it needs beyond glibc and libstdc++, beside it: the addon looks there first (an RPATH of $ORIGIN,
  # which also serves oneDNN's own dependencies), so the .vsix runs native kernels where they are not installed
  for lib in $(ldd "$OUT" | awk '/libdnnl|libOpenCL|libgomp/ { print $3 }'); do
    cp -L "$lib" "$(dirname "$OUT")/$(basename "$lib")"
  done
  log "bundled beside it: $(cd "$(dirname "$OUT")" && ls lib*.so* | tr '\n' ' ')"
else
  log "not built: node-gyp failed (above); the engine uses the backend's own kernels"
fi
