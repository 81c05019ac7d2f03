#!/usr/bin/env bash
# Installs code-server 4.96.4 (VS Code 1.96.4) offline-safe, for the end-to-end tests.
# Its npm postinstall refuses root and fetches from GitHub, so it is skipped and its work done here by hand
# (the steps of the end-to-end issue). The result is cached: a second run returns at once.
#   scripts/install-code-server.sh            installs into $RELEVANCE_LENS_E2E_CACHE (default .e2e-cache/)
# Prints the path of code-server's entry script on its last line.
set -euo pipefail

VERSION=4.96.4
PROXY_AGENT_VERSION=0.27.0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${RELEVANCE_LENS_E2E_CACHE:-$ROOT/.e2e-cache}"
TOOLS="$CACHE/code-server-$VERSION"
CS="$TOOLS/node_modules/code-server"
MARKER="$TOOLS/.installed"

log() { echo "[install-code-server] $*" >&2; }

# Debian packages: kerberos headers for the kerberos addon, ripgrep for search, Chromium to drive the workbench.
need_apt=()
for pkg in libkrb5-dev ripgrep chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "install-code-server: needs the Debian packages ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need_apt[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${need_apt[@]}" >&2; }
fi

if [ -f "$MARKER" ] && [ -f "$CS/out/node/entry.js" ]; then
  echo "$CS/out/node/entry.js"
  exit 0
fi

NODE_GYP="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || { echo "install-code-server: npm's bundled node-gyp not found at $NODE_GYP" >&2; exit 1; }
gyp() { (cd "$1" && node "$NODE_GYP" rebuild --nodedir=/usr >&2); }

rm -rf "$TOOLS"
mkdir -p "$TOOLS"
cd "$TOOLS"
echo '{"private": true}' > package.json

log "npm install code-server@$VERSION (scripts skipped)"
npm install --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$VERSION" >&2

log "argon2 native addon"
(cd node_modules/argon2 && node ../@mapbox/node-pre-gyp/bin/node-pre-gyp install --fallback-to-build --nodedir=/usr >&2)

log "VS Code's own dependencies"
cd "$CS/lib/vscode"
# The shrinkwrap takes @vscode/proxy-agent from a git URL (unreachable); the same version is on the registry.
node -e '
  const fs = require("fs");
  const file = "npm-shrinkwrap.json";
  const lock = JSON.parse(fs.readFileSync(file, "utf8"));
  const entry = lock.packages["node_modules/@vscode/proxy-agent"];
  const v = process.argv[1];
  if (!entry || entry.version !== v) throw new Error("unexpected @vscode/proxy-agent entry in " + file);
  entry.resolved = `https://registry.npmjs.org/@vscode/proxy-agent/-/proxy-agent-${v}.tgz`;
  delete entry.integrity;
  fs.writeFileSync(file, JSON.stringify(lock, null, 2));
' "$PROXY_AGENT_VERSION"
npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2
for addon in kerberos node-pty @parcel/watcher @vscode/spdlog native-watchdog @vscode/deviceid; do
  log "build $addon"
  gyp "node_modules/$addon"
done
(cd node_modules/node-pty && node scripts/post-install.js >&2)
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sf /usr/bin/rg node_modules/@vscode/ripgrep/bin/rg
rm -rf node_modules.asar
ln -s node_modules node_modules.asar

log "built-in extensions' dependencies"
(cd extensions && npm install --omit=dev --no-audit --no-fund --loglevel=error >&2)

touch "$MARKER"
log "done"
echo "$CS/out/node/entry.js"
