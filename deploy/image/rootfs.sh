#!/usr/bin/env bash
# Assembles the root filesystem of flowtap's image (deploy/Dockerfile's
# runtime stage) in DEST, from the build stage it runs in:
#
#   rootfs.sh DEST PATH...
#
# Each PATH is copied to the same path under DEST (a directory with all it
# holds); each regular file among them that is dynamically linked also brings
# every shared library it loads, as ldd resolves them here (the dynamic
# loader included). Paths are copied as the loader looks them up: a symlinked
# directory (/lib -> usr/lib) or file (libbpf.so.1 -> libbpf.so.1.1.0) stays a
# symlink, and what it points to is copied too.
#
# Then the rest of a distroless-style root: an /etc naming root and one
# unprivileged user and group, flowtap (65532), for tools that look names up;
# an empty machine-id;
# name resolution from files then DNS (glibc's own, no NSS modules needed);
# the empty directories a container runtime mounts over (/proc, /sys, /dev)
# and a /tmp. No shell, no package manager, no other executable.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 DEST PATH..." >&2; exit 2; }
dest="$1"
shift
mkdir -p "$dest"

# copy_path PATH [whole]: PATH under $dest as it is here, its parent directories
# first; a directory with everything in it when "whole", else empty.
copy_path() {
  local path="$1" whole="${2:-}" parent target
  if [[ -e "$dest$path" || -L "$dest$path" ]]; then
    [[ -n "$whole" && -d "$path" && ! -L "$path" ]] && cp -a "$path/." "$dest$path/"
    return 0
  fi
  parent="$(dirname "$path")"
  [[ "$parent" == / ]] || copy_path "$parent"
  if [[ -L "$path" ]]; then
    target="$(readlink "$path")"
    ln -s "$target" "$dest$path"
    [[ "$target" == /* ]] || target="$parent/$target"
    copy_path "$(realpath --canonicalize-missing --no-symlinks "$target")" "$whole"
  elif [[ -d "$path" && -n "$whole" ]]; then
    cp -a "$path" "$dest$path"
  elif [[ -d "$path" ]]; then
    mkdir "$dest$path"
    chmod --reference="$path" "$dest$path"
  else
    cp -a "$path" "$dest$path"
  fi
}

# The shared libraries ldd lists for FILE with a path ("libz.so.1 => /lib/...",
# "/lib64/ld-linux-x86-64.so.2"); nothing for a file that is not dynamically linked.
libraries_of() {
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true
}

for path in "$@"; do
  [[ "$path" == /* && -e "$path" ]] || { echo "$0: $path: not an absolute path to something that exists" >&2; exit 2; }
  copy_path "$path" whole
  if [[ -f "$path" && ! -L "$path" ]]; then
    while read -r lib; do
      [[ -n "$lib" ]] && copy_path "$lib"
    done < <(libraries_of "$path")
  fi
done

mkdir -p "$dest/etc"
cat > "$dest/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
flowtap:x:65532:65532:flowtap:/nonexistent:/sbin/nologin
PASSWD
cat > "$dest/etc/group" <<'GROUP'
root:x:0:
flowtap:x:65532:
GROUP
# Empty, as in Debian's images: the OpenTelemetry host detector reads it for
# host.id (and warns when there is no such file); mount the host's over it
# (read-only) for the node's id.
: > "$dest/etc/machine-id"
cat > "$dest/etc/nsswitch.conf" <<'NSS'
passwd: files
group: files
hosts: files dns
NSS
for dir in proc sys dev; do mkdir -p "$dest/$dir"; done
install -d -m 1777 "$dest/tmp"
