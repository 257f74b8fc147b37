#!/usr/bin/env bash
# benchmarks/machine.sh: one line that says what machine a figure was measured
# on, for RESULTS.md.
set -euo pipefail
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
disk=$(df -h "${1:-.}" | awk 'NR==2 {print $1" ("$2")"}')
printf '%s, %s cores, %s RAM, %s, disk %s, %s\n' \
	"${cpu:-unknown cpu}" "$(nproc)" \
	"$(free -h | awk '/^Mem:/ {print $2}')" \
	"$(uname -sr)" "$disk" "$(go version | awk '{print $3}')"
