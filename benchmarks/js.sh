#!/usr/bin/env bash
# benchmarks/js.sh: ledge's durable streams against nats-server's JetStream
# with file storage, side by side on this machine, with the nats CLI's
# JetStream benchmark.
#
# Scenarios, each on ledge and on nats-server alternately (A B A B ...,
# PAIRS pairs; medians; ratio ledge / nats-server, above 1 is faster):
#   js_pub    async publish with PubAcks of SIZE-byte messages into a file
#             stream (nats bench js pub async --create)
#   js_fetch  pull-consume with explicit acks from a durable consumer
#             (nats bench js fetch), the stream filled by js_pub
# at two sync policies, compared like for like:
#   written   ledge -sync never (a PubAck once the record is written to the
#             file) against nats-server's default (written, fsynced every
#             two minutes)
#   fsynced   ledge -sync always (a PubAck after fsync, group-committed)
#             against nats-server with sync_interval: always
# Memory: each server's RSS idle, then with STREAMS streams, then with a
# consumer on each: the cost per stream and per consumer.
#
# Usage: benchmarks/js.sh        (PAIRS=3 MSGS=200000 SIZE=128 STREAMS=100)
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-3}
MSGS=${MSGS:-200000}
SIZE=${SIZE:-128}
STREAMS=${STREAMS:-100}
POLICIES=${POLICIES:-"written fsynced"}
LEDGE_PORT=24223
NATS_PORT=14223

bin=$PWD/benchmarks/out/bin
mkdir -p "$bin"
export GOBIN=$bin
[ -x "$bin/nats-server" ] || go install github.com/nats-io/nats-server/v2@latest
[ -x "$bin/nats" ] || go install github.com/nats-io/natscli/nats@latest
go build -o "$bin/ledge" ./cmd/ledge

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

# start_ledge POLICY: a fresh ledge with an empty data folder.
start_ledge() {
	rm -rf "$work/ledge-data"
	local sync=never
	[ "$1" = fsynced ] && sync=always
	"$bin/ledge" -nats-addr 127.0.0.1:$LEDGE_PORT -mqtt-addr "" -mqtt-ws-addr "" -amqp-addr "" \
		-stomp-addr "" -stomp-ws-addr "" -http-addr "" -data-dir "$work/ledge-data" -sync $sync -log-level warn >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $LEDGE_PORT
}
start_nats() {
	rm -rf "$work/nats-data"
	local sync=""
	[ "$1" = fsynced ] && sync="sync_interval: always"
	cat >"$work/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
jetstream {
	store_dir: "$work/nats-data"
	$sync
}
CONF
	"$bin/nats-server" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
	nats_pid=$!
	pids+=("$nats_pid")
	wait_port $NATS_PORT
}

nats() { "$bin/nats" --no-context "$@"; }
rate() { { grep -E "$1" || true; } | sed -E 's/.*stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , | tail -1; }

# js_pub and js_fetch print one figure for the server at $1.
js_pub() {
	nats -s "$1" bench js pub async bench.js --create --purge --storage file --msgs "$MSGS" --size "$SIZE" --no-progress 2>&1 | rate 'stats'
}
js_fetch() {
	nats -s "$1" consumer rm benchstream nats-bench -f >/dev/null 2>&1 || true
	nats -s "$1" bench js fetch --msgs "$MSGS" --no-progress 2>&1 | rate 'stats'
}

median() { grep -E '^[0-9.]+$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "failed"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}' || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }'; }

report=benchmarks/out/js-$(date -u +%Y%m%dT%H%M%SZ).md
mkdir -p benchmarks/out
{
	echo "## ledge vs nats-server JetStream, file storage ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Peer: $("$bin/nats-server" --version), CLI: nats $("$bin/nats" --version 2>&1)"
	echo "Command: PAIRS=$PAIRS MSGS=$MSGS SIZE=$SIZE STREAMS=$STREAMS benchmarks/js.sh"
	echo
	echo "| scenario | sync | ledge | nats-server | ledge / nats-server |"
	echo "|---|---|---|---|---|"
} | tee "$report"

for policy in $POLICIES; do
	for scenario in js_pub js_fetch; do
		: >"$work/a.$scenario"
		: >"$work/b.$scenario"
	done
	for _ in $(seq "$PAIRS"); do
		# Each pair: a fresh server, publish, then consume what was published.
		start_ledge "$policy"
		js_pub nats://127.0.0.1:$LEDGE_PORT >>"$work/a.js_pub"
		js_fetch nats://127.0.0.1:$LEDGE_PORT >>"$work/a.js_fetch"
		stop_pid "$ledge_pid"
		start_nats "$policy"
		js_pub nats://127.0.0.1:$NATS_PORT >>"$work/b.js_pub"
		js_fetch nats://127.0.0.1:$NATS_PORT >>"$work/b.js_fetch"
		stop_pid "$nats_pid"
	done
	for scenario in js_pub js_fetch; do
		a=$(median <"$work/a.$scenario")
		b=$(median <"$work/b.$scenario")
		printf '| %s %d B | %s | %s msgs/s | %s msgs/s | %s |\n' "$scenario" "$SIZE" "$policy" "$a" "$b" "$(ratio "$a" "$b")" | tee -a "$report"
	done
done

# Memory per stream and per consumer: fresh servers, STREAMS streams with
# one consumer each, created with the CLI.
measure_memory() {
	local start=$1 url=$2 pidvar=$3
	$start written
	local pid=${!pidvar}
	sleep 1
	local idle streams consumers
	idle=$(rss_kib "$pid")
	for i in $(seq "$STREAMS"); do
		nats -s "$url" stream add "mem$i" --subjects "mem.$i.>" --storage file --defaults >/dev/null
	done
	sleep 1
	streams=$(rss_kib "$pid")
	for i in $(seq "$STREAMS"); do
		nats -s "$url" consumer add "mem$i" c --pull --defaults >/dev/null
	done
	sleep 1
	consumers=$(rss_kib "$pid")
	stop_pid "$pid"
	echo "$idle $streams $consumers"
}
read -r l_idle l_streams l_cons < <(measure_memory start_ledge nats://127.0.0.1:$LEDGE_PORT ledge_pid)
read -r n_idle n_streams n_cons < <(measure_memory start_nats nats://127.0.0.1:$NATS_PORT nats_pid)
l_ps=$(( (l_streams - l_idle) * 1024 / STREAMS )); n_ps=$(( (n_streams - n_idle) * 1024 / STREAMS ))
l_pc=$(( (l_cons - l_streams) * 1024 / STREAMS )); n_pc=$(( (n_cons - n_streams) * 1024 / STREAMS ))
{
	echo
	echo "| memory | ledge | nats-server | ledge / nats-server |"
	echo "|---|---|---|---|"
	printf '| RSS idle, JetStream on | %d KiB | %d KiB | %s |\n' "$l_idle" "$n_idle" "$(ratio "$l_idle" "$n_idle")"
	printf '| RSS per file stream (%d streams) | %d B | %d B | %s |\n' "$STREAMS" "$l_ps" "$n_ps" "$(ratio "$l_ps" "$n_ps")"
	printf '| RSS per pull consumer | %d B | %d B | %s |\n' "$l_pc" "$n_pc" "$(ratio "$l_pc" "$n_pc")"
} | tee -a "$report"
echo
echo "report: $report"
