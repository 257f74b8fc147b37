#!/usr/bin/env bash
# benchmarks/bridge.sh: store-and-forward to a NATS/JetStream hub, ledge's
# uplink against a nats-server leaf node with JetStream whose stream the
# hub sources (the NATS way of doing this), and against a mosquitto bridge
# into the hub's MQTT listener (the MQTT way), on this machine.
#
# Edges (EDGES):
#   ledge                -sync never, -uplink to the hub with the defaults
#   leaf                 nats-server with JetStream domain edge, its stream
#                        sourced by the hub's over $JS.edge.API
#   mosquitto            mosquitto with its default bridge settings
#                        (max_queued_messages 1000, restart_timeout 5 30),
#                        persistence false, QoS 1 both ways
#   mosquitto-unlimited  the same with max_queued_messages 0: no limit, the
#                        whole backlog in RAM
#
# For each edge (ledge, then the leaf node):
#   forward   BACKLOG SIZE-byte messages published at the edge with the hub
#             up: time until the hub has them all (msgs/s end to end)
#   outage    the hub stopped, BACKLOG more published at the edge, the edge's
#             RSS with that backlog; the hub started again on its store:
#             time to the first backlog message at the hub and to the
#             last; messages lost or duplicated; bytes on the uplink per
#             message (the hub's in_bytes over the catch-up)
#
# Usage: benchmarks/bridge.sh        (BACKLOG=200000 SIZE=100)
# Run under: flock /tmp/ledge-bench.lock benchmarks/bridge.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BACKLOG=${BACKLOG:-200000}
SIZE=${SIZE:-100}
EDGES=${EDGES:-"ledge leaf mosquitto mosquitto-unlimited"}
LEDGE_ARGS=${LEDGE_ARGS:-}
HUB_PORT=24310
HUB_MON=28310
HUB_LEAF=27310
HUB_MQTT=21310
EDGE_PORT=24311

bin=$PWD/benchmarks/out/bin
mkdir -p "$bin"
export GOBIN=$bin
[ -x "$bin/nats-server" ] || go install github.com/nats-io/nats-server/v2@latest
[ -x "$bin/nats" ] || go install github.com/nats-io/natscli/nats@latest
case " $EDGES " in *" mosquitto"*)
	if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
		sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get update -q
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends mosquitto
	fi ;;
esac
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
go build -o "$bin/ledge" ./cmd/ledge
go build -o "$bin/ledge-bench" ./cmd/ledge-bench

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# hub_msgs: the messages in the hub's streams, not counting the MQTT
# listener's own ($MQTT_sess holds the bridge's session).
hub_msgs() {
	curl -s "http://127.0.0.1:$HUB_MON/jsz?streams=true" |
		jq -r '[.account_details[]?.stream_detail[]? | select(.name | startswith("$MQTT") | not) | .state.messages] | add // 0'
}
hub_in_bytes() { curl -s "http://127.0.0.1:$HUB_MON/varz" | jq -r '.in_bytes'; }

wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "port $1 not listening" >&2
	return 1
}

# wait_hub N: poll the hub until it holds N messages; prints the seconds
# from $t0 to the first poll above $base and to the last change, and the
# count. An edge that dropped messages never gets there: after STALL
# seconds without a new message (and 60 s for the first one) it prints
# what arrived, "-" for a first message that never came.
STALL=${STALL:-10}
wait_hub() {
	local want=$1 first="" n last=-1 changed
	changed=$(now)
	while :; do
		n=$(hub_msgs)
		if [ "$n" != "$last" ]; then last=$n changed=$(now); fi
		if [ -z "$first" ] && [ "$n" -gt "$base" ]; then first=$(now); fi
		if [ "$n" -ge "$want" ]; then break; fi
		local quiet
		quiet=$(echo "$(now) - $changed" | bc)
		if [ -n "$first" ] && [ "$(echo "$quiet > $STALL" | bc)" = 1 ]; then break; fi
		if [ -z "$first" ] && [ "$(echo "$quiet > 60" | bc)" = 1 ]; then break; fi
		sleep 0.01
	done
	if [ -z "$first" ]; then
		echo "- - $n"
	else
		echo "$(echo "$first - $t0" | bc) $(echo "$changed - $t0" | bc) $n"
	fi
}

hub_start() {
	cat >"$work/hub.conf" <<EOF
server_name: hub
listen: 127.0.0.1:$HUB_PORT
http: 127.0.0.1:$HUB_MON
jetstream { store_dir: "$work/hub", domain: hub }
leafnodes { listen: 127.0.0.1:$HUB_LEAF }
mqtt { listen: 127.0.0.1:$HUB_MQTT }
EOF
	"$bin/nats-server" -c "$work/hub.conf" >"$work/hub.log" 2>&1 &
	hub_pid=$!
	pids+=("$hub_pid")
	wait_port $HUB_PORT
}

hub_stop() {
	kill "$hub_pid"
	wait "$hub_pid" 2>/dev/null || true
}

publish() { # stream count
	case $edge in
	mosquitto*)
		# QoS 1, acknowledged by the edge: what the bridge then loses is
		# the bridge's.
		"$bin/ledge-bench" -proto mqtt -url "mqtt://127.0.0.1:$EDGE_PORT" -scenario pub -subject "bench/{n}" -qos 1 \
			-pubs 1 -count "$2" -size "$SIZE" -quiet >/dev/null
		;;
	*)
		"$bin/ledge-bench" -url "nats://127.0.0.1:$EDGE_PORT" -scenario jspub -stream "$1" -subject "bench.{n}" \
			-pubs 1 -count "$2" -size "$SIZE" -max-pending 512 -quiet >/dev/null
		;;
	esac
}

edge_start() {
	case $1 in
	ledge)
		"$bin/ledge" -nats-addr 127.0.0.1:$EDGE_PORT -mqtt-addr "" -mqtt-ws-addr "" -amqp-addr "" \
			-stomp-addr "" -stomp-ws-addr "" -http-addr "" -data-dir "$work/ledge" \
			-sync never -gateway-id edge1 -log-level warn \
			-uplink "nats://127.0.0.1:$HUB_PORT" -uplink-subjects 'bench.>' -uplink-prefix edge1. $LEDGE_ARGS >"$work/edge.log" 2>&1 &
		edge_pid=$!
		pids+=("$edge_pid")
		wait_port $EDGE_PORT
		stream=UPLINK_cloud
		hub_stream=EDGE1
		"$bin/nats" -s "nats://127.0.0.1:$HUB_PORT" stream add EDGE1 --subjects 'edge1.>' --defaults >/dev/null
		;;
	leaf)
		cat >"$work/leaf.conf" <<EOF
listen: 127.0.0.1:$EDGE_PORT
jetstream { store_dir: "$work/leaf", domain: edge }
leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:$HUB_LEAF" } ] }
EOF
		"$bin/nats-server" -c "$work/leaf.conf" >"$work/edge.log" 2>&1 &
		edge_pid=$!
		pids+=("$edge_pid")
		wait_port $EDGE_PORT
		stream=EDGE
		hub_stream=FROMEDGE
		"$bin/nats" -s "nats://127.0.0.1:$EDGE_PORT" stream add EDGE --subjects 'bench.>' --defaults >/dev/null
		cat >"$work/src.json" <<EOF
{"name":"FROMEDGE","retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,
 "max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,
 "sources":[{"name":"EDGE","external":{"api":"\$JS.edge.API"}}]}
EOF
		sleep 1 # the leaf connection
		"$bin/nats" -s "nats://127.0.0.1:$HUB_PORT" stream add --config "$work/src.json" >/dev/null
		;;
	mosquitto | mosquitto-unlimited)
		local queue=""
		[ "$1" = mosquitto-unlimited ] && queue="max_queued_messages 0"
		# The hub's MQTT topic edge1/bench/N is the subject edge1.bench.N,
		# which the hub's stream captures, as with ledge's uplink.
		"$bin/nats" -s "nats://127.0.0.1:$HUB_PORT" stream add EDGE1 --subjects 'edge1.>' --defaults >/dev/null
		cat >"$work/mosquitto.conf" <<EOF
listener $EDGE_PORT 127.0.0.1
allow_anonymous true
persistence false
$queue
connection hub
address 127.0.0.1:$HUB_MQTT
bridge_protocol_version mqttv311
try_private false
remote_clientid edge1-bridge
cleansession false
topic bench/# out 1 "" edge1/
EOF
		"$mosquitto" -c "$work/mosquitto.conf" >"$work/edge.log" 2>&1 &
		edge_pid=$!
		pids+=("$edge_pid")
		wait_port $EDGE_PORT
		stream=EDGE1
		hub_stream=EDGE1
		;;
	esac
}

results=()
for edge in $EDGES; do
	rm -rf "$work/hub" "$work/ledge" "$work/leaf"
	hub_start
	edge_start "$edge"
	sleep 1
	idle=$(rss_kib "$edge_pid")

	# Forward with the hub up.
	base=0
	t0=$(now)
	publish "$stream" "$BACKLOG"
	read -r _ fwd_last fwd_got < <(wait_hub "$BACKLOG")
	fwd_rate=$(echo "$fwd_got / $fwd_last" | bc)
	base=$fwd_got

	# Outage: the backlog builds at the edge.
	hub_stop
	publish "$stream" "$BACKLOG"
	sleep 1
	rss=$(rss_kib "$edge_pid")

	hub_start
	bytes0=$(hub_in_bytes)
	t0=$(now)
	read -r first last got < <(wait_hub $((base + BACKLOG)))
	sleep 2
	got=$(hub_msgs)
	bytes=$(( $(hub_in_bytes) - bytes0 ))
	# Lost (or, negative, duplicated) of all 2 x BACKLOG published.
	lost=$(( 2 * BACKLOG - got ))
	results+=("$edge forward_msgs_per_s=$fwd_rate catchup_first_s=$first catchup_all_s=$last lost_or_dup=$lost rss_idle_mib=$((idle / 1024)) rss_backlog_mib=$((rss / 1024)) uplink_bytes_per_msg=$((bytes / (got > base ? got - base : 1)))")
	echo "${results[-1]}"
	kill "$edge_pid"
	wait "$edge_pid" 2>/dev/null || true
	hub_stop
done

echo
echo "BACKLOG=$BACKLOG SIZE=$SIZE"
printf '%s\n' "${results[@]}"
