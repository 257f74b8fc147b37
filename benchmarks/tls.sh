#!/usr/bin/env bash
# benchmarks/tls.sh: throughput over TLS, ledge against nats-server on the
# NATS protocol and against mosquitto on MQTT, side by side on this machine.
#
# Every broker serves TLS 1.2+ with the same ECDSA P-256 certificate, made
# for the run by benchmarks/tlsload -gen. Scenarios, each run A B A B ...
# (PAIRS pairs), the figure the median of each side, the ratio ledge / peer
# (above 1: ledge is faster):
#   nats pub/sub    nats bench, one publisher to one subscriber over TLS,
#                   MSGS messages of SIZE bytes (ledge: TLS after INFO, as
#                   nats-server does it)
#   mqtt qos0       benchmarks/tlsload, PUBS publishers to one subscriber of
#                   bench/# over MQTT 3.1.1 on TLS, QoS 0, MQTT_MSGS messages
#                   of SIZE bytes, within a window of MAX_AHEAD
# ledge runs in its default mode (no users: clients on loopback are let in),
# mosquitto with allow_anonymous and persistence off, nats-server plain.
#
# Usage: benchmarks/tls.sh      (PAIRS=3 MSGS=1000000 MQTT_MSGS=1000000 PUBS=10 SIZE=128)
# It takes /tmp/ledge-bench.lock, installs mosquitto with apt-get and
# nats-server and the nats CLI with go install into benchmarks/out/bin,
# prints a markdown report and saves it in benchmarks/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi

PAIRS=${PAIRS:-3}
MSGS=${MSGS:-1000000}
MQTT_MSGS=${MQTT_MSGS:-1000000}
PUBS=${PUBS:-10}
SIZE=${SIZE:-128}
MAX_AHEAD=${MAX_AHEAD:-20000}
LEDGE_NATS=25222
LEDGE_MQTT=25883
NATS_PORT=15222
MOSQ_PORT=35883

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
[ -x "$bin/nats" ] || go install github.com/nats-io/natscli/nats@latest
go build -o "$bin/ledge" ./cmd/ledge
go build -o "$bin/tlsload" ./benchmarks/tlsload

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin/tlsload" -gen "$work/pki"
ca=$work/pki/ca.pem cert=$work/pki/cert.pem key=$work/pki/key.pem
# mosquitto started as root drops to its own user, which must read them.
chmod a+rx "$work" "$work/pki"
chmod a+r "$ca" "$cert" "$key"

cat >"$work/mosquitto.conf" <<CONF
listener $MOSQ_PORT 127.0.0.1
cafile $ca
certfile $cert
keyfile $key
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
CONF
cat >"$work/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
tls { cert_file: "$cert", key_file: "$key" }
CONF

wait_port() {
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}
start_ledge() {
	rm -rf "$work/ledge-data"
	"$bin/ledge" -tls-cert "$cert" -tls-key "$key" -nats-addr 127.0.0.1:$LEDGE_NATS -mqtt-tls-addr 127.0.0.1:$LEDGE_MQTT \
		-mqtt-addr 127.0.0.1:25884 -mqtt-ws-addr "" -mqtt-wss-addr "" -amqp-addr "" -amqps-addr "" \
		-data-dir "$work/ledge-data" -log-level warn >"$work/ledge.log" 2>&1 &
	ledge_pid=$!
	pids+=("$ledge_pid")
	wait_port $LEDGE_NATS
	wait_port $LEDGE_MQTT
}
start_mosquitto() {
	"$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
	mosquitto_pid=$!
	pids+=("$mosquitto_pid")
	wait_port $MOSQ_PORT
}
start_nats() {
	"$bin/nats-server" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
	nats_pid=$!
	pids+=("$nats_pid")
	wait_port $NATS_PORT
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

nats() { "$bin/nats" --no-context --tlsca "$ca" "$@"; }
rate() { { grep -E "$1" || true; } | sed -E 's/.*stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , | tail -1; }
nats_pubsub() {
	local o=$work/sub.out
	timeout 120 "$bin/nats" --no-context --tlsca "$ca" -s "$1" bench sub bench.tls --msgs "$MSGS" --size "$SIZE" --no-progress >"$o" 2>&1 &
	local sp=$!
	sleep 0.5
	nats -s "$1" bench pub bench.tls --msgs "$MSGS" --size "$SIZE" --no-progress >/dev/null 2>&1 || true
	wait $sp || true
	rate 'subscriber stats' <"$o"
}
mqtt_qos0() {
	{ "$bin/tlsload" -addr "$1" -ca "$ca" -pubs "$PUBS" -count "$MQTT_MSGS" -size "$SIZE" -max-ahead "$MAX_AHEAD" 2>>"$work/tlsload.err" || true; } |
		jq -r 'select(.received == .expected) | .msgs_per_sec' 2>/dev/null || true
}
median() { grep -E '^[0-9.e+]+$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "failed"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}' || true; }
num() { [ "$1" = failed ] && echo failed || printf "%'.0f msgs/s" "$1"; }

report=$out/tls-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "## ledge over TLS vs nats-server and mosquitto ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(benchmarks/machine.sh)"
	echo "Peers: $("$bin/nats-server" --version), $("$mosquitto" -h 2>&1 | head -1 || true); TLS: ECDSA P-256, TLS 1.3 as negotiated"
	echo "Command: PAIRS=$PAIRS MSGS=$MSGS MQTT_MSGS=$MQTT_MSGS PUBS=$PUBS SIZE=$SIZE MAX_AHEAD=$MAX_AHEAD benchmarks/tls.sh"
	echo
	echo "| scenario | ledge | peer | ledge / peer |"
	echo "|---|---|---|---|"
} | tee "$report"

start_ledge
start_nats
start_mosquitto
for scenario in nats_pubsub mqtt_qos0; do
	: >"$work/a"
	: >"$work/b"
	for _ in $(seq "$PAIRS"); do
		if [ $scenario = nats_pubsub ]; then
			$scenario tls://127.0.0.1:$LEDGE_NATS >>"$work/a"
			$scenario tls://127.0.0.1:$NATS_PORT >>"$work/b"
		else
			$scenario 127.0.0.1:$LEDGE_MQTT >>"$work/a"
			$scenario 127.0.0.1:$MOSQ_PORT >>"$work/b"
		fi
	done
	a=$(median <"$work/a")
	b=$(median <"$work/b")
	peer=nats-server
	[ $scenario = mqtt_qos0 ] && peer=mosquitto
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }')
	printf '| %s, %s B | %s | %s: %s | %s |\n' "$scenario" "$SIZE" "$(num "$a")" "$peer" "$(num "$b")" "$r" | tee -a "$report"
done
stop_pid "$ledge_pid"
stop_pid "$nats_pid"
stop_pid "$mosquitto_pid"
echo
echo "saved in $report"
