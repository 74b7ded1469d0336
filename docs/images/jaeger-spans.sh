#!/usr/bin/env bash
# Makes docs/images/jaeger-spans.png: flowtap --spans otlp on a throwaway
# cgroup sends a few real flows (closed normally, reset, incoming) to a real
# Jaeger (deploy/setup/jaeger.sh, configured by deploy/setup/jaeger.yaml, on
# loopback ports), Jaeger's query API is asked for them, and its answer is
# drawn by docs/images/jaeger-render.mjs and shot with headless Chromium.
# Jaeger's own UI is not part of its Go-module build, so this shows the API's
# answer, not Jaeger's UI. Run as root after `make build`:
#   docs/images/jaeger-spans.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
node_bin="$(cat tools/node-path 2>/dev/null || command -v node)"
jaeger="$(deploy/setup/jaeger.sh)"
work="$(mktemp -d)"
mount="$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)"
cg="$mount/flowtap-picture-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  rmdir "$cg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$cg"
free_port() { "$node_bin" -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
export JAEGER_OTLP_GRPC_PORT="$(free_port)" JAEGER_OTLP_HTTP_PORT="$(free_port)" JAEGER_QUERY_HTTP_PORT="$(free_port)" JAEGER_QUERY_GRPC_PORT="$(free_port)"
"$jaeger" --config deploy/setup/jaeger.yaml > "$work/jaeger.log" 2>&1 & pids+=($!)
query="http://127.0.0.1:$JAEGER_QUERY_HTTP_PORT"
until curl -sf "$query/api/services" > /dev/null; do sleep 0.2; done
in_cg() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

"$node_bin" test/fixtures/tcp-server.js 127.0.0.1 0 > "$work/outside.port" & pids+=($!)
in_cg "$node_bin" test/fixtures/tcp-server.js 127.0.0.1 0 > "$work/inside.port" & pids+=($!)
until [[ -s "$work/outside.port" && -s "$work/inside.port" ]]; do sleep 0.1; done
outside="$(sed 's/[^0-9]//g' "$work/outside.port")"
inside="$(sed 's/[^0-9]//g' "$work/inside.port")"

OTEL_SERVICE_NAME=flowtap-demo OTEL_BLRP_SCHEDULE_DELAY=100 "$node_bin" dist/cli.js --cgroup "$cg" --exporter none \
  --spans otlp --spans-endpoint "http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT" 2> "$work/flowtap.log" & pids+=($!)
until grep -q '"msg":"ready"' "$work/flowtap.log"; do sleep 0.1; done

in_cg "$node_bin" test/fixtures/tcp-client.js 127.0.0.1 "$outside" 3 > /dev/null        # outgoing, closed by the server (FIN)
RESET=1 in_cg "$node_bin" test/fixtures/tcp-client.js 127.0.0.1 "$outside" 1 > /dev/null  # outgoing, reset by the client (RST)
"$node_bin" test/fixtures/tcp-client.js 127.0.0.1 "$inside" 2 > /dev/null                 # incoming: a client outside the cgroup
sleep 2
curl -sf "$query/api/traces?service=flowtap-demo&limit=100&lookback=1h" > "$work/answer.json"
"$node_bin" docs/images/jaeger-render.mjs < "$work/answer.json" > "$work/spans.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1440,300 \
  --screenshot="$root/docs/images/jaeger-spans.png" "file://$work/spans.html" 2> /dev/null
echo "docs/images/jaeger-spans.png: $(jq '[.data[].spans[]] | length' "$work/answer.json") spans; Jaeger's / answers:"
curl -s "$query/" | grep -o "This is not the Jaeger UI[^<]*\|not compiled with the UI assets" || true
