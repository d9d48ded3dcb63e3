#!/usr/bin/env bash
# Builds CRIU 4.2 (the version that wrote the corpus) from a CRIU source
# tree into a cache folder, for the real-restore test of critq check
# (check/restore_linux_test.go, TestRestoreOracle: run only as root with
# CRITQ_CRIU=CACHE/criu).
# Not run by .ci/run.
#
#   scripts/build-criu.sh SRC [CACHE]
#
# SRC is a CRIU git checkout or a git directory (bare or mirror) holding
# v4.2; CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/critq/criu-4.2. The
# commands are those of CRIU's own INSTALL.md: its build dependencies from
# Debian, then `make criu`.
set -euo pipefail
src=${1:?usage: build-criu.sh SRC [CACHE]}
cache=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/critq/criu-4.2}
rev=${CRIU_REV:-v4.2}

if command -v apt-get >/dev/null; then
	apt-get install -y -qq build-essential pkg-config libprotobuf-dev libprotobuf-c-dev \
		protobuf-c-compiler protobuf-compiler python3-protobuf libcap-dev libnl-3-dev \
		libnet1-dev libaio-dev libgnutls28-dev libnftables-dev libdrm-dev uuid-dev >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if git -C "$src" rev-parse --verify -q "$rev^{commit}" >/dev/null; then
	git -C "$src" archive --format=tar "$rev" | tar -x -C "$work"
else
	# A snapshot without the tag: its newest commit (the corpus was made
	# from v4.2-22-g2cf8f13ca).
	git -C "$src" archive --format=tar HEAD | tar -x -C "$work"
fi
make -C "$work" -j"$(nproc)" criu >/dev/null
mkdir -p "$cache"
install -m 0755 "$work/criu/criu" "$cache/criu"
"$cache/criu" --version
echo "built $cache/criu"
