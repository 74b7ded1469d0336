#!/usr/bin/env bash
# Builds VictoriaLogs (the log store the end-to-end query test and the
# screenshot use) from Go modules, unless the build for this version is
# cached. Prints the binary's path on stdout.
#
#   FLOWTAP_VICTORIALOGS=/path/to/victoria-logs   use that binary instead; nothing is built.
set -euo pipefail
version="v1.52.2"
module="github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"

if [[ -n "${FLOWTAP_VICTORIALOGS:-}" ]]; then
  [[ -x "$FLOWTAP_VICTORIALOGS" ]] || { echo "FLOWTAP_VICTORIALOGS=$FLOWTAP_VICTORIALOGS is not an executable file" >&2; exit 2; }
  echo "$FLOWTAP_VICTORIALOGS"; exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap/victorialogs-$version"
bin="$cache/victoria-logs"
if [[ ! -x "$bin" ]]; then
  command -v go >/dev/null || { echo "go is required to build VictoriaLogs (or set FLOWTAP_VICTORIALOGS)" >&2; exit 1; }
  echo "building VictoriaLogs $version (first time only, under a minute)" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # go install into a private GOBIN, then one rename: a concurrent run either
  # sees no binary (and builds too) or a whole one.
  GOBIN="$work" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' "$module@$version" >&2
  mkdir -p "$cache"
  cp "$work/victoria-logs" "$bin.tmp.$$"
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
