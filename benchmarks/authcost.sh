#!/usr/bin/env bash
# benchmarks/authcost.sh: what permissions cost on the hot path. NATS
# publish to subscribe and MQTT QoS 0 ingest through the gateways with
# 1,000 devices, each its own user with rules of its own, against the same
# without auth (BenchmarkPubSubUsers, BenchmarkIngestQoS0Users).
#
# The variants run one after the other in each round, ROUNDS rounds, so a
# busy machine slows both sides alike; the figure is the median per variant
# and the throughput lost is 1 - (ns without auth / ns with rules).
#
# Usage: benchmarks/authcost.sh         (ROUNDS=7 N=2000000)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi
ROUNDS=${ROUNDS:-7}
N=${N:-2000000}
mkdir -p benchmarks/out
raw=benchmarks/out/authcost-$(date -u +%Y%m%dT%H%M%SZ).txt
go test -c -o benchmarks/out/natsgw.test ./natsgw/
go test -c -o benchmarks/out/mqttgw.test ./mqttgw/
for _ in $(seq "$ROUNDS"); do
	benchmarks/out/natsgw.test -test.run='^$' -test.bench='PubSubUsers' -test.benchtime="${N}x" -test.benchmem
	benchmarks/out/mqttgw.test -test.run='^$' -test.bench='IngestQoS0Users' -test.benchtime="${N}x" -test.benchmem
done | grep '^Benchmark' >"$raw"

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ns() { awk -v b="$1" '$1 ~ "^"b"-" {print $3}' "$raw" | median; }
allocs() { awk -v b="$1" '$1 ~ "^"b"-" {print $(NF-1)}' "$raw" | median; }
echo "## Permissions on the hot path ($(date -u +%Y-%m-%d))"
echo
echo "Machine: $(benchmarks/machine.sh); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Command: ROUNDS=$ROUNDS N=$N benchmarks/authcost.sh"
echo
echo "| path | without auth | with rules | throughput lost | allocs/msg without, with |"
echo "|---|---|---|---|---|"
row() {
	local a b
	a=$(ns "$2") b=$(ns "$3")
	printf '| %s | %s ns/msg | %s ns/msg | %s | %s, %s |\n' "$1" "$a" "$b" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f%%", 100*(1-a/b)}')" "$(allocs "$2")" "$(allocs "$3")"
}
row "NATS pub to sub, 1,000 users" BenchmarkPubSubUsers/none BenchmarkPubSubUsers/rules
row "NATS pub to sub, filtered subscribers" BenchmarkPubSubUsers/none BenchmarkPubSubUsers/rules-filtered
row "MQTT QoS 0 ingest, 1,000 devices" BenchmarkIngestQoS0Users/none BenchmarkIngestQoS0Users/rules
echo
echo "raw: $raw"
