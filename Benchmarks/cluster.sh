#!/usr/bin/env bash
# The forwarding workload end to end on one SQLite instance and on one, two and three instances
# sharing a PostgreSQL database, in one sitting (Benchmarks/README.md, "Scale-out").
#
#   Benchmarks/cluster.sh            # 10 s of load per setup
#   DURATION=20s Benchmarks/cluster.sh
#   BIN=path Benchmarks/cluster.sh   # that gateway binary instead of a release build
#
# For each setup: a new database, the instances started on ports 18080.., one wrk per instance
# (32 connections in all) posting ~1 KiB events that a workflow forwards, signed, to nginx; then
# it waits until every accepted event was delivered. It prints events accepted per second, the
# delivery rate (accepted events over the time until the last was delivered), and the CPU per
# event of the gateways and of PostgreSQL (its server processes, from /proc), with the database's
# share. The cluster runs with fsync on, as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/forward-setup.sh
duration=${DURATION:-10s}
for tool in wrk nginx curl; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light curl >/dev/null; break; }
done
[ -z "${BIN:-}" ] && scripts/build-release switchboard >/dev/null
bin=${BIN:-.build-release/release/switchboard}
work=$(mktemp -d /tmp/switchboard-cluster-bench.XXXXXX)
chmod 755 "$work"
port=${PGPORT:-55470}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${nginx_pid:-}" ] && kill "$nginx_pid" 2>/dev/null || true
  scripts/postgres-cluster remove "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PG_FSYNC=on scripts/postgres-cluster create "$work/pg" "$port"
nginx_config "$work/nginx"
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & nginx_pid=$!
mkdir -p "$work/config"
forward_config "$work/config" 18081
export BENCH_EVENT_TYPE=bench.forward
counter='switchboard_deliveries_total{connector="sink",outcome="succeeded"}'

# CPU ticks (1/100 s) of PostgreSQL's server processes: the postmaster and its children.
pg_ticks() {
  local main
  main=$(head -n 1 "$work/pg/data/postmaster.pid")
  { echo "$main"; pgrep -P "$main"; } | while read -r pid; do awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true; done \
    | awk '{s += $1} END {print s + 0}'
}
ticks_of() { for pid in "$@"; do awk '{print $14 + $15}' "/proc/$pid/stat"; done | awk '{s += $1} END {print s + 0}'; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v name="$2" 'index($0, name) == 1 {print $2}'; }
sum_metric() { local total=0; for p in "${ports[@]}"; do total=$(awk -v a="$total" -v b="$(metric "$p" "$1")" 'BEGIN {print a + (b == "" ? 0 : b)}'); done; echo "$total"; }

run_setup() {  # run_setup STORE INSTANCES
  local store=$1 count=$2 db
  if [ "$store" = sqlite ]; then
    db="sqlite:$work/bench-$count.sqlite"
  else
    runuser -u postgres -- psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE bench_$count" 2>/dev/null \
      || psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE bench_$count"
    db="postgres://postgres@127.0.0.1:$port/bench_$count?sslmode=disable"
  fi
  export SWITCHBOARD_API_KEY=$($bin keys create --name bench --database "$db")
  ports=() ; local servers=()
  for n in $(seq 1 "$count"); do
    local p=$((18089 + n))
    SWITCHBOARD_RATE_LIMIT=off SWITCHBOARD_INSTANCE_ID="bench-$n" $bin serve --config "$work/config" --database "$db" --port $p --log-level warning \
      > "$work/server-$store-$count-$n.log" 2>&1 &
    servers+=($!); pids+=($!); ports+=($p)
  done
  for p in "${ports[@]}"; do for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/health" >/dev/null && break; sleep 0.1; done; done
  local connections=$(( 32 / count ))
  # Warm-up, then the measured run.
  for p in "${ports[@]}"; do wrk -t1 -c$connections -d3s -s Benchmarks/ingest.lua "http://127.0.0.1:$p/v1/events" >/dev/null & done
  wait_for_wrk
  wait_delivered 60 >/dev/null
  local accepted_before delivered_before gw_before pg_before start
  accepted_before=$(sum_metric 'switchboard_events_received_total{outcome="accepted"}')
  gw_before=$(ticks_of "${servers[@]}")
  pg_before=$(pg_ticks)
  start=$(date +%s.%N)
  for p in "${ports[@]}"; do wrk -t1 -c$connections -d"$duration" -s Benchmarks/ingest.lua "http://127.0.0.1:$p/v1/events" > "$work/wrk-$p.txt" & done
  wait_for_wrk
  local ingest_end; ingest_end=$(date +%s.%N)
  local done_at; done_at=$(wait_delivered 120)
  local accepted; accepted=$(awk -v a="$(sum_metric 'switchboard_events_received_total{outcome="accepted"}')" -v b="$accepted_before" 'BEGIN {print a - b}')
  local gw pg
  gw=$(awk -v a="$(ticks_of "${servers[@]}")" -v b="$gw_before" 'BEGIN {print a - b}')
  pg=$( [ "$store" = sqlite ] && echo 0 || awk -v a="$(pg_ticks)" -v b="$pg_before" 'BEGIN {print a - b}')
  awk -v store="$store" -v n="$count" -v acc="$accepted" -v s="$start" -v e="$ingest_end" -v d="$done_at" -v gw="$gw" -v pg="$pg" 'BEGIN {
    printf "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f %% |\n", store, n, acc / (e - s), acc / (d - s),
      gw * 10000 / acc, pg * 10000 / acc, (gw + pg > 0 ? pg * 100 / (gw + pg) : 0) }'
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
}

wait_for_wrk() { while pgrep -x wrk -P $$ >/dev/null; do sleep 0.2; done; }

# Waits (at most $1 seconds) until every accepted event's delivery succeeded; prints the time it did.
wait_delivered() {
  local deadline=$(( $(date +%s) + $1 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local sent delivered
    sent=$(sum_metric 'switchboard_events_received_total{outcome="accepted"}')
    delivered=$(sum_metric "$counter")
    if [ "${sent%.*}" = "${delivered%.*}" ]; then date +%s.%N; return; fi
    sleep 0.1
  done
  echo "not every accepted event was delivered within $1 s" >&2
  date +%s.%N
}

echo "| store | instances | accepted events/s | delivered events/s | gateway CPU µs/event | PostgreSQL CPU µs/event | database's share of CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run_setup sqlite 1
for count in 1 2 3; do run_setup postgres "$count"; done
