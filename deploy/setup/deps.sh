#!/usr/bin/env bash
# Installs the Debian packages flowtap builds and tests with, when missing.
set -euo pipefail
pkgs=(clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool iproute2 nftables
      tcpdump tshark dnsmasq-base dnsutils libcap2-bin make g++ pkg-config
      golang-go npm python3 python3-venv
      iperf3 bpftrace conntrack)  # the last three: make bench (bench/)
missing=()
for p in "${pkgs[@]}"; do
  # golang-go / npm only when the command is absent (the machine may have its own)
  case "$p" in
    golang-go) command -v go >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  [[ $(id -u) -eq 0 ]] || { echo "need root to apt-get install ${missing[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # tshark asks whether non-root users may capture; answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
