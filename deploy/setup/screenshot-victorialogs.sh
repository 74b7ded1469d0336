#!/usr/bin/env bash
# Makes docs/images/victorialogs.png: flowtap's records in VictoriaLogs' own web
# UI (vmui), from a real run. Needs root (flowtap attaches its programs to a
# throwaway cgroup) and a build (make build). Installs Debian's chromium when
# it is missing; builds VictoriaLogs with deploy/setup/victorialogs.sh. Needs
# dnsmasq (deploy/setup/deps.sh installs it for the tests).
#
#   deploy/setup/screenshot-victorialogs.sh [output.png]
#
# The traffic stays on loopback (127.0.0.0/8): DNS names from a local dnsmasq,
# TCP to local echo servers (see below). flowtap sends its records straight to
# VictoriaLogs over OTLP/HTTP.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/docs/images/victorialogs.png}"
node="$(cat "$root/tools/node-path" 2>/dev/null || command -v node)"
[[ $EUID -eq 0 ]] || { echo "run as root: flowtap attaches its programs to a cgroup" >&2; exit 2; }
[[ -f "$root/dist/cli.js" ]] || { echo "build first: make build" >&2; exit 2; }
if ! command -v chromium >/dev/null; then
  echo "installing chromium (Debian package) for the headless screenshot" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
fi
vl_bin="$("$root/deploy/setup/victorialogs.sh")"

work="$(mktemp -d)"
cgroup2="$(findmnt -t cgroup2 -n -o TARGET | head -1)"
[[ -n "$cgroup2" ]] || { echo "no cgroup v2 mount" >&2; exit 2; }
cg="$cgroup2/flowtap-screenshot-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -d "$cg" ]] && { for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill "$p" 2>/dev/null || true; done; sleep 0.2; rmdir "$cg" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port, from the kernel.
free_port() { "$node" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
vl_port="$(free_port)"; web_port="$(free_port)"; in_port="$(free_port)"

"$vl_bin" -storageDataPath="$work/vl" -httpListenAddr="127.0.0.1:$vl_port" -loggerLevel=WARN > "$work/vl.log" 2>&1 &
pids+=($!)
until curl -sf "http://127.0.0.1:$vl_port/health" >/dev/null; do sleep 0.1; done

mkdir "$cg"
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_BLRP_SCHEDULE_DELAY=200 \
OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=demo" \
  "$node" "$root/dist/cli.js" --cgroup "$cg" --metrics none \
  --endpoint "http://127.0.0.1:$vl_port/insert/opentelemetry/v1/logs" 2> "$work/flowtap.log" &
pids+=($!)
until grep -qs '"msg":"ready"' "$work/flowtap.log"; do
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/flowtap.log" >&2; exit 1; }
  sleep 0.1
done

# The traffic, all on loopback: a DNS server (dnsmasq) for a small zone, a TCP
# echo server for each name, and a client in the cgroup that resolves each name
# through it and connects (outgoing flows, named from the answers); and a
# server in the cgroup that a client outside connects to (incoming flows).
net="127.$((RANDOM % 200 + 20)).0"
cat > "$work/dnsmasq.conf" <<CONF
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=$net.53
port=53
local-ttl=300
user=root
pid-file=$work/dnsmasq.pid
host-record=www.shop.test,$net.2
host-record=api.shop.test,$net.3
host-record=db.shop.test,$net.4
CONF
dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" 2> "$work/dnsmasq.log" &
pids+=($!)
fixtures="$root/test/fixtures"
for n in 2 3 4; do
  "$node" "$fixtures/tcp-server.js" "$net.$n" "$web_port" > /dev/null &
  pids+=($!)
done
in_cg() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }
in_cg "$node" "$fixtures/tcp-server.js" 127.0.0.1 "$in_port" > /dev/null &
pids+=($!)
sleep 0.5
"$node" "$fixtures/tcp-client.js" 127.0.0.1 "$in_port" 3 > /dev/null
for name in api.shop.test www.shop.test api.shop.test db.shop.test www.shop.test www.shop.test; do
  in_cg "$node" "$fixtures/resolve-connect.js" "$net.53" "$name" 4 "$web_port" | grep -q '"ok":true' ||
    { echo "could not resolve and connect to $name" >&2; cat "$work/dnsmasq.log" >&2; exit 1; }
done
# 9 flows, a begin and an end record each: wait out flowtap's batch delay and
# VictoriaLogs' flush.
want=18
count=0
for _ in $(seq 100); do
  count="$(curl -s "http://127.0.0.1:$vl_port/select/logsql/query" --data-urlencode 'query=_time:1h | stats count() n' | sed -n 's/.*"n":"\([0-9]*\)".*/\1/p')"
  [[ "${count:-0}" -ge $want ]] && break
  sleep 0.2
done
echo "VictoriaLogs holds ${count:-0} records (expected $want)" >&2
[[ "${count:-0}" -eq $want ]] || { echo "not the records of every flow reached VictoriaLogs" >&2; cat "$work/flowtap.log" >&2; exit 1; }

query="${SCREENSHOT_QUERY:-*}"
url="http://127.0.0.1:$vl_port/select/vmui/#/?query=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$query")&g0.range_input=15m&view=${SCREENSHOT_VIEW:-json}"
mkdir -p "$(dirname "$out")"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1250 \
  --virtual-time-budget=8000 --user-data-dir="$work/chromium" --screenshot="$out" "$url" >&2 2>"$work/chromium.log" || { cat "$work/chromium.log" >&2; exit 1; }
echo "$out"
