#!/usr/bin/env bash
# Generates the typed ONNX decoder (engine/src/io/onnx-proto.js and .d.ts) from engine/src/io/onnx.proto with
# protobufjs-cli. The generated files are committed; test/unit/loaders.test.ts checks that they are current.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-engine/src/io}
npx pbjs --target static-module --wrap commonjs --no-verify --no-delimited --no-service \
  --force-long --out "$out/onnx-proto.js" engine/src/io/onnx.proto
npx pbts --no-comments --out "$out/onnx-proto.d.ts" "$out/onnx-proto.js"
