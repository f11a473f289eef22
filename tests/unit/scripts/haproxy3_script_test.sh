#!/usr/bin/env bash
# scripts/haproxy3.sh without network or build: a cached binary is printed at once (the newest
# 3.x), a bad argument is refused, and an unreachable archive fails with a clear error before
# anything is built, with the private apt state under the cache directory only.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
script="$1"
tmp="$(mktemp -d /tmp/ephp3test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() {  # name, condition (0 = pass)
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1" >&2; fi
}
fake() { mkdir -p "$1"; printf '#!/bin/sh\necho "HAProxy version %s"\n' "$2" > "$1/haproxy"; chmod +x "$1/haproxy"; }

# 1. Cached: the newest 3.x build is printed at once; no apt call (the mirror is a closed port).
fake "$tmp/c1/haproxy-3.0.7" 3.0.7
fake "$tmp/c1/haproxy-3.0.11" 3.0.11
out="$(EP_CACHE_DIR="$tmp/c1" EP_DEBIAN_MIRROR=http://127.0.0.1:1/debian "$script" 2>"$tmp/err1")"
check "cached: exit 0" $?
[ "$out" = "$tmp/c1/haproxy-3.0.11/haproxy" ]; check "cached: newest path printed ($out)" $?
[ ! -e "$tmp/c1/apt-trixie" ]; check "cached: apt not run" $?

# 2. A bad argument is refused with its name.
EP_CACHE_DIR="$tmp/c2" "$script" --bogus >/dev/null 2>"$tmp/err2"
[ $? -eq 2 ]; check "bad argument: exit 2" $?
grep -q "unknown argument '--bogus'" "$tmp/err2"; check "bad argument: named" $?

# 3. Unreachable archive: a clear error, nothing built, apt state only in the private directory.
out="$(EP_CACHE_DIR="$tmp/c3" EP_DEBIAN_MIRROR=http://127.0.0.1:1/debian "$script" --quiet 2>"$tmp/err3")"
rc=$?
[ $rc -ne 0 ] && [ -z "$out" ]; check "unreachable: fails, prints no path (rc $rc)" $?
grep -q "apt-get update of the private trixie source list failed\|reported warnings or errors" "$tmp/err3"
check "unreachable: says apt-get update failed" $?
grep -q "127.0.0.1:1/debian trixie main" "$tmp/c3/apt-trixie/etc/sources.list"; check "private sources.list" $?
[ -z "$(ls -d "$tmp"/c3/haproxy-* 2>/dev/null)" ]; check "unreachable: nothing built" $?

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
