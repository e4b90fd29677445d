#!/usr/bin/env bash
# Durable ingest and end-to-end benchmarks (Benchmarks/README.md).
#
#   Benchmarks/run-ingest.sh ingest    # example 1 loaded: events/s answered 202, each committed first
#   Benchmarks/run-ingest.sh forward   # each event forwarded as a signed POST to nginx, attempt logged
#   Benchmarks/run-ingest.sh down      # the same to a receiver that is down: memory with a deep queue
#   Benchmarks/run-ingest.sh latency   # forward at a fixed RATE (default 2000/s): ingest-to-delivery percentiles
#   PERF=/tmp/ingest.perf Benchmarks/run-ingest.sh ingest   # also records a CPU profile of the gateway
#   CPU=1 ...  prints the gateway's CPU seconds during the measured run; BIN=path runs that binary;
#   WRK_THREADS=1 drives the same 32 connections from one wrk thread (default 2)
#   CPU=1 RATE=1500 Benchmarks/run-ingest.sh latency   # also the gateway's CPU per event at that fixed rate
#
# Both use a release build, wrk with 2 threads and 32 keep-alive connections for 10 s on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/forward-setup.sh
mode=${1:-ingest}
duration=${DURATION:-10s}
for tool in wrk nginx curl; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light curl >/dev/null; break; }
done
# BIN=path runs that gateway binary instead of building one (for A/B comparisons).
[ -z "${BIN:-}" ] && scripts/build-release switchboard >/dev/null
[ "$mode" = latency ] && scripts/build-release switchboard-bench >/dev/null
bin=${BIN:-.build-release/release/switchboard}
work=$(mktemp -d)
trap 'kill $server_pid 2>/dev/null || true; [ -n "${nginx_pid:-}" ] && kill $nginx_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$work/server.log" /tmp/bench-server.log; rm -rf "$work"' EXIT
mkdir -p "$work/config/workflows" "$work/config/connectors"
db="sqlite:$work/switchboard.sqlite"
export SWITCHBOARD_API_KEY=$($bin keys create --name bench --database "$db")
if [ "$mode" = ingest ]; then
  cp workflows/decline-blocked-ip.yaml "$work/config/workflows/"
  $bin lists add blocked-ips 203.0.113.7 198.51.100.0/25 --kind ip --database "$db" >/dev/null
  export BENCH_EVENT_TYPE=inquiry.completed
  counter='switchboard_runs_total{workflow="decline-blocked-ip",status="completed"}'
else
  target=18081
  [ "$mode" = down ] && target=18089  # nothing listens there
  nginx_config "$work/nginx"
  [ "$mode" != down ] && { nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & nginx_pid=$!; }
  forward_config "$work/config" $target
  export BENCH_EVENT_TYPE=bench.forward
  counter='switchboard_deliveries_total{connector="sink",outcome="succeeded"}'
fi
if [ -n "${PREFILL:-}" ]; then
  # A delivery log that already holds PREFILL settled deliveries, each with one attempt.
  command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
  sqlite3 "$work/switchboard.sqlite" <<SQL
INSERT INTO runs (id, workflow, status, tags, trigger, created_at, updated_at) VALUES ('run_prefill', 'forward', 'completed', '[]', '{"api":true}', 0, 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $PREFILL)
INSERT INTO deliveries (id, run_id, step_id, connector, operation, status, request, attempt_count, created_at, updated_at)
  SELECT printf('dlv_00000000%018d', i), 'run_prefill', 'send', 'sink', 'request', 'succeeded',
         '{"method":"POST","url":"http://127.0.0.1:18081/hook","headers":[],"body":"{}"}', 1, i, i FROM n;
INSERT INTO delivery_attempts (delivery_id, number, trigger, started_at, duration_ms, request, response)
  SELECT id, 1, 'scheduled', created_at, 1, '{"method":"POST"}', '{"status":200}' FROM deliveries WHERE run_id = 'run_prefill';
SQL
  echo "prefilled $PREFILL deliveries and attempts"
fi
SWITCHBOARD_RATE_LIMIT=off $bin serve --config "$work/config" --database "$db" --port 18080 --log-level warning > "$work/server.log" 2>&1 & server_pid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18080/health >/dev/null && break; sleep 0.1; done
if [ "$mode" = latency ]; then
  rate=${RATE:-2000}
  .build-release/release/switchboard-bench load http://127.0.0.1:18080/v1/events "$rate" 5 > /dev/null  # warm-up
  sleep 2
  since=$(date +%s%6N)
  cpu_before=$(awk '{print $14 + $15}' /proc/$server_pid/stat)
  .build-release/release/switchboard-bench load http://127.0.0.1:18080/v1/events "$rate" "${duration%s}"
  sleep 3
  # The gateway's CPU per event at this fixed rate: steadier on this shared VM than a saturated rate.
  [ -n "${CPU:-}" ] && echo "gateway CPU per event: $(sqlite3 "$work/switchboard.sqlite" "SELECT COUNT(*) FROM events WHERE received_at >= $since" | awk '{printf "%.0f", ('"$(awk '{print $14 + $15}' /proc/$server_pid/stat)"' - '"$cpu_before"') * 10000 / $1}') µs"
  sqlite3 "$work/switchboard.sqlite" <<SQL
.mode list
WITH l AS (
  SELECT (a.started_at + a.duration_ms * 1000 - e.received_at) / 1000.0 AS ms
  FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN runs r ON r.id = d.run_id
  JOIN events e ON e.id = r.event_id
  WHERE a.response IS NOT NULL AND e.received_at >= $since),
o AS (SELECT ms, ROW_NUMBER() OVER (ORDER BY ms) AS k, COUNT(*) OVER () AS c FROM l)
SELECT 'delivered ' || MAX(c) || ' events; ingest to delivery ms: p50 ' || printf('%.1f', MAX(CASE WHEN k <= c * 0.5 THEN ms END))
  || ', p99 ' || printf('%.1f', MAX(CASE WHEN k <= c * 0.99 THEN ms END)) || ', max ' || printf('%.1f', MAX(ms)) FROM o;
SQL
  exit 0
fi
if [ "$mode" = down ]; then
  wrk -t2 -c32 -d"$duration" -s Benchmarks/ingest.lua http://127.0.0.1:18080/v1/events | grep Requests/sec
  sleep 5
  metrics=$(curl -s http://127.0.0.1:18080/metrics)
  echo "accepted: $(echo "$metrics" | awk '/^switchboard_events_received_total\{outcome="accepted"\}/ {print $2}')"
  echo "queue depth: $(echo "$metrics" | awk '/^switchboard_delivery_queue_depth/ {print $2}')  circuit: $(echo "$metrics" | grep switchboard_circuit_open)"
  echo "resident memory of the gateway: $(ps -o rss= -p $server_pid) KiB"
  exit 0
fi
# Warm up: on a new database the first seconds are slower while SQLite's WAL file grows to its
# working size (every commit then also flushes the file's new size). Measure the steady state.
wrk -t${WRK_THREADS:-2} -c${CONNECTIONS:-32} -d"${WARMUP:-5s}" -s Benchmarks/ingest.lua http://127.0.0.1:18080/v1/events > "$work/warmup.txt"
echo "warm-up: $(grep Requests/sec "$work/warmup.txt")"
for _ in $(seq 1 600); do
  warm_sent=$(curl -s http://127.0.0.1:18080/metrics | awk '/^switchboard_events_received_total\{outcome="accepted"\}/ {print $2}')
  warm_done=$(curl -s http://127.0.0.1:18080/metrics | grep -F "$counter" | awk '{print $2}' || true)
  [ "${warm_done:-0}" = "$warm_sent" ] && break
  sleep 0.1
done
cpu_before=$(awk '{print $14 + $15}' /proc/$server_pid/stat)
written_before=$(awk '/^wchar/ {print $2}' /proc/$server_pid/io)
start=$(date +%s.%N)
# PERF=FILE records a CPU profile of the gateway during the measured run (read it with perf report -i FILE).
# STRACE=FILE counts the gateway's system calls (and pwrite sizes) for 3 s of the measured run.
[ -n "${STRACE:-}" ] && { (sleep 2; timeout 3 strace -f -p $server_pid ${STRACE_ARGS:--e trace=pwrite64,fdatasync} -o "$STRACE" 2>/dev/null) & }
[ -n "${PERF:-}" ] && { perf record -F 499 ${PERF_CALLGRAPH--g} -p $server_pid -o "$PERF" -- sleep "${duration%s}" >/dev/null 2>&1 & }
wrk -t${WRK_THREADS:-2} -c${CONNECTIONS:-32} -d"$duration" --latency -s Benchmarks/ingest.lua http://127.0.0.1:18080/v1/events | tee "$work/wrk.txt"
# CPU seconds the gateway used during the measured run (utime + stime, in clock ticks).
[ -n "${CPU:-}" ] && echo "gateway CPU during the run: $(awk '{printf "%.1f s", ($14 + $15 - '"$cpu_before"') / 100}' /proc/$server_pid/stat), bytes written (files and sockets): $(awk '/^wchar/ {printf "%.0f MB", ($2 - '"$written_before"') / 1e6}' /proc/$server_pid/io)"
# The same CPU per request wrk sent: steadier than the rate when the VM's speed drifts (each
# accepted event is also forwarded by the end of the run, but for the last few hundred).
[ -n "${CPU:-}" ] && echo "gateway CPU per request: $(awk '{print $14 + $15}' /proc/$server_pid/stat | awk -v before="$cpu_before" -v n="$(awk '/requests in/ {print $1}' "$work/wrk.txt")" '{printf "%.0f µs", ($1 - before) * 10000 / n}')"
total_sent=$(curl -s http://127.0.0.1:18080/metrics | awk '/^switchboard_events_received_total\{outcome="accepted"\}/ {print $2}')
sent=$total_sent
# Wait (at most 120 s) until every accepted event's run has completed.
# Requests still in flight when wrk stopped may be accepted after the first reading, so the
# accepted count is read again each time.
for _ in $(seq 1 1200); do
  done_count=$(curl -s http://127.0.0.1:18080/metrics | grep -F "$counter" | awk '{print $2}' || true)
  sent=$(curl -s http://127.0.0.1:18080/metrics | awk '/^switchboard_events_received_total\{outcome="accepted"\}/ {print $2}')
  [ "${done_count:-0}" -ge "${sent:-0}" ] && break
  sleep 0.1
done
end=$(date +%s.%N)
measured=$(( ${done_count:-0} - ${warm_done:-0} ))
echo "mode=$mode accepted_total=$sent completed_total=${done_count:-0} measured=$measured elapsed_s=$(echo "$end - $start" | bc)"
echo "completion rate: $(echo "scale=0; $measured / ($end - $start)" | bc) per s (from the first measured request to the last completion)"
echo "resident memory of the gateway: $(ps -o rss= -p $server_pid) KiB"
if [ "$mode" = forward ]; then
  # Deliveries that needed more than one attempt, and why: a slow completion rate comes from these.
  command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
  echo "deliveries by attempts: $(sqlite3 "$work/switchboard.sqlite" "SELECT group_concat(n || ' attempt(s): ' || c, ', ') FROM (SELECT attempt_count AS n, COUNT(*) AS c FROM deliveries GROUP BY attempt_count)")"
  echo "failed attempts by error: $(sqlite3 "$work/switchboard.sqlite" "SELECT group_concat(e || ' ' || c, ', ') FROM (SELECT COALESCE(error_class, 'none') || ': ' || COALESCE(substr(error_message, 1, 80), '') AS e, COUNT(*) AS c FROM delivery_attempts WHERE error_class IS NOT NULL GROUP BY e ORDER BY c DESC LIMIT 5)")"
fi
