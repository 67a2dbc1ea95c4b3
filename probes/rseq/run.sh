#!/bin/sh
# Build and run the rseq probes; prints one JSON object per line on stdout.
# Usage: run.sh [build-dir]   (default /tmp/hyrum-probes/rseq)
# Needs only gcc and libc6-dev (glibc >= 2.35 for __rseq_* exports), x86-64.
# Exit status is non-zero only if compilation fails.
set -u
SRC=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${1:-/tmp/hyrum-probes/rseq}
mkdir -p "$OUTDIR" || exit 1
CC=${CC:-gcc}

for p in state errors inherit rewrite abort; do
	"$CC" -O2 -Wall -pthread -o "$OUTDIR/$p" "$SRC/$p.c" || {
		echo "{\"probe\":\"$p\",\"case\":\"build\",\"error\":\"compilation failed\"}"
		exit 1
	}
done

# Run one probe binary; a crash or timeout of the probe itself becomes one JSON line.
TO=""
command -v timeout >/dev/null 2>&1 && TO="timeout 120"
run() { # name env-assignment-or-empty
	name=$1
	shift
	env "$@" $TO "$OUTDIR/$name"
	rc=$?
	[ $rc -ne 0 ] && echo "{\"probe\":\"$name\",\"case\":\"run\",\"error\":\"exit status $rc\"}"
	return 0
}

# state runs twice: glibc registration on (default) and off (tunable)
run state -u GLIBC_TUNABLES
run state GLIBC_TUNABLES=glibc.pthread.rseq=0
# the others need glibc's registration off (they also re-exec themselves if needed)
for p in errors inherit rewrite abort; do
	run $p GLIBC_TUNABLES=glibc.pthread.rseq=0
done
exit 0
