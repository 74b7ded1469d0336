#!/usr/bin/env bash
# `make run`: starts an OpenTelemetry Collector with otel-collector.yaml and
# flowtap on the whole host (the cgroup v2 root), and shows each record as the
# collector received it. Ctrl-C stops flowtap first (it flushes what it has
# read), then the collector.
#
#   deploy/setup/run.sh [extra flowtap flags, e.g. --cgroup /sys/fs/cgroup/system.slice]
#
#   FLOWTAP_OTELCOL=/path/to/otelcol-contrib   use that collector binary
#   (FLOWTAP_* and OTEL_* variables reach flowtap unchanged.)
#
# Files, rewritten on every run (tools/ is git-ignored):
#   tools/run/records.log     the collector's stdout: its debug exporter's output
#   tools/run/collector.log   the collector's own log (stderr)
#   tools/run/flowtap.log     flowtap's own log (stderr, JSON lines)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

config="$root/otel-collector.yaml"
grpc_port=4317 # must match the receiver endpoints in otel-collector.yaml
http_port=4318
rundir="$root/tools/run"
records="$rundir/records.log"
collector_log="$rundir/collector.log"
flowtap_log="$rundir/flowtap.log"

say() { printf 'run: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- preconditions -------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
  die "flowtap loads eBPF programs and attaches them to the cgroup v2 root, which needs root
     (CAP_BPF + CAP_NET_ADMIN). Run it as root: sudo make run"
fi
[[ -f dist/cli.js ]] || die "dist/cli.js is missing: run 'make build' first"
node="$(cat tools/node-path 2>/dev/null || command -v node || true)"
[[ -x "$node" ]] || die "no Node.js found (tools/node-path or node on PATH): run 'make build' first"
collector="$(deploy/setup/collector.sh)"

for port in "$grpc_port" "$http_port"; do
  if command -v ss >/dev/null; then
    holder="$(ss -Hltnp "sport = :$port" 2>/dev/null || true)"
  elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    holder="something accepts connections on 127.0.0.1:$port"
  else
    holder=""
  fi
  if [[ -n "$holder" ]]; then
    hint="Stop that process (another collector, or another 'make run'?) and try again."
    [[ $port == "$grpc_port" ]] && hint+="
     If it is an OpenTelemetry Collector you want to use, run flowtap alone against it:
     node dist/cli.js --endpoint http://localhost:$grpc_port"
    die "port $port is busy, so the collector cannot listen on it:
$holder
     $hint"
  fi
done

# --- processes ----------------------------------------------------------------
mkdir -p "$rundir"
: >"$records"
: >"$collector_log"
: >"$flowtap_log"

collector_pid=""
flowtap_pid=""
tail_pid=""

# stop_pid PID NAME SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2" seconds="$3" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  say "$name did not stop within ${seconds}s after SIGTERM: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleaned=0
cleanup() {
  ((cleaned)) && return
  cleaned=1
  trap '' INT TERM # a second Ctrl-C must not cut the orderly stop short
  # flowtap first, so that its last records still reach the collector.
  stop_pid "$flowtap_pid" flowtap 10
  stop_pid "$collector_pid" collector 10
  # tail exits by itself once the collector is gone (--pid); give it a moment to print the rest.
  for ((i = 0; i < 20; i++)); do
    [[ -n "$tail_pid" ]] && kill -0 "$tail_pid" 2>/dev/null || break
    sleep 0.1
  done
  stop_pid "$tail_pid" tail 1
  say "stopped. Full output: $records (records), $collector_log (collector), $flowtap_log (flowtap)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# setsid: the children get no SIGINT from the terminal's Ctrl-C; cleanup stops them in order.
say "starting the collector: $collector --config $config"
setsid "$collector" --config "$config" >"$records" 2>"$collector_log" </dev/null &
collector_pid=$!

for ((i = 0; ; i++)); do
  if ! kill -0 "$collector_pid" 2>/dev/null; then
    wait "$collector_pid" 2>/dev/null || true
    collector_pid=""
    die "the collector exited during start-up; its log ($collector_log) ends:
$(tail -n 15 "$collector_log")"
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break
  ((i < 300)) || die "the collector does not accept connections on port $grpc_port after 30s; see $collector_log"
  sleep 0.1
done
say "collector ready on :$grpc_port (gRPC) and :$http_port (HTTP); its log: $collector_log"

say "starting flowtap on the whole host: node dist/cli.js --exporter otlp --endpoint http://localhost:$grpc_port $*"
setsid "$node" dist/cli.js --exporter otlp --endpoint "http://localhost:$grpc_port" "$@" 2>"$flowtap_log" </dev/null &
flowtap_pid=$!

# The display: records as the collector's debug exporter prints them, without
# the lines that say nothing (empty trace ids, schema URLs, ...) and with the
# resource shown only when it changes; flowtap's own log lines prefixed with
# [flowtap]. Lines it does not recognise pass through unchanged.
awk_cmd=(awk)
awk -W version 2>/dev/null | grep -q mawk && awk_cmd=(awk -W interactive) # mawk buffers pipes otherwise
format='
function flush_resource() {
  if (in_resource && resource != last_resource) { print "Resource:" resource; last_resource = resource }
  in_resource = 0
}
/^==> .* <==$/ { source = ($0 ~ /flowtap\.log <==$/) ? "flowtap" : "records"; next }
source == "flowtap" { if ($0 != "") { print "[flowtap] " $0; fflush() } next }
/^Resource attributes:/ { in_resource = 1; resource = ""; next }
in_resource && /^ +-> / { resource = resource "\n" $0; next }
{ flush_resource() }
/^Logs\t/ || /^ResourceLog #/ || /^Resource SchemaURL:/ || /^ScopeLogs/ || /^InstrumentationScope/ { next }
/^ObservedTimestamp:/ || /^SeverityText: *$/ || /^Trace ID: *$/ || /^Span ID: *$/ || /^Flags: 0$/ || /^$/ { next }
/^LogRecord #/ { print "--------------------------------------------------------------------------------"; fflush(); next }
{ print; fflush() }
'
say "records appear below as the collector receives them. Ctrl-C stops flowtap and the collector."
# Both ignore SIGINT so that Ctrl-C does not cut off the records that arrive while stopping.
(trap '' INT; exec tail -n +1 -s 0.2 -F --pid="$collector_pid" -- "$records" "$flowtap_log" 2>/dev/null) \
  > >(trap '' INT; exec "${awk_cmd[@]}" "$format") &
tail_pid=$!

# Until one of the two exits on its own (or Ctrl-C runs cleanup).
status=0
wait -n -p exited_pid "$flowtap_pid" "$collector_pid" || status=$?
if [[ "${exited_pid:-}" == "$collector_pid" ]]; then
  collector_pid=""
  say "the collector exited with status $status; its log ($collector_log) ends:
$(tail -n 15 "$collector_log")"
  exit 1
fi
flowtap_pid=""
say "flowtap exited with status $status; its log is $flowtap_log"
exit "$status"
