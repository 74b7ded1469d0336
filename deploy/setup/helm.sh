#!/usr/bin/env bash
# Builds helm from its Go module (helm.sh/helm/v4/cmd/helm), unless cached,
# and prints the binary's path: the Helm chart test
# (test/integration/helm.test.ts) lints and renders deploy/helm/flowtap with it.
# Cached in ~/.cache/flowtap/helm-<version>/ like the collector, so fresh
# clones on the same machine reuse it.
#
#   FLOWTAP_HELM=/path/to/helm   use that binary instead (Helm 4); nothing is built.
set -euo pipefail
version=v4.3.2

if [[ -n "${FLOWTAP_HELM:-}" ]]; then
  [[ -x "$FLOWTAP_HELM" ]] || { echo "FLOWTAP_HELM=$FLOWTAP_HELM is not an executable file" >&2; exit 2; }
  echo "$FLOWTAP_HELM"; exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap/helm-$version"
if [[ ! -x "$cache/helm" ]]; then
  command -v go >/dev/null || { echo "go is required to build helm (or set FLOWTAP_HELM)" >&2; exit 1; }
  echo "building helm $version (first time only, a few minutes)" >&2
  # helm's version is set at link time; without it `helm version` says
  # nothing useful. go install writes the binary last, so a broken build is
  # redone next time.
  GOBIN="$cache" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
    "helm.sh/helm/v4/cmd/helm@$version" >&2
fi
echo "$cache/helm"
