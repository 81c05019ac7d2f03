#!/usr/bin/env bash
# Generates the reference fixtures that Python computes (float64, with Debian's PyTorch and the reference sources):
#   zoo  test/zoo/make_fixtures.py: reduced torchvision 0.14 models exported to ONNX, with plain-gradient and
#        Zennit 0.5.1 EpsilonPlusFlat references                                   → .zoo-cache/fixtures
#   crp  test/crp/make_fixtures.py: zennit-crp's conditional relevance on a small ResNet-style CNN → .zoo-cache/crp
#   composite  test/composite/make_fixtures.py: composite files (base, layerMap, nameMap, firstLayer) translated into
#        Zennit 0.5.1 composites on a small CNN, with Gradient / SmoothGrad / IntegratedGradients → .zoo-cache/composite
#   analysis  test/analysis/make_fixtures.py: zennit-crp's FeatureVisualization (RelMax, ActMax, RelStats, ActStats) over
#        a synthetic labelled shape data set (ImageFolder tree + data.npz) for a small CNN trained on it → .zoo-cache/analysis
#
#   scripts/reference-fixtures.sh [SET [OUT_DIR]]     (no SET: every set, into its default folder)
#
# Needs Debian's python3-torch, python3-torchvision, python3-onnx, python3-numpy (installed here with apt-get when
# missing and running as root) and the sources in ../shared/reference (override: ZENNIT_SRC, CRP_SRC).
# Runs Debian's /usr/bin/python3 (override: PYTHON), not whatever python3 is first on PATH.
# Cached: a set is skipped when OUT_DIR/.stamp holds the sha256 of its generator's sources.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
ZENNIT_SRC="${ZENNIT_SRC:-$ROOT/../shared/reference/zennit-0.5.1/src}"
CRP_SRC="${CRP_SRC:-$ROOT/../shared/reference/zennit-crp}"
log() { echo "[reference-fixtures] $*" >&2; }
START=$(date +%s)

ensure_python() {
  if ! "$PY" -c 'import torch, torchvision, onnx, numpy, tqdm' 2>/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      log "$PY cannot import torch/torchvision/onnx/numpy/tqdm; as root: apt-get install python3-torch python3-torchvision python3-onnx python3-numpy python3-pil python3-tqdm"
      exit 1
    fi
    log "installing Debian's PyTorch: apt-get update; apt-get install python3-torch python3-torchvision python3-onnx python3-numpy python3-pil python3-tqdm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q python3-torch python3-torchvision python3-onnx python3-numpy python3-pil python3-tqdm >&2
    log "installed in $(( $(date +%s) - START ))s"
  fi
  for src in "$ZENNIT_SRC/zennit/__init__.py" "$CRP_SRC/crp/attribution.py"; do
    if [ ! -f "$src" ]; then
      log "reference sources not found: $src (set ZENNIT_SRC or CRP_SRC)"
      exit 1
    fi
  done
}

# generate SET OUT_DIR GENERATOR [OTHER SOURCES…]
generate() {
  local set="$1" out="$2" gen="$3"
  local hash
  hash="$(cat "${@:3}" | sha256sum | cut -d' ' -f1)"
  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$hash" ]; then
    log "$set up to date: $out (stamp $hash)"
    return
  fi
  ensure_python
  local pythonpath
  pythonpath="$(cd "$ZENNIT_SRC" && pwd):$(cd "$CRP_SRC" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
  # drop earlier outputs of the generator's own cases only (never the whole OUT_DIR)
  mkdir -p "$out"
  rm -f "$out/.stamp"
  while read -r case; do
    [ -n "$case" ] && rm -rf "${out:?}/$case"
  done < <(PYTHONPATH="$pythonpath" "$PY" "$gen" "$out" --list)
  log "$set: generating into $out with $PY ($("$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'))"
  local t0
  t0=$(date +%s)
  PYTHONPATH="$pythonpath" "$PY" "$gen" "$out"
  echo "$hash" > "$out/.stamp"
  log "$set: generated $(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l) cases, $(du -sh "$out" | cut -f1) in $(( $(date +%s) - t0 ))s"
}

SET="${1:-all}"
case "$SET" in
  zoo | all) generate zoo "${2:-$ROOT/.zoo-cache/fixtures}" "$ROOT/test/zoo/make_fixtures.py" "$ROOT/test/zoo/zoo_canonizers.py" ;;&
  crp | all) generate crp "${2:-$ROOT/.zoo-cache/crp}" "$ROOT/test/crp/make_fixtures.py" ;;&
  composite | all) generate composite "${2:-$ROOT/.zoo-cache/composite}" "$ROOT/test/composite/make_fixtures.py" ;;&
  analysis | all) generate analysis "${2:-$ROOT/.zoo-cache/analysis}" "$ROOT/test/analysis/make_fixtures.py" ;;&
  zoo | crp | composite | analysis | all) ;;
  *) log "unknown set \"$SET\" (zoo, crp, composite, analysis, or none for all)"; exit 2 ;;
esac
