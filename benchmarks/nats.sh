#!/usr/bin/env bash
# benchmarks/nats.sh: ledge against nats-server on the NATS protocol, side by
# side on this machine, with the nats CLI's own benchmark.
#
# Each scenario runs on ledge and on nats-server alternately (A B A B ...,
# PAIRS pairs); the figure is the median of each side and the ratio is
# ledge / nats-server (above 1 means ledge is faster; for latency, below 1
# means ledge answers sooner). Memory is the resident set of each server,
# freshly started: idle, and with CONNS idle client connections open.
#
# Usage: benchmarks/nats.sh            (PAIRS=3 MSGS=1000000 CONNS=10000)
# It installs nats-server and the nats CLI with go install into
# benchmarks/out/bin, builds ledge there, and prints a markdown report that
# it also saves in benchmarks/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-3}
MSGS=${MSGS:-1000000}
RR_MSGS=${RR_MSGS:-50000}
CONNS=${CONNS:-10000}
SIZES=${SIZES:-"16 128"}
LEDGE_PORT=24222
NATS_PORT=14222

bin=$PWD/benchmarks/out/bin
mkdir -p "$bin"
export GOBIN=$bin
[ -x "$bin/nats-server" ] || go install github.com/nats-io/nats-server/v2@latest
[ -x "$bin/nats" ] || go install github.com/nats-io/natscli/nats@latest
go build -o "$bin/ledge" ./cmd/ledge
go build -o "$bin/idleconns" ./benchmarks/idleconns

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

start_ledge() {
	"$bin/ledge" -nats-addr 127.0.0.1:$LEDGE_PORT -mqtt-addr "" -mqtt-ws-addr "" -amqp-addr "" \
		-stomp-addr "" -stomp-ws-addr "" -http-addr "" -data-dir "$work/ledge-data" -log-level warn >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $LEDGE_PORT
}
start_nats() {
	"$bin/nats-server" -a 127.0.0.1 -p $NATS_PORT >"$work/nats.log" 2>&1 &
	nats_pid=$!
	pids+=("$nats_pid")
	wait_port $NATS_PORT
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

nats() { "$bin/nats" --no-context "$@"; }

# rate extracts the msgs/sec figure from a nats bench report line.
# A run that produced no figure (a client cut off, a timeout) prints nothing.
rate() { { grep -E "$1" || true; } | sed -E 's/.*stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , | tail -1; }
avg_us() { { grep -E 'requester stats' || true; } | sed -E 's/.* avg: ([0-9.,]+)us.*/\1/' | tr -d , | tail -1; }

# Scenarios: each prints one number for the server at $1 with message size $2.
pub_only() {
	nats -s "$1" bench pub bench.pub --msgs "$MSGS" --size "$2" --no-progress 2>&1 | rate 'publisher stats'
}
pub_sub() {
	local subs=$3 out=$work/sub.out
	# A subscriber that was cut off waits for messages that never come.
	timeout 120 "$bin/nats" --no-context -s "$1" bench sub bench.ps --clients "$subs" --msgs "$MSGS" --size "$2" --no-progress >"$out" 2>&1 &
	local sp=$!
	sleep 0.5
	nats -s "$1" bench pub bench.ps --msgs "$MSGS" --size "$2" --no-progress >/dev/null 2>&1 || true
	wait $sp || true
	if [ "$subs" = 1 ]; then rate 'subscriber stats' <"$out"; else rate 'aggregated stats' <"$out"; fi
}
pub_sub_1() { pub_sub "$1" "$2" 1; }
pub_sub_5() { pub_sub "$1" "$2" 5; }
# Request/reply through a queue group of N responders (nats bench's service
# mode subscribes its responders as one queue group).
request_reply() {
	local responders=$3 clients=$4 what=$5
	# Started directly, not through the nats function, so that $! is the
	# CLI's own pid and kill reaches it.
	"$bin/nats" --no-context -s "$1" bench service serve bench.rr --clients "$responders" --no-progress >/dev/null 2>&1 &
	local sp=$!
	sleep 0.5
	local out
	out=$(timeout 120 "$bin/nats" --no-context -s "$1" bench service request bench.rr --clients "$clients" --msgs "$RR_MSGS" --size "$2" --no-progress 2>&1 || true)
	kill $sp 2>/dev/null || true
	wait $sp 2>/dev/null || true
	if [ "$what" = rate ]; then rate 'requester (aggregated )?stats' <<<"$out"; else avg_us <<<"$out"; fi
}
queue_group_4() { request_reply "$1" "$2" 4 4 rate; }
rr_latency() { request_reply "$1" "$2" 1 1 latency; }

# median of the runs that produced a figure; "failed" when none did.
median() { grep -E '^[0-9.]+$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "failed"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}' || true; }

report=benchmarks/out/nats-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "## ledge vs nats-server, NATS protocol ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Peer: $("$bin/nats-server" --version), CLI: nats $("$bin/nats" --version 2>&1)"
	echo "Command: PAIRS=$PAIRS MSGS=$MSGS RR_MSGS=$RR_MSGS CONNS=$CONNS benchmarks/nats.sh"
	echo
	echo "| scenario | size | ledge | nats-server | ledge / nats-server |"
	echo "|---|---|---|---|---|"
} | tee "$report"

start_ledge
start_nats
for scenario in pub_only pub_sub_1 pub_sub_5 queue_group_4 rr_latency; do
	for size in $SIZES; do
		: >"$work/a"
		: >"$work/b"
		for _ in $(seq "$PAIRS"); do
			$scenario nats://127.0.0.1:$LEDGE_PORT "$size" >>"$work/a"
			$scenario nats://127.0.0.1:$NATS_PORT "$size" >>"$work/b"
		done
		a=$(median <"$work/a")
		b=$(median <"$work/b")
		unit="msgs/s"
		[ "$scenario" = rr_latency ] && unit="µs avg"
		ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }')
		fails=$(( PAIRS - $(grep -cE '^[0-9.]+$' "$work/a" || true) ))
		[ "$fails" -gt 0 ] && ratio="$ratio ($fails of $PAIRS ledge runs failed)"
		printf '| %s | %s B | %s %s | %s %s | %s |\n' "$scenario" "$size" "$a" "$unit" "$b" "$unit" "$ratio" | tee -a "$report"
	done
done
stop_pid "$ledge_pid"
stop_pid "$nats_pid"

# Memory: each server fresh and alone, idle, then holding CONNS idle clients.
{
	echo
	echo "| memory | ledge | nats-server | ledge / nats-server |"
	echo "|---|---|---|---|"
} | tee -a "$report"
measure_memory() {
	local start=$1 port=$2
	$start
	local pid=$3
	pid=${!pid}
	sleep 1
	local idle
	idle=$(rss_kib "$pid")
	"$bin/idleconns" -addr 127.0.0.1:"$port" -n "$CONNS" >"$work/idle.out" 2>&1 &
	local ip=$!
	for _ in $(seq 600); do grep -q '^ready' "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
	if ! grep -q '^ready' "$work/idle.out"; then
		echo "idle connections did not open:" >&2
		cat "$work/idle.out" >&2
		exit 1
	fi
	sleep 2
	local loaded
	loaded=$(rss_kib "$pid")
	kill $ip
	wait $ip 2>/dev/null || true
	stop_pid "$pid"
	echo "$idle $loaded"
}
read -r l_idle l_loaded < <(measure_memory start_ledge $LEDGE_PORT ledge_pid)
read -r n_idle n_loaded < <(measure_memory start_nats $NATS_PORT nats_pid)
l_per=$(( (l_loaded - l_idle) * 1024 / CONNS ))
n_per=$(( (n_loaded - n_idle) * 1024 / CONNS ))
{
	printf '| RSS idle | %d KiB | %d KiB | %s |\n' "$l_idle" "$n_idle" "$(awk -v a="$l_idle" -v b="$n_idle" 'BEGIN {printf "%.2f", a/b}')"
	printf '| RSS per idle connection (%d conns) | %d B | %d B | %s |\n' "$CONNS" "$l_per" "$n_per" "$(awk -v a="$l_per" -v b="$n_per" 'BEGIN {printf "%.2f", a/b}')"
} | tee -a "$report"
echo
echo "report: $report"
