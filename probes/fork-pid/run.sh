#!/bin/sh
# Build and run the fork-pid probes; print their JSON lines on stdout.
# Usage: run.sh [build-dir]   (default /tmp/hyrum-probes/fork-pid)
# Exits nonzero only if compilation fails. Needs gcc and libc6-dev.
set -u
SRC=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-/tmp/hyrum-probes/fork-pid}
CC=${CC:-gcc}
CFLAGS="-O2 -Wall -pthread"
PROBES="fork vfork clone_vm pidns atfork wipeonfork threadfork getpid_cost"
mkdir -p "$OUT" || exit 1

$CC $CFLAGS -fPIC -shared -o "$OUT/atfork_dso.so" "$SRC/atfork_dso.c" >&2 || exit 1
for p in $PROBES; do
    libs=""
    [ "$p" = atfork ] && libs="-ldl"
    $CC $CFLAGS -o "$OUT/$p" "$SRC/$p.c" $libs >&2 || exit 1
done

TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout 120"
for p in $PROBES; do
    args=""
    [ "$p" = atfork ] && args="$OUT/atfork_dso.so"
    $TIMEOUT "$OUT/$p" $args
    rc=$?
    [ $rc -ne 0 ] && printf '{"probe":"%s","case":"*","ok":false,"error":"exit status %d"}\n' "$p" "$rc"
done
exit 0
