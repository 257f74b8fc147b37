#!/usr/bin/env bash
# benchmarks/compare.sh: the one entry point of the side-by-side benchmarks
# (issue 7). In one run, under the lock /tmp/ledge-bench.lock, it measures
# the machine's physical limits and then runs every peer comparison that
# exists: benchmarks/nats.sh (ledge vs nats-server, NATS), js.sh (durable
# streams), mqtt.sh (ledge vs mosquitto and nats-server, MQTT), amqp.sh
# (ledge vs RabbitMQ, AMQP 0-9-1) and stomp.sh (ledge vs RabbitMQ's STOMP
# plugin). Each script installs its peers, alternates ledge and the peer,
# and prints its markdown tables; compare.sh puts them together with the
# limits in benchmarks/out/compare-<time>.md and, with APPEND_RESULTS=1,
# appends that report to benchmarks/RESULTS.md. Each script's ledge
# listens only on the ports it measures (-stomp-addr "", -http-addr "" ...),
# so that none collides with another broker on the machine.
#
# Physical limits, so that a broker's figure can be read against the
# machine's:
#   loopback TCP  bytes per second through one 127.0.0.1 connection (python3,
#                 1 MiB sends, 2 GiB), what any broker's delivery shares
#   disk write    sequential write bandwidth with O_DIRECT (dd, 1 GiB, 1 MiB
#                 blocks) in benchmarks/out, where the scripts keep data
#   fsync         latency of one 4 KiB write with O_DSYNC (dd, 2,000 writes):
#                 the floor under an acknowledgement that waits for the disk
#
# Usage: benchmarks/compare.sh                  everything
#        ONLY="limits mqtt" benchmarks/compare.sh   a part (limits nats js mqtt amqp stomp)
# The scripts' own variables (PAIRS, MSGS, CONNS, ...) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LEDGE_BENCH_LOCKED:-}" ]; then
	exec env LEDGE_BENCH_LOCKED=1 flock /tmp/ledge-bench.lock "$0" "$@"
fi
# The scripts run below see LEDGE_BENCH_LOCKED and do not take the lock again.
export LEDGE_BENCH_LOCKED

ONLY=${ONLY:-"limits nats js mqtt amqp stomp"}
LOOPBACK_MIB=${LOOPBACK_MIB:-2048}
DISK_MIB=${DISK_MIB:-1024}
FSYNC_WRITES=${FSYNC_WRITES:-2000}

out=$PWD/benchmarks/out
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$out/compare-$stamp.md
scratch=$(mktemp -d "$out/compare.XXXXXX")
cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wants() { [[ " $ONLY " == *" $1 "* ]]; }

{
	echo "# ledge side by side, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(benchmarks/machine.sh "$out")"
	echo "Command: ONLY=\"$ONLY\" benchmarks/compare.sh"
	echo
} | tee "$report"

# loopback_bytes_per_sec sends LOOPBACK_MIB MiB through one loopback TCP
# connection and prints the receiver's bytes per second.
loopback_bytes_per_sec() {
	python3 - "$LOOPBACK_MIB" <<'EOF'
import socket, sys, threading, time
total = int(sys.argv[1]) << 20
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
result = {}
def receive():
    c, _ = srv.accept()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got = 0
    start = time.perf_counter()
    while got < total:
        n = c.recv_into(view)
        if n == 0:
            break
        got += n
    result["rate"] = got / (time.perf_counter() - start)
    c.close()
t = threading.Thread(target=receive)
t.start()
s = socket.create_connection(srv.getsockname())
chunk = b"\x5a" * (1 << 20)
for _ in range(total >> 20):
    s.sendall(chunk)
s.close()
t.join()
print(int(result["rate"]))
EOF
}

# dd_seconds runs dd with its arguments and prints the seconds it reports.
dd_seconds() {
	LC_ALL=C dd "$@" 2>&1 | awk '/copied/ {for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) print $(i-1)}' | tail -1
}

if wants limits; then
	lo=$(loopback_bytes_per_sec)
	disk_s=$(dd_seconds if=/dev/zero of="$scratch/seq" bs=1M count="$DISK_MIB" oflag=direct conv=fsync)
	rm -f "$scratch/seq"
	fsync_s=$(dd_seconds if=/dev/zero of="$scratch/sync" bs=4k count="$FSYNC_WRITES" oflag=dsync)
	rm -f "$scratch/sync"
	{
		echo "## Physical limits"
		echo
		echo "| limit | figure | how |"
		echo "|---|---|---|"
		awk -v b="$lo" -v m="$LOOPBACK_MIB" 'BEGIN {printf "| loopback TCP, one connection | %.0f MB/s | python3, %d MiB in 1 MiB sends |\n", b/1e6, m}'
		awk -v s="$disk_s" -v m="$DISK_MIB" 'BEGIN {printf "| disk sequential write | %.0f MB/s | dd bs=1M count=%d oflag=direct conv=fsync |\n", m*1048576/1e6/s, m}'
		awk -v s="$fsync_s" -v n="$FSYNC_WRITES" 'BEGIN {printf "| fsync latency (4 KiB write, O_DSYNC) | %.0f µs | dd bs=4k count=%d oflag=dsync |\n", s/n*1e6, n}'
		echo
	} | tee -a "$report"
fi

# Each comparison script prints its report and its path on the last line
# ("report: FILE"); its tables go into this report whole.
for part in nats js mqtt amqp stomp; do
	wants "$part" || continue
	script=benchmarks/$part.sh
	if [ ! -x "$script" ]; then
		echo "($script does not exist yet: skipped)" | tee -a "$report"
		echo | tee -a "$report"
		continue
	fi
	echo "running $script ..." >&2
	if ! "$script" >"$scratch/$part.out" 2>"$scratch/$part.err"; then
		{
			echo "## $part: $script failed"
			echo
			echo '```'
			tail -20 "$scratch/$part.err"
			echo '```'
			echo
		} | tee -a "$report"
		continue
	fi
	file=$(sed -n 's/^report: //p' "$scratch/$part.out" | tail -1)
	if [ -n "$file" ] && [ -f "$file" ]; then
		{ cat "$file"; echo; } | tee -a "$report"
	else
		{ cat "$scratch/$part.out"; echo; } | tee -a "$report"
	fi
done

if [ "${APPEND_RESULTS:-}" = 1 ]; then
	{ echo; sed -E 's/^(#+) /\1# /' "$report"; } >>benchmarks/RESULTS.md
	echo "appended to benchmarks/RESULTS.md" >&2
fi
echo
echo "report: $report"
