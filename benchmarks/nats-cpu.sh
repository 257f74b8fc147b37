#!/usr/bin/env bash
# benchmarks/nats-cpu.sh: server CPU per message, ledge against nats-server,
# for pub -> sub 1:1 with nats bench (A B A B, PAIRS pairs). Throughput on a
# small machine is shared between the server and the load generator; this
# says how much of it each server itself costs. CPU is the process's user
# plus system time from /proc/PID/stat around each run.
#
# Usage: benchmarks/nats-cpu.sh      (PAIRS=3 MSGS=2000000 SIZE=16)
# Run benchmarks/nats.sh once first: it installs the peer and the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-3}
MSGS=${MSGS:-2000000}
SIZE=${SIZE:-16}
bin=$PWD/benchmarks/out/bin
for b in nats nats-server; do
	[ -x "$bin/$b" ] || { echo "run benchmarks/nats.sh first (it installs $b)" >&2; exit 1; }
done
go build -o "$bin/ledge" ./cmd/ledge

work=$(mktemp -d)
"$bin/ledge" -nats-addr 127.0.0.1:24222 -mqtt-addr "" -mqtt-ws-addr "" -amqp-addr "" \
	-stomp-addr "" -stomp-ws-addr "" -http-addr "" -data-dir "$work/data" -log-level warn &
ledge_pid=$!
"$bin/nats-server" -a 127.0.0.1 -p 14222 >/dev/null 2>&1 &
nats_pid=$!
trap 'kill $ledge_pid $nats_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5

ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
hz=$(getconf CLK_TCK)

echo "| server | run | msgs/s (subscriber) | server CPU ns/msg |"
echo "|---|---|---|---|"
for run in $(seq "$PAIRS"); do
	for side in "ledge 24222 $ledge_pid" "nats-server 14222 $nats_pid"; do
		read -r name port pid <<<"$side"
		t0=$(ticks "$pid")
		timeout 120 "$bin/nats" --no-context -s nats://127.0.0.1:"$port" bench sub bench.cpu --msgs "$MSGS" --size "$SIZE" --no-progress >"$work/sub" 2>&1 &
		sp=$!
		sleep 0.4
		"$bin/nats" --no-context -s nats://127.0.0.1:"$port" bench pub bench.cpu --msgs "$MSGS" --size "$SIZE" --no-progress >/dev/null 2>&1
		wait $sp || true
		t1=$(ticks "$pid")
		rate=$(grep -oE 'subscriber stats: [0-9,]+' "$work/sub" | grep -oE '[0-9,]+$' | tr -d , || true)
		ns=$(( (t1 - t0) * 1000000000 / hz / MSGS ))
		echo "| $name | $run | ${rate:-failed} | $ns |"
	done
done
