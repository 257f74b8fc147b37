#!/usr/bin/env bash
# benchmarks/amqp.sh: ledge against RabbitMQ on AMQP 0-9-1, side by side on
# this machine (issue 8), with ledge-bench's own AMQP client (a lean client
# on epoll loops, not amqp091-go: see cmd/ledge-bench/amqp.go).
#
# The issue's two scenarios, 128-byte messages, 4 publishers and 4
# consumers sharing one queue through the default exchange, each consumer
# with prefetch PREFETCH and an ack per message:
#   persistent  durable queue, persistent messages (delivery mode 2),
#               publisher confirms with at most WINDOW unconfirmed per
#               publisher; a publish counts once confirmed
#   transient   non-durable queue, transient messages, no confirms;
#               publishers at most MAX_AHEAD deliveries ahead of the
#               consumers (ledge-bench -max-ahead), so that the figure is
#               the rate both brokers deliver, not how a backlog grows
# Each runs on ledge and RabbitMQ in turn (A B A B ..., PAIRS rounds); the
# figure is the median of each broker's runs of the consumers' rate
# (messages received and acknowledged / time from the first publish to the
# last receipt), and the ratio is ledge / RabbitMQ (above 1: ledge delivers
# more). Memory: the RSS of each broker at start and its peak while the
# scenario runs, sampled every 200 ms; for RabbitMQ the RSS of its Erlang
# VM (beam.smp), the whole broker. The peak of the anonymous part
# (RssAnon) is shown too, because ledge's log is mmap'd: the pages of its
# segments count in its RSS, where RabbitMQ's file I/O goes through the
# page cache, which no process's RSS shows.
#
# Persistence, as each broker runs here:
#   ledge     -sync always: a publish is confirmed once it is in the log
#             and fsynced (group commit: one fsync for what arrived
#             together). A durable queue is a file-storage stream; a
#             transient queue a memory stream.
#   RabbitMQ  the Debian package's defaults: classic queues; a persistent
#             message in a durable queue is confirmed after the message
#             store or queue index has fsynced it (RabbitMQ batches those
#             fsyncs too); transient messages in a non-durable queue stay
#             in memory (paged out only under its memory alarm, which a
#             run of this size does not reach).
#   So: fsync before the confirm on both for persistent; memory on both
#   for transient.
#
# Usage: benchmarks/amqp.sh
#   PAIRS=3 PERSIST_MSGS=400000 TRANSIENT_MSGS=1000000 WINDOW=256
#   PREFETCH=100 MAX_AHEAD=20000 SIZE=128
#   PROFILE=1 also writes a CPU profile of ledge to benchmarks/out/.
# It installs rabbitmq-server with apt-get if missing (benchmarks/rabbitmq.sh
# starts and stops it, with the rabbitmq_stomp plugin for the STOMP
# benchmark), builds ledge and ledge-bench into benchmarks/out/bin, takes
# the lock /tmp/ledge-bench.lock for the whole run, and prints a markdown
# report that it also saves in benchmarks/out/. It stops every process it
# started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi

PAIRS=${PAIRS:-3}
PERSIST_MSGS=${PERSIST_MSGS:-400000}
TRANSIENT_MSGS=${TRANSIENT_MSGS:-1000000}
WINDOW=${WINDOW:-256}
PREFETCH=${PREFETCH:-100}
MAX_AHEAD=${MAX_AHEAD:-20000}
SIZE=${SIZE:-128}
PROFILE=${PROFILE:-}
LEDGE_PORT=25672
LEDGE_NATS_PORT=24225
RABBIT_PORT=35672
RABBIT_STOMP_PORT=36613

bin=$PWD/benchmarks/out/bin
out=$PWD/benchmarks/out
mkdir -p "$bin"
. benchmarks/rabbitmq.sh
rabbitmq_install
go build -o "$bin/ledge" ./cmd/ledge
go build -o "$bin/ledge-bench" ./cmd/ledge-bench

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rabbitmq_stop
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stamp=$(date -u +%Y%m%dT%H%M%SZ)
wait_port() {
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}
start_ledge() {
	local prof=()
	[ -n "$PROFILE" ] && prof=(-cpuprofile "$out/ledge-amqp-$stamp.pprof")
	rm -rf "$work/ledge-data"
	"$bin/ledge" -amqp-addr 127.0.0.1:$LEDGE_PORT -nats-addr 127.0.0.1:$LEDGE_NATS_PORT \
		-mqtt-addr "" -mqtt-ws-addr "" -mqtt-tls-addr "" -stomp-addr "" -stomp-ws-addr "" -http-addr "" \
		-data-dir "$work/ledge-data" -sync always \
		-log-level warn "${prof[@]}" >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $LEDGE_PORT
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }
anon_kib() { awk '/^RssAnon:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }

# sample_rss PID FILE: the peak RSS of PID in KiB, and the peak of its
# anonymous part (RSS less mapped files: ledge's log is mmap'd, so its
# pages count in ledge's RSS, where RabbitMQ's file reads sit in the page
# cache and do not), written to FILE every 200 ms until killed.
sample_rss() {
	local peak=0 apeak=0 r a
	while kill -0 "$1" 2>/dev/null; do
		r=$(rss_kib "$1")
		a=$(anon_kib "$1")
		[ "${r:-0}" -gt "$peak" ] && peak=$r
		[ "${a:-0}" -gt "$apeak" ] && apeak=$a
		echo "$peak $apeak" >"$2"
		sleep 0.2
	done
}

bench() { "$bin/ledge-bench" -proto amqp -json -quiet -timeout 60s -size "$SIZE" \
	-scenario queue -pubs 4 -subs 4 -exchange "" -prefetch "$PREFETCH" "$@"; }

# Scenarios: each runs once against the broker at $1 and prints
# "<received msgs/s> <lost> <expected> <p99 latency ms>", or "failed".
figures() {
	jq -r 'if .receive == null or .errors > 0 then "failed" else "\(.receive.msgs_per_sec) \(.delivery.lost // 0) \(.delivery.expected // 0) \((.latency.p99_ns // 0) / 1e6)" end' 2>/dev/null || echo failed
}
persistent() {
	{ bench -url "$1" -subject ledge-bench.durable -durable -confirm -inflight "$WINDOW" -count "$PERSIST_MSGS" 2>>"$work/bench.err" || true; } | figures
}
transient() {
	{ bench -url "$1" -subject ledge-bench.transient -max-ahead "$MAX_AHEAD" -count "$TRANSIENT_MSGS" 2>>"$work/bench.err" || true; } | figures
}

# median of the numbers on standard input; "failed" when there are none.
median() { grep -E '^[0-9.e+]+$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "failed"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}' || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
# cell: the median rate of a broker's runs, its p99 latency, and its loss
# when it lost any.
cell() {
	local f=$1 rate lost exp p99
	rate=$(awk '{print $1}' "$f" | median)
	if [ "$rate" = failed ]; then echo "failed"; return; fi
	p99=$(awk '$1 != "failed" {print $4}' "$f" | median)
	lost=$(awk '$1 != "failed" {l += $2} END {print l+0}' "$f")
	exp=$(awk '$1 != "failed" {e += $3} END {print e+0}' "$f")
	local s
	s="$(printf '%.0f' "$rate" | sed -E ':a;s/^([0-9]+)([0-9]{3})/\1,\2/;ta') msgs/s (p99 $(printf '%.1f' "$p99") ms)"
	if [ "$lost" -gt 0 ]; then
		s="$s, $(awk -v l="$lost" -v e="$exp" 'BEGIN {printf "%.2f", 100*l/e}')% lost"
	fi
	echo "$s"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k/1024}'; }

report=$out/amqp-$stamp.md
{
	echo "## ledge vs RabbitMQ, AMQP 0-9-1 ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Peer: $(rabbitmq_version)"
	echo "Command: PAIRS=$PAIRS PERSIST_MSGS=$PERSIST_MSGS TRANSIENT_MSGS=$TRANSIENT_MSGS WINDOW=$WINDOW PREFETCH=$PREFETCH MAX_AHEAD=$MAX_AHEAD SIZE=$SIZE benchmarks/amqp.sh"
	echo
	echo "| scenario | ledge | RabbitMQ | ledge / RabbitMQ | target |"
	echo "|---|---|---|---|---|"
} | tee "$report"

start_ledge
rabbitmq_start "$work/rabbitmq" $RABBIT_PORT $RABBIT_STOMP_PORT
beam_pid=$(rabbitmq_beam_pid)
sleep 2 # both settled before their idle RSS is read
l_start=$(rss_kib "$ledge_pid")
r_start=$(rss_kib "$beam_pid")
declare -A label=(
	[persistent]="persistent + confirms, durable queue, 4 → 4, $SIZE B"
	[transient]="transient, non-durable queue, 4 → 4, $SIZE B"
)
declare -A target=([persistent]="≥ 3" [transient]="≥ 2")
declare -A l_peak r_peak l_anon r_anon
for scenario in persistent transient; do
	: >"$work/a"
	: >"$work/b"
	echo 0 0 >"$work/a.rss"
	echo 0 0 >"$work/b.rss"
	sample_rss "$ledge_pid" "$work/a.rss" &
	sa=$!
	sample_rss "$beam_pid" "$work/b.rss" &
	sb=$!
	for _ in $(seq "$PAIRS"); do
		$scenario "amqp://guest:guest@127.0.0.1:$LEDGE_PORT/" >>"$work/a"
		$scenario "amqp://guest:guest@127.0.0.1:$RABBIT_PORT/" >>"$work/b"
	done
	kill "$sa" "$sb" 2>/dev/null || true
	wait "$sa" "$sb" 2>/dev/null || true
	read -r l_peak[$scenario] l_anon[$scenario] <"$work/a.rss"
	read -r r_peak[$scenario] r_anon[$scenario] <"$work/b.rss"
	a=$(awk '{print $1}' "$work/a" | median)
	b=$(awk '{print $1}' "$work/b" | median)
	printf '| %s | %s | %s | %s | %s |\n' "${label[$scenario]}" \
		"$(cell "$work/a")" "$(cell "$work/b")" "$(ratio "$a" "$b")" "${target[$scenario]}" | tee -a "$report"
done
{
	echo
	echo "| memory (RSS; RabbitMQ: beam.smp) | ledge | RabbitMQ | ledge / RabbitMQ | target |"
	echo "|---|---|---|---|---|"
	printf '| at start | %s | %s | %s | ≤ 0.1 |\n' "$(mib "$l_start")" "$(mib "$r_start")" "$(ratio "$l_start" "$r_start")"
	for scenario in persistent transient; do
		printf '| peak during %s | %s | %s | %s | ≤ 0.1 |\n' "$scenario" "$(mib "${l_peak[$scenario]}")" \
			"$(mib "${r_peak[$scenario]}")" "$(ratio "${l_peak[$scenario]}" "${r_peak[$scenario]}")"
	done
	for scenario in persistent transient; do
		printf '| peak during %s, anonymous only (RssAnon) | %s | %s | %s | |\n' "$scenario" "$(mib "${l_anon[$scenario]}")" \
			"$(mib "${r_anon[$scenario]}")" "$(ratio "${l_anon[$scenario]}" "${r_anon[$scenario]}")"
	done
} | tee -a "$report"
stop_pid "$ledge_pid"
rabbitmq_stop

if [ -s "$work/bench.err" ]; then
	cp "$work/bench.err" "$out/amqp-$stamp.err"
	echo
	echo "ledge-bench reported errors in some runs: $out/amqp-$stamp.err"
fi
echo
echo "report: $report"
