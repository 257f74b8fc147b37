#!/usr/bin/env bash
# benchmarks/mqtt.sh: ledge against mosquitto and nats-server on MQTT 3.1.1,
# side by side on this machine, with ledge-bench's own MQTT client (a lean
# client on epoll loops, not paho: see cmd/ledge-bench/mqtt.go).
#
# Each scenario runs on ledge, mosquitto and nats-server in turn (A B C A B C
# ..., PAIRS rounds); the figure is the median of each broker's runs and the
# ratios are ledge / peer (above 1: ledge delivers more). Every run is bounded
# by a message count, and the figure is the rate at which the subscribers got
# them: messages received / time from the first publish to the last receipt.
# Publishers run flat out but at most MAX_AHEAD deliveries ahead of the
# subscribers (ledge-bench -max-ahead): a hundred unthrottled publishers
# overrun any broker, and then each fails its own way (ledge and nats-server
# cut the subscriber off as a slow consumer, mosquitto queues without bound),
# which measures the overload policy, not the delivery rate. A broker that
# still drops messages gets its loss printed beside its rate. Memory: each broker fresh and alone,
# RSS before and while holding CONNS idle connections (keep alive pings on).
#
# Persistence, as each broker runs here:
#   ledge        -sync interval: stored messages are confirmed after the
#                periodic fsync (100 ms). QoS 1 messages for a persistent
#                session are stored in its log (MQTT_msgs) before the PUBACK;
#                a clean session's QoS 1 messages are not stored at all.
#   mosquitto    persistence false (its default): sessions and queues in RAM
#                only. Its queue limits are lifted (max_queued_messages 0,
#                max_inflight_messages 0) so that it measures delivery, not
#                drops; ledge's window towards a 3.1.1 client is 65,535.
#   nats-server  JetStream with file storage (its MQTT needs it): every QoS 1
#                message goes to the $MQTT_msgs stream on disk, sync as its
#                default (fsync every 2 minutes). Defaults otherwise.
#
# Usage: benchmarks/mqtt.sh
#   PAIRS=3 QOS0_MSGS=1000000 QOS1_MSGS=200000 FANOUT_SUBS=1000
#   FANOUT_MSGS=1000 SHARED_MSGS=500000 CONNS=10000 HOLD=15s PUBS=100
#   MAX_AHEAD=20000 FANOUT_AHEAD=200000 (deliveries due and not yet received)
#   PROFILE=1 also writes a CPU profile of ledge to benchmarks/out/.
# It installs mosquitto with apt-get and nats-server with go install into
# benchmarks/out/bin, builds ledge and ledge-bench there, takes the lock
# /tmp/ledge-bench.lock for the whole run (two benchmarks on two cores would
# measure each other), and prints a markdown report that it also saves in
# benchmarks/out/. It stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi

PAIRS=${PAIRS:-3}
PUBS=${PUBS:-100}
QOS0_MSGS=${QOS0_MSGS:-1000000}
QOS1_MSGS=${QOS1_MSGS:-200000}
FANOUT_SUBS=${FANOUT_SUBS:-1000}
FANOUT_MSGS=${FANOUT_MSGS:-1000}
SHARED_MSGS=${SHARED_MSGS:-500000}
WORKERS=${WORKERS:-5}
MAX_AHEAD=${MAX_AHEAD:-20000}
FANOUT_AHEAD=${FANOUT_AHEAD:-200000}
CONNS=${CONNS:-10000}
HOLD=${HOLD:-15s}
SIZE=${SIZE:-100}
PROFILE=${PROFILE:-}
LEDGE_PORT=21883
LEDGE_NATS_PORT=24223
MOSQ_PORT=31883
NATS_MQTT_PORT=41883
NATS_PORT=14223

# 10,000 connections need as many descriptors in the servers and the tool.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((CONNS + 1000)) ]; then
	echo "mqtt.sh: ulimit -n is $(ulimit -n), too few for CONNS=$CONNS" >&2
	exit 1
fi

bin=$PWD/benchmarks/out/bin
out=$PWD/benchmarks/out
mkdir -p "$bin"
export GOBIN=$bin
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends mosquitto
fi
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$bin/nats-server" ] || go install github.com/nats-io/nats-server/v2@latest
go build -o "$bin/ledge" ./cmd/ledge
go build -o "$bin/ledge-bench" ./cmd/ledge-bench

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
EOF
cat >"$work/nats.conf" <<EOF
server_name: ledge_bench
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$work/nats-js" }
mqtt { listen: 127.0.0.1:$NATS_MQTT_PORT }
EOF

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
	[ -n "$PROFILE" ] && prof=(-cpuprofile "$out/ledge-mqtt-$stamp.pprof")
	rm -rf "$work/ledge-data"
	"$bin/ledge" -mqtt-addr 127.0.0.1:$LEDGE_PORT -nats-addr 127.0.0.1:$LEDGE_NATS_PORT \
		-mqtt-ws-addr "" -mqtt-tls-addr "" -amqp-addr "" -stomp-addr "" -stomp-ws-addr "" -http-addr "" \
		-data-dir "$work/ledge-data" -sync interval \
		-log-level warn "${prof[@]}" >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $LEDGE_PORT
}
start_mosquitto() {
	"$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
	mosquitto_pid=$!
	pids+=("$mosquitto_pid")
	wait_port $MOSQ_PORT
}
start_nats() {
	rm -rf "$work/nats-js"
	"$bin/nats-server" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
	nats_pid=$!
	pids+=("$nats_pid")
	wait_port $NATS_MQTT_PORT
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

bench() { "$bin/ledge-bench" -proto mqtt -json -quiet -timeout 30s -size "$SIZE" "$@"; }
flood() { bench -max-ahead "$MAX_AHEAD" "$@"; }

# Scenarios: each runs once against the broker at $1 and prints
# "<received msgs/s> <lost> <expected>", or "failed".
figures() {
	jq -r 'if .receive == null then "failed" else "\(.receive.msgs_per_sec) \(.delivery.lost // 0) \(.delivery.expected // 0)" end' 2>/dev/null || echo failed
}
qos0_ingest() {
	{ flood -url "$1" -scenario fanin -clients "$PUBS" -count "$QOS0_MSGS" -subject 'site/{n}/temp' 2>>"$work/bench.err" || true; } | figures
}
qos1_ingest_stored() {
	{ flood -url "$1" -scenario fanin -clients "$PUBS" -count "$QOS1_MSGS" -subject 'site/{n}/temp' -qos 1 -persistent 2>>"$work/bench.err" || true; } | figures
}
qos1_ingest_clean() {
	{ flood -url "$1" -scenario fanin -clients "$PUBS" -count "$QOS1_MSGS" -subject 'site/{n}/temp' -qos 1 2>>"$work/bench.err" || true; } | figures
}
fanout() {
	{ bench -url "$1" -max-ahead "$FANOUT_AHEAD" -scenario fanout -clients "$FANOUT_SUBS" -count "$FANOUT_MSGS" -subject 'cmd/all' 2>>"$work/bench.err" || true; } | figures
}
shared_fanin() {
	{ flood -url "$1" -scenario queue -pubs "$PUBS" -clients "$WORKERS" -count "$SHARED_MSGS" -subject 'site/{n}/temp' 2>>"$work/bench.err" || true; } | figures
}

# median of the numbers on standard input; "failed" when there are none.
median() { grep -E '^[0-9.e+]+$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "failed"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}' || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
# cell: the median rate of a broker's runs, with its loss when it lost any.
cell() {
	local f=$1 rate lost exp
	rate=$(awk '{print $1}' "$f" | median)
	lost=$(awk '$1 != "failed" {l += $2} END {print l+0}' "$f")
	exp=$(awk '$1 != "failed" {e += $3} END {print e+0}' "$f")
	if [ "$rate" = failed ]; then echo "failed"; return; fi
	local s
	s="$(printf '%.0f' "$rate" | sed -E ':a;s/^([0-9]+)([0-9]{3})/\1,\2/;ta') msgs/s"
	if [ "$lost" -gt 0 ]; then
		s="$s ($(awk -v l="$lost" -v e="$exp" 'BEGIN {printf "%.1f", 100*l/e}')% lost)"
	fi
	echo "$s"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$out/mqtt-$stamp.md
{
	echo "## ledge vs mosquitto and nats-server, MQTT 3.1.1 ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Peers: $("$mosquitto" -h 2>&1 | head -1 || true), $("$bin/nats-server" --version)"
	echo "Command: PAIRS=$PAIRS PUBS=$PUBS QOS0_MSGS=$QOS0_MSGS QOS1_MSGS=$QOS1_MSGS FANOUT_SUBS=$FANOUT_SUBS FANOUT_MSGS=$FANOUT_MSGS SHARED_MSGS=$SHARED_MSGS WORKERS=$WORKERS MAX_AHEAD=$MAX_AHEAD FANOUT_AHEAD=$FANOUT_AHEAD CONNS=$CONNS HOLD=$HOLD benchmarks/mqtt.sh"
	echo
	echo "| scenario | ledge | mosquitto | nats-server | ledge / mosquitto | ledge / nats-server |"
	echo "|---|---|---|---|---|---|"
} | tee "$report"

start_ledge
start_mosquitto
start_nats
declare -A label=(
	[qos0_ingest]="QoS 0 ingest, $PUBS publishers → 1 wildcard subscriber, $SIZE B"
	[qos1_ingest_stored]="QoS 1 ingest, $PUBS publishers → 1 persistent-session subscriber (stored), $SIZE B"
	[qos1_ingest_clean]="QoS 1 ingest, $PUBS publishers → 1 clean-session subscriber, $SIZE B"
	[fanout]="fan-out 1 → $FANOUT_SUBS subscribers, QoS 0, deliveries"
	[shared_fanin]="shared subscription, $PUBS publishers → $WORKERS workers, QoS 0"
)
for scenario in qos0_ingest qos1_ingest_stored qos1_ingest_clean fanout shared_fanin; do
	: >"$work/a"
	: >"$work/b"
	: >"$work/c"
	for _ in $(seq "$PAIRS"); do
		$scenario mqtt://127.0.0.1:$LEDGE_PORT >>"$work/a"
		$scenario mqtt://127.0.0.1:$MOSQ_PORT >>"$work/b"
		$scenario mqtt://127.0.0.1:$NATS_MQTT_PORT >>"$work/c"
	done
	a=$(awk '{print $1}' "$work/a" | median)
	b=$(awk '{print $1}' "$work/b" | median)
	c=$(awk '{print $1}' "$work/c" | median)
	printf '| %s | %s | %s | %s | %s | %s |\n' "${label[$scenario]}" \
		"$(cell "$work/a")" "$(cell "$work/b")" "$(cell "$work/c")" "$(ratio "$a" "$b")" "$(ratio "$a" "$c")" | tee -a "$report"
done
stop_pid "$ledge_pid"
stop_pid "$mosquitto_pid"
stop_pid "$nats_pid"

# Memory: each broker fresh and alone, idle, then holding CONNS idle
# connections that ping every 15 s (keep alive 30 s).
{
	echo
	echo "| memory, $CONNS idle connections | ledge | mosquitto | nats-server | ledge / mosquitto | ledge / nats-server |"
	echo "|---|---|---|---|---|---|"
} | tee -a "$report"
measure_memory() {
	local start=$1 port=$2 pidvar=$3
	$start
	local pid=${!pidvar}
	sleep 1
	local idle
	idle=$(rss_kib "$pid")
	bench -url mqtt://127.0.0.1:"$port" -scenario idle -clients "$CONNS" -duration "$HOLD" -keepalive 30s \
		>"$work/idle.json" 2>"$work/idle.err" &
	local bp=$!
	for _ in $(seq 1200); do grep -q 'connections open' "$work/idle.err" 2>/dev/null && break; sleep 0.1; done
	sleep 2
	local loaded
	loaded=$(rss_kib "$pid")
	wait $bp || true
	local stayed
	stayed=$(jq -r '.idle.connected // 0' "$work/idle.json" 2>/dev/null || echo 0)
	stop_pid "$pid"
	echo "$idle $loaded $stayed"
}
read -r l_idle l_loaded l_stayed < <(measure_memory start_ledge $LEDGE_PORT ledge_pid)
read -r m_idle m_loaded m_stayed < <(measure_memory start_mosquitto $MOSQ_PORT mosquitto_pid)
read -r n_idle n_loaded n_stayed < <(measure_memory start_nats $NATS_MQTT_PORT nats_pid)
l_per=$(( (l_loaded - l_idle) * 1024 / CONNS ))
m_per=$(( (m_loaded - m_idle) * 1024 / CONNS ))
n_per=$(( (n_loaded - n_idle) * 1024 / CONNS ))
{
	printf '| RSS at start | %d KiB | %d KiB | %d KiB | %s | %s |\n' "$l_idle" "$m_idle" "$n_idle" "$(ratio "$l_idle" "$m_idle")" "$(ratio "$l_idle" "$n_idle")"
	printf '| RSS per idle connection | %d B | %d B | %d B | %s | %s |\n' "$l_per" "$m_per" "$n_per" "$(ratio "$l_per" "$m_per")" "$(ratio "$l_per" "$n_per")"
	printf '| connections still up after %s | %d | %d | %d | | |\n' "$HOLD" "$l_stayed" "$m_stayed" "$n_stayed"
} | tee -a "$report"
if [ -s "$work/bench.err" ]; then
	cp "$work/bench.err" "$out/mqtt-$stamp.err"
	echo
	echo "ledge-bench reported errors in some runs: $out/mqtt-$stamp.err"
fi
echo
echo "report: $report"
