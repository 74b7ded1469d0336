#!/usr/bin/env bash
# A/B of the DNS check on the fast path (issue "Domains for both ends"): the
# bulk-path cost of flowtap's programs as built, of the same programs with the
# fast path's "source port 53" test removed (the cost before DNS capture), and
# of an empty program, all attached to one throwaway cgroup at once so they see
# the same iperf3 packets over loopback. Prints ns/packet and the ratios to the
# empty program per repetition. Needs root; restores kernel.bpf_stats_enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${REPS:-5}"; secs="${SECS:-3}"
out=build/ab; mkdir -p "$out"
cflags=(-g -O2 -target bpf -D__TARGET_ARCH_x86 -I/usr/include/"$(gcc -print-multiarch)" -Ibpf)
clang "${cflags[@]}" -c bpf/flowtap.bpf.c -o "$out/with-dns.o"
# the variant: the fast path without its port-53 test
python3 - <<'PY'
s = open('bpf/flowtap.bpf.c').read()
old = """	if (l4[0] == 0 && l4[1] == L4_DNS_PORT)
		return 0;
"""
assert old in s, 'fast-path DNS test not found'
open('build/ab/no-dns.bpf.c', 'w').write(s.replace(old, ''))
PY
clang "${cflags[@]}" -c "$out/no-dns.bpf.c" -o "$out/no-dns.o"
clang "${cflags[@]}" -c bench/empty.bpf.c -o "$out/empty.o"
cp "$out/empty.o" "$out/lead.o"

cg2="$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)"
cg="$cg2/flowtap-ab-$$"; pin=/sys/fs/bpf/flowtap-ab-$$
old_stats="$(sysctl -n kernel.bpf_stats_enabled)"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cleanup() {
  for p in "$pin"/*/*; do [[ -e $p ]] && bpftool cgroup detach "$cg" "$(basename "$p" | sed 's/.*_//')" pinned "$p" 2>/dev/null || true; done
  rm -rf "$pin"; kill "${srv:-0}" 2>/dev/null || true; rmdir "$cg" 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$old_stats"
}
trap cleanup EXIT
mkdir -p "$cg" "$pin"
# The first program attached runs first and pays ~10 ns more (cold path), so
# an unmeasured empty "lead" program goes first; the order of the measured
# three is rotated by re-attaching per repetition.
for v in lead empty no-dns with-dns; do
  mkdir -p "$pin/$v"
  bpftool prog loadall "$out/$v.o" "$pin/$v" type cgroup/skb
  for hook in ingress egress; do
    prog="$(ls "$pin/$v" | grep "_$hook\$")"
    bpftool cgroup attach "$cg" "$hook" pinned "$pin/$v/$prog" multi
  done
done
iperf3 -s -B 127.0.0.1 -p 5299 >/dev/null 2>&1 & srv=$!
sleep 0.5
# bpftool prints run_time_ns/run_cnt only once they are non-zero
stats() { local s; s="$(bpftool prog show pinned "$1" | sed -n 's/.*run_time_ns \([0-9]*\) run_cnt \([0-9]*\).*/\1 \2/p')"; echo "${s:-0 0}"; }
printf 'rep  empty_ns  no_dns_ns  with_dns_ns  no_dns/empty  with_dns/empty\n'
order=(empty no-dns with-dns)
for r in $(seq 1 "$reps"); do
  # rotate: detach and re-attach the measured three in this repetition's order
  for v in "${order[@]}"; do for p in "$pin/$v"/*; do bpftool cgroup detach "$cg" "$(basename "$p" | sed 's/.*_//')" pinned "$p"; done; done
  for v in "${order[@]}"; do for p in "$pin/$v"/*; do bpftool cgroup attach "$cg" "$(basename "$p" | sed 's/.*_//')" pinned "$p" multi; done; done
  order=("${order[@]:1}" "${order[0]}")
  declare -A t0=() c0=()
  sysctl -qw kernel.bpf_stats_enabled=1
  for v in empty no-dns with-dns; do for p in "$pin/$v"/*; do read -r t c < <(stats "$p"); t0[$p]=$t; c0[$p]=$c; done; done
  sh -c "echo \$\$ > $cg/cgroup.procs; exec iperf3 -c 127.0.0.1 -p 5299 -t $secs" >/dev/null
  declare -A ns=()
  for v in empty no-dns with-dns; do
    tt=0; cc=0
    for p in "$pin/$v"/*; do read -r t c < <(stats "$p"); tt=$((tt + t - t0[$p])); cc=$((cc + c - c0[$p])); done
    ns[$v]=$(python3 -c "print(f'{$tt/$cc:.1f}')")
  done
  sysctl -qw kernel.bpf_stats_enabled=0
  python3 -c "e,a,b=${ns[empty]},${ns[no-dns]},${ns[with-dns]};print(f'$r    {e:8.1f}  {a:9.1f}  {b:11.1f}  {a/e:12.3f}  {b/e:14.3f}')"
done
