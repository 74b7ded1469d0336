#!/usr/bin/env bash
# Installs the tools the Kubernetes manifest test uses, unless cached, and
# prints the folder that holds them (tools/kubetools):
#   kubernetes-validate  validates manifests against the Kubernetes JSON
#                        schemas it ships (PyPI package kubernetes-validate,
#                        schemas for Kubernetes 1.x up to its own version; no
#                        download at run time), in a Python venv
#   python               that venv's Python (has PyYAML: the test reads the
#                        manifests with it)
#   kustomize            renders deploy/kubernetes/kustomization.yaml (Go
#                        module sigs.k8s.io/kustomize/kustomize/v5)
# Cached in ~/.cache/flowtap/ like the collector, so fresh clones on the same
# machine reuse them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
validate_version=1.37.0
kustomize_version=v5.8.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap"
venv="$cache/kubernetes-validate-$validate_version"
kustomize_dir="$cache/kustomize-$kustomize_version"
out="$root/tools/kubetools"

if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
  command -v python3 >/dev/null || { echo "python3 is required (apt-get install python3 python3-venv)" >&2; exit 1; }
  echo "installing kubernetes-validate $validate_version" >&2
  # pip writes the script last, so a broken install is redone next time.
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$validate_version" >&2
fi
if [[ ! -x "$kustomize_dir/kustomize" ]]; then
  command -v go >/dev/null || { echo "go is required to install kustomize" >&2; exit 1; }
  echo "installing kustomize $kustomize_version" >&2
  GOBIN="$kustomize_dir" go install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version" >&2
fi
mkdir -p "$out"
ln -sfn "$venv/bin/kubernetes-validate" "$out/kubernetes-validate"
ln -sfn "$venv/bin/python" "$out/python"
ln -sfn "$kustomize_dir/kustomize" "$out/kustomize"
echo "$out"
