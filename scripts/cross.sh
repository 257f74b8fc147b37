#!/usr/bin/env bash
# scripts/cross.sh: static release builds of ledge's commands for the gateway
# architectures, into dist/<os>-<arch>[v<arm>]/.
#
# Pure Go with CGO off, so each binary is static and runs on any libc (or
# none) of the target. -trimpath keeps the build reproducible across machines;
# -s -w drops the symbol table and DWARF, which is a third of the size on
# flash-constrained boxes (panics still carry file:line).
#
# Usage: scripts/cross.sh [target ...]   targets like linux/arm64, linux/arm/7
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(linux/amd64 linux/arm64 linux/arm/6 linux/arm/7 linux/riscv64)

cmds=$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./cmd/... 2>/dev/null || true)
if [ -z "$cmds" ]; then
	echo "no commands under cmd/ to build" >&2
	exit 0
fi

for t in "${targets[@]}"; do
	IFS=/ read -r os arch arm <<<"$t"
	out="dist/${os}-${arch}${arm:+v$arm}"
	mkdir -p "$out"
	for c in $cmds; do
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$arm \
			go build -trimpath -ldflags='-s -w' -o "$out/$(basename "$c")" "$c"
	done
	printf '%-24s %s\n' "$out" "$(cd "$out" && ls | tr '\n' ' ')"
done
