#!/usr/bin/env bash
# scripts/qemu-test.sh: the tests under qemu-user, as they run on a 64-bit
# and a 32-bit ARM gateway.
#
# Some bugs only exist there: 64-bit atomics need 8-byte alignment on
# 32-bit ARM, the address space of a 32-bit process is 2-3 GiB (the log's
# mmap budget), and int is 32 bits wide. Each architecture's test binaries
# are cross-compiled with CGO off and run by qemu-user through go test
# -exec; tests that re-execute their own binary (the log's crash test,
# ledge-bench's exit status test) read the emulator from
# LEDGE_TEST_EMULATOR, as in .ci/run. qemu-user-static is installed with
# apt-get when missing.
#
# Usage: scripts/qemu-test.sh [go test flags] [packages]
#   default packages: ./...; default flags: -count=1 -short (the long
#   tests would take hours under emulation).
#
# Environment:
#   ARCHS   the architectures, default "arm64 arm7"; also "arm6"
#
# Examples:
#   scripts/qemu-test.sh                        # everything, arm64 and arm v7
#   scripts/qemu-test.sh ./log/ ./router/       # two packages
#   ARCHS=arm6 scripts/qemu-test.sh -run Recover ./log/
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

archs=${ARCHS:-arm64 arm7}
args=("$@")
has_pkg=0
for a in "${args[@]}"; do
	case $a in
	./* | ../* | github.com/*) has_pkg=1 ;;
	esac
done
[ $has_pkg = 1 ] || args+=(./...)
flags=(-count=1 -short)

# Which emulators are needed, and install them if any is missing.
need=0
for a in $archs; do
	case $a in
	arm64) command -v qemu-aarch64-static >/dev/null || need=1 ;;
	arm6 | arm7) command -v qemu-arm-static >/dev/null || need=1 ;;
	*)
		echo "qemu-test.sh: unknown architecture $a (arm64, arm7, arm6)" >&2
		exit 2
		;;
	esac
done
if [ $need = 1 ]; then
	echo "=== installing qemu-user-static"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi

status=0
for a in $archs; do
	case $a in
	arm64) env=(GOARCH=arm64) emu=qemu-aarch64-static ;;
	arm7) env=(GOARCH=arm GOARM=7) emu=qemu-arm-static ;;
	arm6) env=(GOARCH=arm GOARM=6) emu=qemu-arm-static ;;
	esac
	echo "=== go test ${args[*]} under $emu (${env[*]})"
	start=$SECONDS
	if env CGO_ENABLED=0 "${env[@]}" LEDGE_TEST_EMULATOR=$emu \
		go test "${flags[@]}" -exec "$emu" "${args[@]}"; then
		echo "=== $a passed in $((SECONDS - start))s"
	else
		echo "=== $a FAILED after $((SECONDS - start))s"
		status=1
	fi
done
exit $status
