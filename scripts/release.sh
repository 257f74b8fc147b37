#!/usr/bin/env bash
# scripts/release.sh: the release binaries of ledge and ledge-bench for the
# gateway architectures (and macOS for developers), into dist/.
#
# Each binary is pure Go with CGO off, so it is static and runs on any libc
# of its target, or none. -trimpath keeps builds reproducible across
# machines; -s -w drop the symbol table and DWARF, about a third of the size
# on flash-constrained boxes (panics still carry file:line). The version is
# `git describe --tags --always --dirty`, stamped into main.version of both
# commands and printed by `ledge` at start and `ledge-bench -version`.
#
# It prints each binary's size and fails if ledge is over 12 MiB, the
# target of issue 7. SHA256SUMS in dist/ lists every binary.
#
# Usage: scripts/release.sh [target ...]
#   targets like linux/arm64 or linux/arm/7 (GOARM after the last slash);
#   default: every target below.
#
# Binaries go to dist/<os>-<arch>[v<arm>]/, with SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."

max_ledge=$((12 * 1024 * 1024))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(
	linux/arm64
	linux/arm/6
	linux/arm/7
	linux/riscv64
	linux/amd64
	darwin/arm64
	darwin/amd64
)
cmds=(ledge ledge-bench)

version=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
echo "ledge $version"
case $version in
*-dirty) echo "warning: the work tree has uncommitted changes, and these binaries include them" >&2 ;;
esac

mkdir -p dist
built=()
for t in "${targets[@]}"; do
	IFS=/ read -r os arch arm <<<"$t"
	if [ -z "$os" ] || [ -z "$arch" ]; then
		echo "release.sh: bad target $t (want os/arch or linux/arm/N)" >&2
		exit 2
	fi
	if [ -n "$arm" ] && [ "$arch" != arm ]; then
		echo "release.sh: bad target $t: only arm takes a version" >&2
		exit 2
	fi
	out="dist/${os}-${arch}${arm:+v$arm}"
	mkdir -p "$out"
	for c in "${cmds[@]}"; do
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$arm \
			go build -trimpath -ldflags="-s -w -X main.version=$version" \
			-o "$out/$c" "./cmd/$c"
		built+=("$out/$c")
	done
done

# Sizes, and the budget of ledge.
status=0
printf '\n%-34s %10s %8s\n' binary bytes MiB
for b in "${built[@]}"; do
	size=$(wc -c <"$b")
	mib=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')
	mark=
	if [ "$(basename "$b")" = ledge ] && [ "$size" -gt "$max_ledge" ]; then
		mark="  over the 12 MiB budget"
		status=1
	fi
	printf '%-34s %10d %8s%s\n' "$b" "$size" "$mib" "$mark"
done

(cd dist && sha256sum "${built[@]#dist/}" >SHA256SUMS)
echo
echo "checksums in dist/SHA256SUMS"
if [ $status -ne 0 ]; then
	echo "release.sh: ledge is over 12 MiB stripped" >&2
fi
exit $status
