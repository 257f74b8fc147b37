#!/usr/bin/env bash
# benchmarks/gobench.sh: runs the Go benchmarks of the given packages several
# times and summarises them with benchstat, so a figure in RESULTS.md comes
# with its spread. The physical limits (disk bandwidth, memory copy) are
# benchmarks in the same packages, so each run measures them beside the
# figures they are compared with.
#
# Usage: benchmarks/gobench.sh [-count N] [-benchtime T] [-bench REGEXP] [pkg ...]
# Output: benchmarks/out/<date>-<pkgs>.txt (raw) and benchstat's table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

count=6 benchtime=1s bench=.
while [ $# -gt 0 ]; do
	case "$1" in
	-count) count=$2; shift 2 ;;
	-benchtime) benchtime=$2; shift 2 ;;
	-bench) bench=$2; shift 2 ;;
	-*) echo "unknown flag $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./log/ ./router/)

command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest
PATH=$PATH:$(go env GOPATH)/bin

mkdir -p benchmarks/out
name=$(date -u +%Y%m%dT%H%M%SZ)-$(printf '%s' "${pkgs[*]}" | tr -c 'a-z0-9' '_')
out=benchmarks/out/$name.txt
{
	echo "# $(benchmarks/machine.sh)"
	echo "# go test -run='^\$' -bench='$bench' -benchmem -benchtime=$benchtime -count=$count ${pkgs[*]}"
} >"$out"
go test -run='^$' -bench="$bench" -benchmem -benchtime="$benchtime" -count="$count" "${pkgs[@]}" | tee -a "$out"
echo
benchstat "$out"
echo "raw results: $out"
