#!/usr/bin/env bash
# Two gateway binaries forwarding side by side, at the same time, each driven by its own wrk
# (Benchmarks/README.md). This VM's speed drifts by ±20 % over minutes, which alternating runs
# (compare.sh) only average out; two gateways measured in the same seconds drift together, so the
# ratio of their CPU per event is steady where each figure alone is not.
#
#   Benchmarks/compare-together.sh OLD_BINARY NEW_BINARY [ROUNDS]
#
# Both forward every event to one nginx (as `run-ingest.sh forward`), each from its own
# database, with 16 keep-alive connections each. After a warm-up, ROUNDS (default 5) windows of
# DURATION (default 10s): per window and gateway, the events it accepted and its CPU per event
# (utime + stime during the window / requests wrk sent), then the new/old ratio. The two swap
# ports every round. Prints the median ratio: below 1 means the new binary uses less CPU per event.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/forward-setup.sh
old=$1 new=$2 rounds=${3:-5}
duration=${DURATION:-10s}
for tool in wrk nginx curl; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light curl >/dev/null; break; }
done
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf "$work"' EXIT
nginx_config "$work/nginx"
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
export BENCH_EVENT_TYPE=bench.forward
declare -A port key pid
n=0
for name in old new; do
  bin=${!name}
  dir="$work/$name"
  forward_config "$dir/config" 18081
  port[$name]=$((18082 + n))
  n=$((n + 1))
  key[$name]=$($bin keys create --name bench --database "sqlite:$dir/db.sqlite")
  SWITCHBOARD_RATE_LIMIT=off $bin serve --config "$dir/config" --database "sqlite:$dir/db.sqlite" --port ${port[$name]} --log-level warning \
    > "$dir/server.log" 2>&1 & pid[$name]=$!
  pids+=(${pid[$name]})
done
for name in old new; do
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:${port[$name]}/health >/dev/null && break; sleep 0.1; done
done
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
drive() {  # drive NAME PORT SECONDS OUTPUT: wrk against one gateway
  SWITCHBOARD_API_KEY=${key[$1]} wrk -t1 -c16 -d"$3" -s Benchmarks/ingest.lua http://127.0.0.1:$2/v1/events > "$4"
}
drive old ${port[old]} 5s "$work/warm-old" & a=$!
drive new ${port[new]} 5s "$work/warm-new" & b=$!
wait $a $b
sleep 2
ratios=()
for round in $(seq 1 "$rounds"); do
  # Swap which gateway gets which wrk start first, so neither is always second.
  first=old second=new
  [ $((round % 2)) = 0 ] && first=new second=old
  before_old=$(cpu ${pid[old]}) before_new=$(cpu ${pid[new]})
  drive $first ${port[$first]} "$duration" "$work/$first.txt" & a=$!
  drive $second ${port[$second]} "$duration" "$work/$second.txt" & b=$!
  wait $a $b
  sleep 1  # the last deliveries of the window settle
  after_old=$(cpu ${pid[old]}) after_new=$(cpu ${pid[new]})
  sent_old=$(awk '/requests in/ {print $1}' "$work/old.txt") sent_new=$(awk '/requests in/ {print $1}' "$work/new.txt")
  per_old=$(echo "($after_old - $before_old) * 10000 / $sent_old" | bc -l)
  per_new=$(echo "($after_new - $before_new) * 10000 / $sent_new" | bc -l)
  ratio=$(echo "$per_new / $per_old" | bc -l)
  ratios+=("$ratio")
  printf 'round %d: old %d events, %.0f µs CPU per event  new %d events, %.0f µs CPU per event  new/old %.3f\n' \
    "$round" "$sent_old" "$per_old" "$sent_new" "$per_new" "$ratio"
  sleep 2
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {printf "median new/old CPU per event: %.3f (%d rounds)\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, NR}'
