#!/usr/bin/env bash
# Builds deploy/Dockerfile with podman from the locally made build image
# (deploy/image/base.sh prints it first: the Dockerfile's BUILD_IMAGE), as
# `make image-test` does; no registry but Debian's and npm's is needed.
# Progress goes to stderr; stdout gets one JSON line:
#   {"image":...,"id":...,"sizeBytes":...,"baseSeconds":...,"buildSeconds":...}
# (sizeBytes: podman image inspect's Size, the uncompressed image). podman's
# full output is in build/image-build.log.
#
#   deploy/image/build.sh [image name]     default localhost/flowtap:dev
#
# --isolation=chroot: RUN steps run without a container runtime (podman
# cannot run containers on every machine this is built on).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
image="${1:-localhost/flowtap:dev}"
[[ $# -le 1 ]] || { echo "usage: $0 [image name]" >&2; exit 2; }
say() { printf 'image: %s\n' "$*" >&2; }
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# A host behind a TLS-intercepting proxy trusts its CA through
# NODE_EXTRA_CA_CERTS; npm inside the build needs it too (RUN steps only).
ca_args=()
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]]; then
  [[ -r "$NODE_EXTRA_CA_CERTS" ]] || { say "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS is not a readable file"; exit 2; }
  ca_args=(-v "$NODE_EXTRA_CA_CERTS:/run/build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt)
fi

t0="$(now)"
mapfile -t bases < <("$root/deploy/image/base.sh")
[[ ${#bases[@]} -eq 2 ]] || { say "deploy/image/base.sh printed ${#bases[@]} image names, expected 2"; exit 1; }
t1="$(now)"
say "bases ready in $(seconds "$t0" "$t1") s; building $image"
# The full output goes to a log; stderr gets the steps, and the log's end on failure.
mkdir -p "$root/build"
log="$root/build/image-build.log"
if ! podman build --isolation=chroot --pull=never "${ca_args[@]}" \
  --build-arg "BUILD_IMAGE=${bases[0]}" \
  -f "$root/deploy/Dockerfile" -t "$image" "$root" 2>&1 |
  tee "$log" | grep --line-buffered -E '^(\[[0-9]+/[0-9]+\] )?STEP [0-9]+/[0-9]+: (FROM|RUN|COPY)' >&2; then
  say "podman build failed; the end of $log:"
  tail -n 30 "$log" >&2
  exit 1
fi
t2="$(now)"
id="$(podman image inspect --format '{{.Id}}' "$image")"
size="$(podman image inspect --format '{{.Size}}' "$image")"
say "$image built in $(seconds "$t1" "$t2") s, size $((size / 1000000)) MB"
printf '{"image":"%s","id":"%s","sizeBytes":%s,"baseSeconds":%s,"buildSeconds":%s}\n' \
  "$image" "$id" "$size" "$(seconds "$t0" "$t1")" "$(seconds "$t1" "$t2")"
