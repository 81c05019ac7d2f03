#!/usr/bin/env bash
# Generates the model-zoo reference fixtures (test/zoo/make_fixtures.py: reduced torchvision 0.14 models exported to
# ONNX, with plain-gradient and Zennit 0.5.1 EpsilonPlusFlat references in float64) into OUT_DIR
# (default: .zoo-cache/fixtures in the repository root).
#
#   scripts/zoo-fixtures.sh [OUT_DIR]
#
# Needs Debian's python3-torch, python3-torchvision, python3-onnx, python3-numpy (installed here with apt-get when
# missing and running as root) and the Zennit sources in ../shared/reference/zennit-0.5.1/src (override: ZENNIT_SRC).
# Runs Debian's /usr/bin/python3 (override: PYTHON), not whatever python3 is first on PATH.
# Cached: skipped when OUT_DIR/.stamp holds the sha256 of the generator's sources (test/zoo/*.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/.zoo-cache/fixtures}"
PY="${PYTHON:-/usr/bin/python3}"
ZENNIT_SRC="${ZENNIT_SRC:-$ROOT/../shared/reference/zennit-0.5.1/src}"
GEN="$ROOT/test/zoo/make_fixtures.py"
SOURCES=("$GEN" "$ROOT/test/zoo/zoo_canonizers.py")
log() { echo "[zoo-fixtures] $*" >&2; }
START=$(date +%s)

HASH="$(cat "${SOURCES[@]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$HASH" ]; then
  log "up to date: $OUT (stamp $HASH)"
  exit 0
fi

if ! "$PY" -c 'import torch, torchvision, onnx, numpy' 2>/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "$PY cannot import torch/torchvision/onnx/numpy; as root: apt-get install python3-torch python3-torchvision python3-onnx python3-numpy python3-pil"
    exit 1
  fi
  log "installing Debian's PyTorch: apt-get update; apt-get install python3-torch python3-torchvision python3-onnx python3-numpy python3-pil"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q python3-torch python3-torchvision python3-onnx python3-numpy python3-pil >&2
  log "installed in $(( $(date +%s) - START ))s"
fi
if [ ! -f "$ZENNIT_SRC/zennit/__init__.py" ]; then
  log "Zennit sources not found in $ZENNIT_SRC (set ZENNIT_SRC)"
  exit 1
fi
ZENNIT_SRC="$(cd "$ZENNIT_SRC" && pwd)"

# drop earlier outputs of the generator's own cases only (never the whole OUT_DIR)
mkdir -p "$OUT"
rm -f "$OUT/.stamp"
while read -r CASE; do
  [ -n "$CASE" ] && rm -rf "${OUT:?}/$CASE"
done < <(PYTHONPATH="$ZENNIT_SRC${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$GEN" "$OUT" --list)

log "generating into $OUT with $PY ($("$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)')), Zennit from $ZENNIT_SRC"
T0=$(date +%s)
PYTHONPATH="$ZENNIT_SRC${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$GEN" "$OUT"
echo "$HASH" > "$OUT/.stamp"
log "generated $(find "$OUT" -mindepth 1 -maxdepth 1 -type d | wc -l) cases, $(du -sh "$OUT" | cut -f1) in $(( $(date +%s) - T0 ))s (total $(( $(date +%s) - START ))s)"
