#!/usr/bin/env bash
# benchmarks/watched.sh: the cost of being watched. MQTT QoS 0 ingest (the
# qos0_ingest scenario of benchmarks/mqtt.sh) against ledge in three ways,
# alternated (A B C A B C ..., PAIRS rounds), the figure being the median of
# each:
#   off        the HTTP port disabled (-http-addr ""): no monitor, and the
#              logs read no clock for their latency histograms;
#   unwatched  the HTTP port on (the default), nobody asking;
#   watched    /metrics scraped every second, as Prometheus does, and the
#              console's polling every 2 s (/api/server, /readyz and
#              /api/queues, what its queue tab reads).
# The ratios are watched / unwatched (the target: under 2% lost) and
# unwatched / off (what merely having the port costs). Beside the rates,
# ledge's own CPU time per message (utime + stime from /proc over the run,
# HTTP requests included): on a shared machine the rate moves with the
# neighbours' load by more than 2%, the CPU a message costs much less. The pollers are
# curl processes on the same machine, so their own CPU is in the figure; a
# real Prometheus scrapes from elsewhere.
#
# Usage: benchmarks/watched.sh
#   PAIRS=5 PUBS=100 QOS0_MSGS=1000000 SIZE=100 MAX_AHEAD=20000
# It builds ledge and ledge-bench into benchmarks/out/bin, takes the lock
# /tmp/ledge-bench.lock for the whole run, prints a markdown report that it
# also saves in benchmarks/out/, and stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi

PAIRS=${PAIRS:-5}
PUBS=${PUBS:-100}
QOS0_MSGS=${QOS0_MSGS:-1000000}
SIZE=${SIZE:-100}
MAX_AHEAD=${MAX_AHEAD:-20000}
MQTT_PORT=22883
NATS_PORT=24333
HTTP_PORT=28222

bin=$PWD/benchmarks/out/bin
out=$PWD/benchmarks/out
mkdir -p "$bin"
go build -o "$bin/ledge" ./cmd/ledge
go build -o "$bin/ledge-bench" ./cmd/ledge-bench
command -v curl >/dev/null || { echo "watched.sh needs curl" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}
# cpu_ticks PID prints the user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# start_ledge HTTP_ADDR starts a fresh ledge.
start_ledge() {
	rm -rf "$work/ledge-data"
	"$bin/ledge" -mqtt-addr 127.0.0.1:$MQTT_PORT -nats-addr 127.0.0.1:$NATS_PORT -amqp-addr "" \
		-mqtt-ws-addr "" -mqtt-tls-addr "" -stomp-addr "" -stomp-ws-addr "" -http-addr "$1" -data-dir "$work/ledge-data" -sync interval \
		-log-level warn >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $MQTT_PORT
}

# watch polls the HTTP port as Prometheus and the console do, until killed.
watch() {
	local base=http://127.0.0.1:$HTTP_PORT
	(while :; do curl -sf -o /dev/null "$base/metrics" || true; sleep 1; done) &
	scrape_pid=$!
	(while :; do
		for p in /api/server /readyz '/api/queues?limit=1000'; do curl -sf -o /dev/null "$base$p" || true; done
		sleep 2
	done) &
	console_pid=$!
	pids+=("$scrape_pid" "$console_pid")
}
unwatch() {
	stop_pid "$scrape_pid"
	stop_pid "$console_pid"
}

# run_ingest prints "msgs/s lost cpu-µs-per-message" for one run against
# the ledge started last.
run_ingest() {
	local before after result
	before=$(cpu_ticks "$ledge_pid")
	result=$(ingest_once)
	after=$(cpu_ticks "$ledge_pid")
	[ "$result" = failed ] && { echo failed; return; }
	echo "$result $(awk -v t=$((after - before)) -v hz="$hz" -v n="$QOS0_MSGS" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')"
}

ingest_once() {
	{ "$bin/ledge-bench" -proto mqtt -json -quiet -timeout 30s -size "$SIZE" -max-ahead "$MAX_AHEAD" \
		-url mqtt://127.0.0.1:$MQTT_PORT -scenario fanin -clients "$PUBS" -count "$QOS0_MSGS" \
		-subject 'site/{n}/temp' 2>>"$work/bench.err" || true; } |
		jq -r 'if .receive == null then "failed" else "\(.receive.msgs_per_sec) \(.delivery.lost // 0)" end' 2>/dev/null || echo failed
}

median() { grep -E '^[0-9.e+]+$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "failed"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}' || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.3f", a / b; else print "n/a" }'; }
rate() { printf '%.0f' "$1" | sed -E ':a;s/^([0-9]+)([0-9]{3})/\1,\2/;ta'; }

: >"$work/off"
: >"$work/unwatched"
: >"$work/watched"
scrapes=0
for _ in $(seq "$PAIRS"); do
	start_ledge ""
	run_ingest >>"$work/off"
	stop_pid "$ledge_pid"

	start_ledge 127.0.0.1:$HTTP_PORT
	run_ingest >>"$work/unwatched"
	stop_pid "$ledge_pid"

	start_ledge 127.0.0.1:$HTTP_PORT
	wait_port $HTTP_PORT
	watch
	run_ingest >>"$work/watched"
	# The broker still answers the scrape at the end of the run.
	# (Read whole before grep: with pipefail, grep -q leaving early fails curl's write.)
	final=$(curl -sf --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" || true)
	grep -q '^ledge_messages_received_total{protocol="mqtt"}' <<<"$final" && scrapes=$((scrapes + 1))
	unwatch
	stop_pid "$ledge_pid"
done

off=$(awk '{print $1}' "$work/off" | median)
unwatched=$(awk '{print $1}' "$work/unwatched" | median)
watched=$(awk '{print $1}' "$work/watched" | median)
off_cpu=$(awk '{print $3}' "$work/off" | median)
unwatched_cpu=$(awk '{print $3}' "$work/unwatched" | median)
watched_cpu=$(awk '{print $3}' "$work/watched" | median)
lost=$(cat "$work/off" "$work/unwatched" "$work/watched" | awk '$1 != "failed" {l += $2} END {print l+0}')

stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$out/watched-$stamp.md
{
	echo "## The cost of being watched: MQTT QoS 0 ingest ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Command: PAIRS=$PAIRS PUBS=$PUBS QOS0_MSGS=$QOS0_MSGS SIZE=$SIZE MAX_AHEAD=$MAX_AHEAD benchmarks/watched.sh"
	echo
	echo "| ledge | QoS 0 ingest, $PUBS publishers → 1 subscriber, $SIZE B (median of $PAIRS) | ratio | ledge CPU per message | ratio |"
	echo "|---|---|---|---|---|"
	echo "| HTTP port off | $(rate "$off") msgs/s | | $off_cpu µs | |"
	echo "| HTTP port on, unwatched | $(rate "$unwatched") msgs/s | $(ratio "$unwatched" "$off") of off | $unwatched_cpu µs | $(ratio "$unwatched_cpu" "$off_cpu") of off |"
	echo "| watched: /metrics every 1 s, console every 2 s | $(rate "$watched") msgs/s | $(ratio "$watched" "$unwatched") of unwatched | $watched_cpu µs | $(ratio "$watched_cpu" "$unwatched_cpu") of unwatched |"
	echo
	echo "Runs (msgs/s): off $(awk '{printf "%s ", $1}' "$work/off"); unwatched $(awk '{printf "%s ", $1}' "$work/unwatched"); watched $(awk '{printf "%s ", $1}' "$work/watched")"
	echo "Runs (ledge CPU µs per message): off $(awk '{printf "%s ", $3}' "$work/off"); unwatched $(awk '{printf "%s ", $3}' "$work/unwatched"); watched $(awk '{printf "%s ", $3}' "$work/watched")"
	echo "Messages lost in all runs: $lost. Watched runs whose broker answered /metrics at the end: $scrapes of $PAIRS."
} | tee "$report"
if [ -s "$work/bench.err" ]; then
	cp "$work/bench.err" "$out/watched-$stamp.err"
	echo "ledge-bench reported errors in some runs: $out/watched-$stamp.err"
fi
echo
echo "report: $report"
