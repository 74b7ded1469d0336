#!/usr/bin/env bash
# Builds the OpenTelemetry Collector described by deploy/otelcol-builder.yaml
# with the Collector Builder (ocb) from Go modules, unless a build for the same
# manifest is cached. Prints the binary's path on stdout.
#
#   FLOWTAP_OTELCOL=/path/to/otelcol   use that binary instead (otelcol,
#                                      otelcol-contrib, ...); nothing is built.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
manifest="$root/deploy/otelcol-builder.yaml"

if [[ -n "${FLOWTAP_OTELCOL:-}" ]]; then
  [[ -x "$FLOWTAP_OTELCOL" ]] || { echo "FLOWTAP_OTELCOL=$FLOWTAP_OTELCOL is not an executable file" >&2; exit 2; }
  echo "$FLOWTAP_OTELCOL"; exit 0
fi

hash="$(sha256sum "$manifest" | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap/otelcol-$hash"
local_bin="$root/tools/otelcol/otelcol-flowtap"
stamp="$root/tools/otelcol/.manifest-hash"

if [[ -x "$local_bin" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
  echo "$local_bin"; exit 0
fi
if [[ ! -x "$cache/otelcol-flowtap" ]]; then
  command -v go >/dev/null || { echo "go is required to build the collector (or set FLOWTAP_OTELCOL)" >&2; exit 1; }
  version="$(sed -n 's/^  version: *//p' "$manifest")"
  gobin="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap/ocb-$version"
  if [[ ! -x "$gobin/builder" ]]; then
    echo "installing the collector builder v$version" >&2
    GOBIN="$gobin" go install "go.opentelemetry.io/collector/cmd/builder@v$version" >&2
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  sed "s#output_path: .*#output_path: $work/out#" "$manifest" > "$work/manifest.yaml"
  echo "building the collector (first time only, a few minutes)" >&2
  # ocb generates the sources; the modules are resolved with `go get` + a
  # `-mod=mod` build instead of ocb's `go mod tidy`, because tidy also fetches
  # the *test* dependencies of every component, and a module proxy that mirrors
  # only what builds need (as on CI here) does not serve all of them.
  "$gobin/builder" --config "$work/manifest.yaml" --skip-get-modules --skip-compilation >&2
  (
    cd "$work/out"
    go mod init otelcol-flowtap >&2
    # The manifest's `replaces:` ("  - <module> => <module> <version>"); ocb
    # would write them into go.mod, which --skip-get-modules leaves to us.
    sed -n '/^replaces:/,/^[^ #]/s/^  - *\([^ ]*\) *=> *\([^ ]*\) *\([^ ]*\) *$/\1=\2@\3/p' "$manifest" |
      while read -r replace; do go mod edit -replace="$replace" >&2; done
    # shellcheck disable=SC2046
    go get $(awk '/gomod:/ {print $3 "@" $4}' "$manifest") "go.opentelemetry.io/collector/otelcol@v$version" >&2
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o otelcol-flowtap . >&2
  )
  mkdir -p "$cache"
  cp "$work/out/otelcol-flowtap" "$cache/otelcol-flowtap.tmp"
  mv "$cache/otelcol-flowtap.tmp" "$cache/otelcol-flowtap"
fi
mkdir -p "$(dirname "$local_bin")"
# Through a rename: a collector started from $local_bin may be running.
cp "$cache/otelcol-flowtap" "$local_bin.tmp"
mv "$local_bin.tmp" "$local_bin"
echo "$hash" > "$stamp"
echo "$local_bin"
