#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/quickstart as a newcomer runs it (binaries of this build, no
# package installation): it shows a real download from alice to bob and
# says so; `status` sees everything running; the printed `bitween`
# commands work; a second `up` is refused while one runs; `down` stops
# every process it started and removes its directory; a failing step is
# named with its log, and nothing hangs.
#
#   quickstart_test.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
QS=$ROOT/scripts/quickstart
DIR=$(mktemp -d /tmp/bitween-qs-test.XXXXXX)
export BITWEEN_QUICKSTART_DIR=$DIR BITWEEN_SKIP_DEPS=1 BITWEEN_BUILD_DIR=$BUILD BITWEEN_QUICKSTART_MIB=8
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1" >&2; fail=1; fi; }
cleanup() { [ -d "$DIR" ] && "$QS" down >/dev/null 2>&1; rm -rf "$DIR" "$DIR.bad" "$DIR.open" "$DIR.err"; }
trap cleanup EXIT
rm -rf "$DIR.open"

timeout 600 "$QS" up >"/tmp/qs-out.$$" 2>&1; rc=$?
out=$(cat "/tmp/qs-out.$$"); rm -f "/tmp/qs-out.$$"
echo "$out" | sed 's/^/  | /'
check "quickstart up exits 0" '[ $rc -eq 0 ]'
check "it says what it does, step by step" 'grep -q "^==> bob downloads it from alice" <<<"$out"'
check "it reports the checked download" 'grep -Eq "all [0-9]+ files match by SHA-256" <<<"$out"'
check "it prints the admin API URL and the token file" 'grep -q "http://127.0.0.1:[0-9]*/api/v1/" <<<"$out" && grep -q "$DIR/component/api_token" <<<"$out"'
check "it prints how to stop" 'grep -q "quickstart down" <<<"$out"'
"$QS" status >/dev/null; check "status: everything runs" '[ $? -eq 0 ]'
# the printed commands work as printed
bob=$(sed -n 's/^  alias bob="\(.*\)"$/\1/p' <<<"$out")
check "it prints a bitween command for bob" '[ -n "$bob" ]'
list=$($bob list 2>&1); check "bob's printed command lists the download, seeding" 'grep -q "seeding.*sample" <<<"$list"'
url=$(grep -o "http://127.0.0.1:[0-9]*/api/v1/" <<<"$out" | head -n1)
check "it prints curl with the token from a file (never on a command line)" \
    'grep -q "curl -H @$DIR/component/api_auth_header" <<<"$out"'
users=$(curl -fsS --noproxy '*' -H @"$DIR/component/api_auth_header" "${url}users" 2>&1)
check "the admin API answers with the token, listing alice and bob" 'grep -q "alice@" <<<"$users" && grep -q "bob@" <<<"$users"'
pids=$(cat "$DIR"/*/*.pid "$DIR"/stack/prosody/server.pid 2>/dev/null | tr '\n' ' ')
pids+=" $(head -n1 "$DIR/stack/pg/data/postmaster.pid" 2>/dev/null)"
check "pid files of the component, both agents, Prosody and PostgreSQL" '[ $(wc -w <<<"$pids") -eq 5 ]'
"$QS" up >/dev/null 2>"$DIR.err"; rc=$?
check "a second up is refused while one runs" '[ $rc -ne 0 ] && grep -q "already running" "$DIR.err"'
rm -f "$DIR.err"
"$QS" down >/dev/null 2>&1; rc=$?
check "down exits 0" '[ $rc -eq 0 ]'
check "down removes the directory" '[ ! -e "$DIR" ]'
alive=""
# a zombie has ended (this machine's init may reap late)
for p in $pids; do
    kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive+=" $p"
done
check "down stops every process it started" '[ -z "$alive" ] || { ps -o pid,args -p ${alive# } >&2; false; }'
"$QS" down >/dev/null 2>&1; check "down again is harmless" '[ $? -eq 0 ]'

# Someone else's directory (here: one that others may write) is refused.
mkdir -m 777 "$DIR.open"
BITWEEN_QUICKSTART_DIR=$DIR.open "$QS" up >/dev/null 2>"$DIR.err"; rc=$?
check "up refuses a directory that others may write" '[ $rc -ne 0 ] && grep -q "not an empty directory of yours" "$DIR.err"'
mkdir -p "$DIR.open/stack"; echo x >"$DIR.open/quickstart.env"
BITWEEN_QUICKSTART_DIR=$DIR.open "$QS" down >/dev/null 2>"$DIR.err"; rc=$?
check "down refuses it too, touching nothing" '[ $rc -ne 0 ] && [ -e "$DIR.open/quickstart.env" ]'
rm -rf "$DIR.open" "$DIR.err"

# A step that fails names itself and its log, exits non-zero, leaves the
# rest for inspection, and `down` still cleans up.
mkdir -p "$DIR.bad"
BITWEEN_BUILD_DIR=$DIR.bad timeout 120 "$QS" up >/dev/null 2>"$DIR.err"; rc=$?
check "a failing step fails the run (not a timeout)" '[ $rc -ne 0 ] && [ $rc -ne 124 ]'
check "the failure names the step and how to clean up" 'grep -q "FAILED at step: using the binaries" "$DIR.err" && grep -q "quickstart down" "$DIR.err"'
rm -f "$DIR.err"
"$QS" down >/dev/null 2>&1
check "down after a failure removes the directory" '[ ! -e "$DIR" ]'

[ $fail -eq 0 ] && echo "quickstart: ok"
exit $fail
