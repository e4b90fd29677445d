#!/usr/bin/env bash
# Alternating runs of two gateway binaries in one sitting, and the median of each
# (Benchmarks/README.md). This VM's speed drifts by ±20 % over minutes, so only pairs measured side by side
# say anything about a change.
#
#   Benchmarks/compare.sh OLD_BINARY NEW_BINARY [MODE] [PAIRS]
#   Benchmarks/compare.sh /tmp/switchboard-before .build-release/release/switchboard forward 5
#
# MODE is a mode of run-ingest.sh (ingest or forward: the completion rate, and the gateway's CPU
# per request wrk sent, which drifts less than the rate; latency: the gateway's CPU per event at
# RATE, default 1500/s). Other variables (DURATION, CONNECTIONS, ...) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 mode=${3:-forward} pairs=${4:-3}
[ "$mode" = latency ] && export RATE=${RATE:-1500}
figure() {
  if [ "$mode" = latency ]; then
    CPU=1 BIN=$1 Benchmarks/run-ingest.sh latency 2>&1 | awk '/gateway CPU per event/ {print $5}'
  else
    CPU=1 BIN=$1 Benchmarks/run-ingest.sh "$mode" 2>&1 |
      awk '/^completion rate/ {rate = $3} /^gateway CPU per request/ {cpu = $5} END {print rate, cpu}'
  fi
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
olds=() news=() oldcpus=() newcpus=()
for i in $(seq 1 "$pairs"); do
  read -r a acpu <<< "$(figure "$old")"; read -r b bcpu <<< "$(figure "$new")"
  echo "pair $i: old $a${acpu:+ ($acpu µs CPU per request)}  new $b${bcpu:+ ($bcpu µs CPU per request)}"
  olds+=("$a"); news+=("$b"); oldcpus+=("${acpu:-0}"); newcpus+=("${bcpu:-0}")
done
unit=$([ "$mode" = latency ] && echo "µs CPU per event" || echo "events/s")
echo "median old $(printf '%s\n' "${olds[@]}" | median)  new $(printf '%s\n' "${news[@]}" | median) $unit ($mode, $pairs pairs)"
[ "$mode" != latency ] && echo "median gateway CPU per request: old $(printf '%s\n' "${oldcpus[@]}" | median)  new $(printf '%s\n' "${newcpus[@]}" | median) µs"
exit 0
