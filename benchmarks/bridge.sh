#!/usr/bin/env bash
# benchmarks/bridge.sh: store-and-forward to a NATS/JetStream hub, ledge's
# uplink against a nats-server leaf node with JetStream whose stream the
# hub sources (the NATS way of doing this), on this machine.
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
EDGES=${EDGES:-"ledge leaf"}
LEDGE_ARGS=${LEDGE_ARGS:-}
HUB_PORT=24310
HUB_MON=28310
HUB_LEAF=27310
EDGE_PORT=24311

bin=$PWD/benchmarks/out/bin
mkdir -p "$bin"
export GOBIN=$bin
[ -x "$bin/nats-server" ] || go install github.com/nats-io/nats-server/v2@latest
[ -x "$bin/nats" ] || go install github.com/nats-io/natscli/nats@latest
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
hub_msgs() { curl -s "http://127.0.0.1:$HUB_MON/jsz" | jq -r '.messages // 0'; }
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
# from $t0 to the first poll above $base and to the last.
wait_hub() {
	local want=$1 first="" n
	for _ in $(seq 1 100000); do
		n=$(hub_msgs)
		if [ -z "$first" ] && [ "$n" -gt "$base" ]; then first=$(now); fi
		if [ "$n" -ge "$want" ]; then
			echo "$(echo "$first - $t0" | bc) $(echo "$(now) - $t0" | bc) $n"
			return 0
		fi
		sleep 0.01
	done
	echo "hub stuck at $n of $want" >&2
	return 1
}

hub_start() {
	cat >"$work/hub.conf" <<EOF
listen: 127.0.0.1:$HUB_PORT
http: 127.0.0.1:$HUB_MON
jetstream { store_dir: "$work/hub", domain: hub }
leafnodes { listen: 127.0.0.1:$HUB_LEAF }
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

publish() { # subject count
	"$bin/ledge-bench" -url "nats://127.0.0.1:$EDGE_PORT" -scenario jspub -stream "$1" -subject "bench.{n}" \
		-pubs 1 -count "$2" -size "$SIZE" -max-pending 512 -quiet >/dev/null
}

edge_start() {
	case $1 in
	ledge)
		"$bin/ledge" -nats-addr 127.0.0.1:$EDGE_PORT -mqtt-addr "" -mqtt-ws-addr "" -data-dir "$work/ledge" \
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
	read -r _ fwd_last _ < <(wait_hub "$BACKLOG")
	fwd_rate=$(echo "$BACKLOG / $fwd_last" | bc)

	# Outage: the backlog builds at the edge.
	hub_stop
	publish "$stream" "$BACKLOG"
	sleep 1
	rss=$(rss_kib "$edge_pid")

	hub_start
	base=$BACKLOG
	bytes0=$(hub_in_bytes)
	t0=$(now)
	read -r first last got < <(wait_hub $((2 * BACKLOG)))
	sleep 2
	got=$(hub_msgs)
	bytes=$(( $(hub_in_bytes) - bytes0 ))
	lost=$(( 2 * BACKLOG - got ))
	results+=("$edge forward_msgs_per_s=$fwd_rate catchup_first_s=$first catchup_all_s=$last lost_or_dup=$lost rss_idle_mib=$((idle / 1024)) rss_backlog_mib=$((rss / 1024)) uplink_bytes_per_msg=$((bytes / BACKLOG))")
	echo "${results[-1]}"
	kill "$edge_pid"
	wait "$edge_pid" 2>/dev/null || true
	hub_stop
done

echo
echo "BACKLOG=$BACKLOG SIZE=$SIZE"
printf '%s\n' "${results[@]}"
