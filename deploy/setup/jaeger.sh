#!/usr/bin/env bash
# Builds Jaeger (all-in-one: collector with an OTLP receiver, in-memory
# storage, query API) from Go modules in a throwaway tools module, unless the
# same version is cached. Prints the binary's path on stdout. The end-to-end
# span test runs it as the trace store flowtap's spans land in.
#
#   FLOWTAP_JAEGER=/path/to/jaeger   use that binary instead; nothing is built.
set -euo pipefail
version="v1.75.0"

if [[ -n "${FLOWTAP_JAEGER:-}" ]]; then
  [[ -x "$FLOWTAP_JAEGER" ]] || { echo "FLOWTAP_JAEGER=$FLOWTAP_JAEGER is not an executable file" >&2; exit 2; }
  echo "$FLOWTAP_JAEGER"; exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap/jaeger-$version"
if [[ ! -x "$cache/jaeger" ]]; then
  command -v go >/dev/null || { echo "go is required to build Jaeger (or set FLOWTAP_JAEGER)" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "building Jaeger $version (first time only, about 4 minutes)" >&2
  (
    cd "$work"
    go mod init flowtap-jaeger-tools >&2
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$version" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o jaeger github.com/jaegertracing/jaeger/cmd/jaeger >&2
  )
  mkdir -p "$cache"
  # Through a rename: a Jaeger started from an older copy may be running.
  cp "$work/jaeger" "$cache/jaeger.tmp"
  mv "$cache/jaeger.tmp" "$cache/jaeger"
fi
echo "$cache/jaeger"
