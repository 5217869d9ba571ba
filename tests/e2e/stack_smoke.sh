#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Smoke test of scripts/stack: two stacks brought up side by side, each
# probed (c2s login with a roster subscription, component handshake with
# the XEP-0356 pubsub iq permission, or on ejabberd what notify mode
# needs, PostgreSQL), then brought down; no
# process, port or file of either may remain.
#
# usage: stack_smoke.sh ROOT_DIR PROBE_BINARY
set -euo pipefail

ROOT=$1
PROBE=$2
STACK="$ROOT/scripts/stack"
if ! why=$("$STACK" available 2>&1); then
    if [ "${CI:-}" = true ]; then echo "stack_smoke: $why" >&2; exit 1; fi
    echo "stack_smoke: SKIPPED: $why" >&2
    exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bitween-smoke.XXXXXX")
chmod 711 "$WORK"
FAILED=0

fail() { echo "stack_smoke: FAIL: $*" >&2; FAILED=1; }

cleanup() {
    local d
    for d in "$WORK"/a "$WORK"/b; do
        if [ -f "$d/stack.env" ]; then
            [ $FAILED -eq 0 ] || "$STACK" logs "$d" >&2 || true
            "$STACK" down "$d" || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Bring both up at once: they must not collide on ports or files.
"$STACK" up "$WORK/a" >"$WORK/a.env" &
pa=$!
"$STACK" up "$WORK/b" >"$WORK/b.env" &
pb=$!
wait $pa || { fail "stack a did not start"; exit 1; }
wait $pb || { fail "stack b did not start"; exit 1; }

declare -A PIDS PORTS
for s in a b; do
    (
        # `set -e` does not apply in a subshell tested with ||: check each step.
        # shellcheck disable=SC1090
        . "$WORK/$s.env" || exit 1
        "$STACK" adduser "$BITWEEN_STACK_DIR" alice "alice-pw-$s" || exit 1
        "$STACK" adduser "$BITWEEN_STACK_DIR" bob "bob-pw-$s" || exit 1
        "$STACK" subscribe "$BITWEEN_STACK_DIR" alice bob || exit 1
        # as the server holds them (restarted: from its storage)
        "$STACK" restart xmpp "$BITWEEN_STACK_DIR" || exit 1
        [ "$("$STACK" roster "$BITWEEN_STACK_DIR" alice)" = "bob@$BITWEEN_STACK_DOMAIN both" ] || exit 1
        [ "$("$STACK" roster "$BITWEEN_STACK_DIR" bob)" = "alice@$BITWEEN_STACK_DOMAIN both" ] || exit 1
        "$PROBE" alice "alice-pw-$s" || exit 1
        # A wrong password must be refused: the probe must be able to fail.
        if "$PROBE" alice wrong-password >/dev/null 2>&1; then
            echo "stack_smoke: probe accepted a wrong password" >&2; exit 1
        fi
    ) || fail "stack $s: probe failed"
    # shellcheck disable=SC1090
    . "$WORK/$s.env"
    xd=prosody
    [ "${BITWEEN_STACK_SERVER:-prosody}" != ejabberd ] || xd=ejabberd
    PIDS[$s]="$(cat "$BITWEEN_STACK_DIR/$xd/server.pid") $(head -n1 "$BITWEEN_STACK_DIR/pg/data/postmaster.pid")"
    PORTS[$s]="$BITWEEN_PG_PORT $BITWEEN_XMPP_PORT $BITWEEN_STACK_C2S_PORT"
done

[ "${PORTS[a]}" != "${PORTS[b]}" ] || fail "both stacks got the same ports"

for s in a b; do
    "$STACK" down "$WORK/$s" || fail "stack $s: down failed"
    [ ! -e "$WORK/$s" ] || fail "stack $s: state directory left behind"
    for pid in ${PIDS[$s]}; do
        # An exited child the init process has not reaped yet is no process.
        state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
        case "$state" in ''|Z*) ;; *) fail "stack $s: process $pid still running ($state)" ;; esac
    done
    for port in ${PORTS[$s]}; do
        if ss -Htln "( sport = :$port )" | grep -q .; then
            fail "stack $s: port $port still listening"
        fi
    done
done

[ $FAILED -eq 0 ] || exit 1
echo "stack_smoke: ok"
