#!/usr/bin/env bash
# benchmarks/stomp.sh: ledge against RabbitMQ's STOMP plugin, side by side
# on this machine (issues 7 and 9), with ledge-bench's own STOMP client (a
# lean client on epoll loops, not go-stomp: see cmd/ledge-bench/stomp.go).
#
# The issue's figure: 128-byte messages through one /queue, 4 publishers
# SENDing to it and 4 subscribers competing for its messages with
# ack:client-individual (an ACK per message) and a prefetch-count of
# PREFETCH. A /queue is a durable queue in both brokers. Two ways:
#   persistent  persistent:true and a receipt per SEND, at most WINDOW
#               awaited per publisher; a SEND counts once its receipt came
#   transient   persistent:false, no receipts; publishers at most MAX_AHEAD
#               deliveries ahead of the subscribers (ledge-bench
#               -max-ahead), so that the figure is the rate both brokers
#               deliver, not how a backlog grows
# Each runs on ledge and RabbitMQ in turn (A B A B ..., PAIRS rounds),
# every run on a queue of its own (STOMP cannot purge one, so a run never
# sees another's messages); the figure is the median of each broker's runs
# of the subscribers' rate (messages received and acknowledged / time from
# the first SEND to the last MESSAGE), and the ratio is ledge / RabbitMQ
# (above 1: ledge delivers more). Memory: the RSS of each broker at start
# and its peak while the scenario runs, sampled every 200 ms; for RabbitMQ
# the RSS of its Erlang VM (beam.smp), the whole broker. The peak of the
# anonymous part (RssAnon) is shown too, because ledge's log is mmap'd:
# the pages of its segments count in its RSS, where RabbitMQ's file I/O
# goes through the page cache, which no process's RSS shows.
#
# Persistence, like for like:
#   persistent  ledge -sync always: a SEND's receipt comes once the message
#               is in the queue's log and fsynced (group commit: one fsync
#               for what arrived together). RabbitMQ (the Debian package's
#               defaults, classic queues): the receipt of a SEND is its
#               publisher confirm, which for a persistent message in a
#               durable queue comes after the message store or queue index
#               fsynced it (batched too). fsync before the receipt on both.
#   transient   ledge -sync TRANSIENT_SYNC (never: no fsync): a /queue is a
#               file-backed stream in ledge, so every message is written to
#               the log even without persistent:true, and the kernel writes
#               its pages back when it will. RabbitMQ keeps transient
#               messages of a durable queue in memory (paged out only under
#               its memory alarm, which a run of this size does not reach)
#               and never fsyncs them. Neither waits for the disk; ledge
#               writes more. TRANSIENT_SYNC=interval fsyncs every 100 ms,
#               and then a message is delivered only after the fsync that
#               covers it (ledge's readers see only what the sync policy
#               calls stored): the rate becomes MAX_AHEAD per interval and
#               the latency that interval, a figure of the setting, not of
#               the broker's speed.
#
# Usage: benchmarks/stomp.sh
#   PAIRS=3 PERSIST_MSGS=200000 TRANSIENT_MSGS=400000 WINDOW=256
#   PREFETCH=100 MAX_AHEAD=20000 SIZE=128 TRANSIENT_SYNC=never
#   PROFILE=1 also writes CPU profiles of ledge to benchmarks/out/.
# It installs rabbitmq-server with apt-get if missing (benchmarks/rabbitmq.sh
# starts and stops it, with the rabbitmq_stomp plugin), builds ledge and
# ledge-bench into benchmarks/out/bin, takes the lock /tmp/ledge-bench.lock
# for the whole run, and prints a markdown report that it also saves in
# benchmarks/out/. It stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi

PAIRS=${PAIRS:-3}
PERSIST_MSGS=${PERSIST_MSGS:-200000}
TRANSIENT_MSGS=${TRANSIENT_MSGS:-400000}
WINDOW=${WINDOW:-256}
PREFETCH=${PREFETCH:-100}
MAX_AHEAD=${MAX_AHEAD:-20000}
SIZE=${SIZE:-128}
TRANSIENT_SYNC=${TRANSIENT_SYNC:-never}
PROFILE=${PROFILE:-}
LEDGE_PORT=26613
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
ledge_pid=""
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
# start_ledge SYNC: ledge with STOMP on LEDGE_PORT and nothing else
# listening (the AMQP gateway STOMP sits on runs without its port), its
# data in a fresh folder.
start_ledge() {
	local prof=()
	[ -n "$PROFILE" ] && prof=(-cpuprofile "$out/ledge-stomp-$1-$stamp.pprof")
	rm -rf "$work/ledge-data"
	"$bin/ledge" -stomp-addr 127.0.0.1:$LEDGE_PORT -stomp-ws-addr "" -stomp-tls-addr "" \
		-amqp-addr "" -nats-addr "" -mqtt-addr "" -mqtt-ws-addr "" -mqtt-tls-addr "" -http-addr "" \
		-data-dir "$work/ledge-data" -sync "$1" -log-level warn "${prof[@]}" >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $LEDGE_PORT
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }
anon_kib() { awk '/^RssAnon:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }

# sample_rss PID FILE: the peak RSS of PID in KiB and the peak of its
# anonymous part, written to FILE every 200 ms until killed.
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

run_no=0
bench() {
	"$bin/ledge-bench" -proto stomp -json -quiet -timeout 60s -size "$SIZE" \
		-scenario queue -pubs 4 -subs 4 -ack client-individual -prefetch "$PREFETCH" "$@"
}

# Scenarios: each runs once against the broker at $1 and prints
# "<received msgs/s> <lost> <expected> <p99 latency ms>", or "failed".
figures() {
	jq -r 'if .receive == null or .errors > 0 then "failed" else "\(.receive.msgs_per_sec) \(.delivery.lost // 0) \(.delivery.expected // 0) \((.latency.p99_ns // 0) / 1e6)" end' 2>/dev/null || echo failed
}
persistent() {
	run_no=$((run_no + 1))
	{ bench -url "$1" -subject "/queue/ledge-bench.persistent.$run_no" -durable -confirm -inflight "$WINDOW" \
		-count "$PERSIST_MSGS" 2>>"$work/bench.err" || true; } | figures
}
transient() {
	run_no=$((run_no + 1))
	{ bench -url "$1" -subject "/queue/ledge-bench.transient.$run_no" -max-ahead "$MAX_AHEAD" \
		-count "$TRANSIENT_MSGS" 2>>"$work/bench.err" || true; } | figures
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
	local n
	n=$(grep -c failed "$f" || true)
	[ "$n" -gt 0 ] && s="$s, $n of $(wc -l <"$f") runs failed"
	echo "$s"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k/1024}'; }

report=$out/stomp-$stamp.md
{
	echo "## ledge vs RabbitMQ's STOMP plugin ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Peer: $(rabbitmq_version), rabbitmq_stomp plugin"
	echo "ledge: $(git describe --always --dirty 2>/dev/null || echo unknown), ledge-bench -proto stomp (its own client)"
	echo "Command: PAIRS=$PAIRS PERSIST_MSGS=$PERSIST_MSGS TRANSIENT_MSGS=$TRANSIENT_MSGS WINDOW=$WINDOW PREFETCH=$PREFETCH MAX_AHEAD=$MAX_AHEAD SIZE=$SIZE TRANSIENT_SYNC=$TRANSIENT_SYNC benchmarks/stomp.sh"
	echo "Settings: 4 publishers, 4 subscribers of one /queue, ack:client-individual, prefetch-count $PREFETCH;" \
		"persistent: persistent:true, a receipt per SEND (at most $WINDOW awaited each), ledge -sync always, RabbitMQ's confirms;" \
		"transient: no persistent header, no receipts, ledge -sync $TRANSIENT_SYNC (file-backed queue, no fsync waited for), RabbitMQ in memory."
	echo
	echo "| scenario | ledge | RabbitMQ | ledge / RabbitMQ | target |"
	echo "|---|---|---|---|---|"
} | tee "$report"

rabbitmq_start "$work/rabbitmq" $RABBIT_PORT $RABBIT_STOMP_PORT
beam_pid=$(rabbitmq_beam_pid)
declare -A label=(
	[persistent]="persistent:true + receipts, /queue, 4 → 4, client-individual, $SIZE B"
	[transient]="transient, /queue, 4 → 4, client-individual, $SIZE B"
)
declare -A sync=([persistent]=always [transient]=$TRANSIENT_SYNC)
declare -A l_start l_peak r_peak l_anon r_anon
r_start=""
for scenario in persistent transient; do
	start_ledge "${sync[$scenario]}"
	sleep 2 # both settled before their idle RSS is read
	l_start[$scenario]=$(rss_kib "$ledge_pid")
	[ -z "$r_start" ] && r_start=$(rss_kib "$beam_pid")
	: >"$work/a"
	: >"$work/b"
	echo 0 0 >"$work/a.rss"
	echo 0 0 >"$work/b.rss"
	sample_rss "$ledge_pid" "$work/a.rss" &
	sa=$!
	sample_rss "$beam_pid" "$work/b.rss" &
	sb=$!
	for _ in $(seq "$PAIRS"); do
		$scenario "stomp://guest:guest@127.0.0.1:$LEDGE_PORT" >>"$work/a"
		$scenario "stomp://guest:guest@127.0.0.1:$RABBIT_STOMP_PORT" >>"$work/b"
	done
	kill "$sa" "$sb" 2>/dev/null || true
	wait "$sa" "$sb" 2>/dev/null || true
	read -r l_peak[$scenario] l_anon[$scenario] <"$work/a.rss"
	read -r r_peak[$scenario] r_anon[$scenario] <"$work/b.rss"
	stop_pid "$ledge_pid"
	a=$(awk '{print $1}' "$work/a" | median)
	b=$(awk '{print $1}' "$work/b" | median)
	printf '| %s | %s | %s | %s | %s |\n' "${label[$scenario]}" \
		"$(cell "$work/a")" "$(cell "$work/b")" "$(ratio "$a" "$b")" "≥ 3" | tee -a "$report"
done
{
	echo
	echo "| memory (RSS; RabbitMQ: beam.smp) | ledge | RabbitMQ | ledge / RabbitMQ |"
	echo "|---|---|---|---|"
	printf '| at start | %s | %s | %s |\n' "$(mib "${l_start[persistent]}")" "$(mib "$r_start")" "$(ratio "${l_start[persistent]}" "$r_start")"
	for scenario in persistent transient; do
		printf '| peak during %s | %s | %s | %s |\n' "$scenario" "$(mib "${l_peak[$scenario]}")" \
			"$(mib "${r_peak[$scenario]}")" "$(ratio "${l_peak[$scenario]}" "${r_peak[$scenario]}")"
	done
	for scenario in persistent transient; do
		printf '| peak during %s, anonymous only (RssAnon) | %s | %s | %s |\n' "$scenario" "$(mib "${l_anon[$scenario]}")" \
			"$(mib "${r_anon[$scenario]}")" "$(ratio "${l_anon[$scenario]}" "${r_anon[$scenario]}")"
	done
} | tee -a "$report"
rabbitmq_stop

if [ -s "$work/bench.err" ]; then
	cp "$work/bench.err" "$out/stomp-$stamp.err"
	echo
	echo "ledge-bench reported errors in some runs: $out/stomp-$stamp.err"
fi
echo
echo "report: $report"
