# benchmarks/rabbitmq.sh: RabbitMQ for the side-by-side benchmarks, sourced
# by benchmarks/amqp.sh and benchmarks/stomp.sh, so that it is
# installed, started and stopped one way.
#
#   rabbitmq_install            apt-get install rabbitmq-server if missing
#   rabbitmq_start DIR AMQP STOMP
#                               a node of its own in DIR on 127.0.0.1 ports
#                               AMQP and STOMP (the rabbitmq_stomp plugin),
#                               with its own epmd on port $RABBITMQ_EPMD_PORT
#   rabbitmq_stop               stops the node and its epmd
#   rabbitmq_version            "RabbitMQ 3.10.8 on Erlang/OTP 25"
#   rabbitmq_beam_pid           the pid of the Erlang VM (beam.smp), whose
#                               RSS is RabbitMQ's memory
#
# The node runs RabbitMQ's defaults (classic queues, the default memory
# and disk alarms) except for where it listens, where it keeps its files
# and its log level. It runs as the user who sources this (root on the
# development machines), with HOME in DIR for its Erlang cookie, and never
# touches the system's own RabbitMQ service, data or port 5672. Erlang's
# port mapper daemon would outlive the node, so it is started here, in the
# foreground on a port of its own, and stopped by its pid.

RABBITMQ_BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin/rabbitmq-server}
RABBITMQ_EPMD_PORT=${RABBITMQ_EPMD_PORT:-34369}
rabbitmq_pid=""
rabbitmq_epmd_pid=""

rabbitmq_install() {
	if [ -x "$RABBITMQ_BIN" ]; then
		return 0
	fi
	local sudo="" policy=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	# The package starts a system service on 5672 after install unless a
	# policy says no; the benchmark wants no broker it did not start.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
	fi
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends rabbitmq-server
	if [ -n "$policy" ]; then
		$sudo rm -f "$policy"
	fi
}

# rabbitmq_wait_port waits up to 60 s for something to listen on port $1.
rabbitmq_wait_port() {
	for _ in $(seq 600); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "rabbitmq: nothing listens on port $1 after 60 s; the end of its logs:" >&2
	tail -n 15 "$rabbitmq_dir"/log/*.log >&2 2>/dev/null || true # the folder goes with the run
	return 1
}

rabbitmq_start() {
	rabbitmq_dir=$1
	local amqp=$2 stomp=$3
	rm -rf "$rabbitmq_dir"
	mkdir -p "$rabbitmq_dir/log"
	cat >"$rabbitmq_dir/rabbitmq.conf" <<-EOF
		listeners.tcp.1 = 127.0.0.1:$amqp
		stomp.listeners.tcp.1 = 127.0.0.1:$stomp
		log.console = false
		log.file.level = warning
	EOF
	echo '[rabbitmq_stomp].' >"$rabbitmq_dir/enabled_plugins"
	epmd -port "$RABBITMQ_EPMD_PORT" >"$rabbitmq_dir/log/epmd.log" 2>&1 &
	rabbitmq_epmd_pid=$!
	rabbitmq_wait_port "$RABBITMQ_EPMD_PORT" || return 1
	env HOME="$rabbitmq_dir" \
		ERL_EPMD_PORT="$RABBITMQ_EPMD_PORT" \
		RABBITMQ_NODENAME=ledgebench@localhost \
		RABBITMQ_USE_LONGNAME=false \
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT="$amqp" \
		RABBITMQ_DIST_PORT=$((amqp + 1)) \
		RABBITMQ_CONFIG_FILE="$rabbitmq_dir/rabbitmq.conf" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$rabbitmq_dir/advanced.config" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$rabbitmq_dir/enabled_plugins" \
		RABBITMQ_MNESIA_BASE="$rabbitmq_dir/mnesia" \
		RABBITMQ_LOG_BASE="$rabbitmq_dir/log" \
		RABBITMQ_PID_FILE="$rabbitmq_dir/rabbitmq.pid" \
		"$RABBITMQ_BIN" >"$rabbitmq_dir/log/startup.log" 2>&1 &
	rabbitmq_pid=$!
	rabbitmq_wait_port "$amqp" || return 1
	rabbitmq_wait_port "$stomp" || return 1
}

# rabbitmq_beam_pid prints the pid of the node's Erlang VM: the child of
# the start script whose command is beam.smp.
rabbitmq_beam_pid() {
	local p
	for p in $(pgrep -P "$rabbitmq_pid" 2>/dev/null); do
		if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = beam.smp ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

rabbitmq_stop() {
	if [ -n "$rabbitmq_pid" ]; then
		local beam
		beam=$(rabbitmq_beam_pid || true)
		# SIGTERM stops an Erlang node cleanly (init:stop); its helpers
		# (erl_child_setup, inet_gethost) end with it.
		[ -n "$beam" ] && kill -TERM "$beam" 2>/dev/null
		for _ in $(seq 300); do
			kill -0 "$rabbitmq_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$rabbitmq_pid" 2>/dev/null; then
			echo "rabbitmq: the node did not stop within 30 s; killing it" >&2
			[ -n "$beam" ] && kill -KILL "$beam" 2>/dev/null
			kill -KILL "$rabbitmq_pid" 2>/dev/null || true
		fi
		wait "$rabbitmq_pid" 2>/dev/null || true
		rabbitmq_pid=""
	fi
	if [ -n "$rabbitmq_epmd_pid" ]; then
		kill "$rabbitmq_epmd_pid" 2>/dev/null || true
		wait "$rabbitmq_epmd_pid" 2>/dev/null || true
		rabbitmq_epmd_pid=""
	fi
}

rabbitmq_version() {
	local v otp
	v=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)
	otp=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null || echo unknown)
	echo "RabbitMQ $v (Debian) on Erlang/OTP $otp"
}
