#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Command-line behaviour of bitween-component: --help, --version, config
# check with missing and bad options (exit 2 with a clear message), the
# precedence of file, environment and flags, the admin API refused on a
# non-loopback address without a token, and secrets never printed: not on
# stdout nor stderr, not by --print-config (which must succeed), not by a
# failed check, not in the log of a running component at debug level.
set -uo pipefail
BIN=$1
WORK=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1" >&2; fail=1; else echo "ok: $1"; fi; }
unset BITWEEN_CONFIG BITWEEN_COMPONENT_JID BITWEEN_COMPONENT_SECRET BITWEEN_DOMAINS \
      BITWEEN_DATABASE_URL BITWEEN_XMPP_PORT BITWEEN_XMPP_HOST BITWEEN_LOG_LEVEL \
      BITWEEN_API_ENABLED BITWEEN_API_ADDRESS BITWEEN_API_PORT BITWEEN_API_TOKEN \
      BITWEEN_API_TOKEN_FILE BITWEEN_COMPONENT_SECRET_FILE
# Every secret value used below; none may appear in any output.
SECRETS='s3cr3t-value\|dbpass\|s3cr3t-from-file\|api-t0ken-value'
no_secret() { ! grep -q "$SECRETS" "$@"; }

check "--help exits 0 and shows usage" '"$BIN" --help | grep -q "usage: bitween-component"'
check "--version prints a version" '"$BIN" --version | grep -Eq "^bitween-component [0-9]+\.[0-9]+"'
check "unknown flag exits 2" '"$BIN" --bogus >/dev/null 2>&1; [ $? -eq 2 ]'
check "--help lists --healthcheck" '"$BIN" --help | grep -q -- "--healthcheck"'

out=$("$BIN" --check-config 2>&1); rc=$?
check "missing options exit 2" '[ $rc -eq 2 ]'
check "missing options are named with their variables" 'grep -q "component_jid (BITWEEN_COMPONENT_JID)" <<<"$out"'

cat >"$WORK/c.conf" <<CONF
component_jid = shares.example.org
component_secret = "s3cr3t-value"
domains = example.org
database_url = postgresql://u:dbpass@127.0.0.1/db
xmpp_port = 5400
log_level = warn
api_token = api-t0ken-value
CONF
"$BIN" -c "$WORK/c.conf" --check-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "a complete file passes the check" '[ $rc -eq 0 ] && grep -q "configuration ok" "$WORK/out"'
check "the check prints no secret" 'no_secret "$WORK/out" "$WORK/err"'
BITWEEN_XMPP_PORT=5401 "$BIN" -c "$WORK/c.conf" --log-level debug --print-config \
    >"$WORK/out" 2>"$WORK/err"; rc=$?
check "--print-config exits 0" '[ $rc -eq 0 ]'
check "environment overrides the file" 'grep -q "^xmpp_port = 5401  # env" "$WORK/out"'
check "flags override the file" 'grep -q "^log_level = debug  # flag" "$WORK/out"'
check "secrets are shown as set" 'grep -q "^api_token = (set)" "$WORK/out" && grep -q "^component_secret = (set)" "$WORK/out"'
check "secrets are never printed, on stdout or stderr" 'no_secret "$WORK/out" "$WORK/err"'
check "--print-config writes nothing on stderr" '[ ! -s "$WORK/err" ]'
echo 'xmpp_port = 70000' >>"$WORK/c.conf"
"$BIN" -c "$WORK/c.conf" --check-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "a bad value exits 2" '[ $rc -eq 2 ]'
check "a bad value names file, line and option" 'grep -q "c.conf:8" "$WORK/err" && grep -q xmpp_port "$WORK/err"'
check "a failed check prints no secret" 'no_secret "$WORK/out" "$WORK/err"'
"$BIN" -c "$WORK/c.conf" --print-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "--print-config of a bad file exits 2" '[ $rc -eq 2 ] && grep -q xmpp_port "$WORK/err"'
check "and prints no secret" 'no_secret "$WORK/out" "$WORK/err"'
printf 'component_jid = a\nbogus_option = 1\n' >"$WORK/d.conf"
out=$("$BIN" -c "$WORK/d.conf" --check-config 2>&1); rc=$?
check "an unknown option exits 2 and is named" '[ $rc -eq 2 ] && grep -q bogus_option <<<"$out"'
printf 's3cr3t-from-file\n' >"$WORK/secret"
BITWEEN_COMPONENT_JID=a BITWEEN_DOMAINS=d BITWEEN_DATABASE_URL=x \
    BITWEEN_COMPONENT_SECRET_FILE="$WORK/secret" "$BIN" --print-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "a secret can come from a _FILE variable" '[ $rc -eq 0 ] && grep -q "^component_secret = (set)  # env" "$WORK/out"'
check "a secret from a file is never printed" 'no_secret "$WORK/out" "$WORK/err"'

# A complete environment; PostgreSQL and XMPP on ports where nobody listens.
base=(BITWEEN_COMPONENT_JID=shares.example.org BITWEEN_COMPONENT_SECRET=s3cr3t-value
      BITWEEN_DOMAINS=example.org BITWEEN_DATABASE_URL=postgresql://u:dbpass@127.0.0.1:1/db
      BITWEEN_XMPP_HOST=127.0.0.1 BITWEEN_XMPP_PORT=1 BITWEEN_API_PORT=0)

env "${base[@]}" "$BIN" --healthcheck=metrics >/dev/null 2>"$WORK/err"; rc=$?
check "--healthcheck with an unknown endpoint exits 2" '[ $rc -eq 2 ] && grep -q "readyz or healthz" "$WORK/err"'
# Port 1: nobody listens there.
env "${base[@]}" BITWEEN_API_PORT=1 "$BIN" --healthcheck >/dev/null 2>"$WORK/err"; rc=$?
check "--healthcheck without a running daemon exits 1, naming the URL" \
    '[ $rc -eq 1 ] && grep -q "http://127.0.0.1:1/readyz" "$WORK/err"'
env "${base[@]}" "$BIN" --healthcheck >/dev/null 2>"$WORK/err"; rc=$?
check "--healthcheck with api_port 0 exits 1 and asks for a fixed port" '[ $rc -eq 1 ] && grep -q "fixed api_port" "$WORK/err"'
env "${base[@]}" BITWEEN_API_ENABLED=false "$BIN" --healthcheck >/dev/null 2>"$WORK/err"; rc=$?
check "--healthcheck with the API off exits 1 and says why" '[ $rc -eq 1 ] && grep -q "api_enabled = false" "$WORK/err"'

# The admin API off loopback needs a token: refused by the check and at
# start-up (exit 2 before anything starts), with the option named.
for addr in 0.0.0.0 :: 192.0.2.1; do
    env "${base[@]}" BITWEEN_API_ADDRESS=$addr "$BIN" --check-config >"$WORK/out" 2>"$WORK/err"; rc=$?
    check "api_address $addr without a token fails the check" \
        '[ $rc -eq 2 ] && grep -q "api_token (BITWEEN_API_TOKEN)" "$WORK/err" && grep -q "api_enabled = false" "$WORK/err"'
done
env "${base[@]}" BITWEEN_API_ADDRESS=0.0.0.0 timeout 20 "$BIN" >"$WORK/out" 2>"$WORK/err"; rc=$?
check "api_address 0.0.0.0 without a token refuses to start (exit 2)" \
    '[ $rc -eq 2 ] && grep -q "api_address: 0.0.0.0 is not loopback" "$WORK/err"'
check "the refusal prints no secret" 'no_secret "$WORK/out" "$WORK/err"'
env "${base[@]}" BITWEEN_API_ADDRESS=:: BITWEEN_API_TOKEN=api-t0ken-value "$BIN" --check-config \
    >/dev/null 2>&1; rc=$?
check "api_address :: with a token passes the check" '[ $rc -eq 0 ]'
env "${base[@]}" BITWEEN_API_ADDRESS=0.0.0.0 BITWEEN_API_ENABLED=false "$BIN" --check-config \
    >/dev/null 2>&1; rc=$?
check "api_address 0.0.0.0 with the API off passes the check" '[ $rc -eq 0 ]'
for addr in 127.0.0.1 ::1; do
    env "${base[@]}" BITWEEN_API_ADDRESS=$addr "$BIN" --check-config >/dev/null 2>&1; rc=$?
    check "api_address $addr without a token passes the check" '[ $rc -eq 0 ]'
done

# A running component at debug level (XMPP and PostgreSQL unreachable, so
# it retries both) logs no secret. Wait for both retries to be logged.
env "${base[@]}" BITWEEN_API_ADDRESS=127.0.0.1 BITWEEN_API_TOKEN=api-t0ken-value \
    BITWEEN_LOG_LEVEL=debug "$BIN" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 1 200); do
    grep -q "api: listening on" "$WORK/err" && grep -qi "database unavailable" "$WORK/err" &&
        grep -qi "xmpp" "$WORK/err" && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
check "the component runs and logs its retries" \
    'grep -q "api: listening on" "$WORK/err" && grep -qi "database unavailable" "$WORK/err"'
# --healthcheck asks the running daemon over its API (container health
# checks need no curl): alive, but not ready while PostgreSQL is away.
port=$(sed -n 's/.*api: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/err" | head -n1)
check "the API port is logged" '[ -n "$port" ]'
env "${base[@]}" BITWEEN_API_PORT="$port" "$BIN" --healthcheck=healthz >"$WORK/hout" 2>"$WORK/herr"; rc=$?
check "--healthcheck=healthz of a live component exits 0" '[ $rc -eq 0 ]'
env "${base[@]}" BITWEEN_API_PORT="$port" "$BIN" --healthcheck >"$WORK/hout" 2>"$WORK/herr"; rc=$?
check "--healthcheck (readyz) exits 1 while the database is unreachable, saying so" \
    '[ $rc -eq 1 ] && grep -q "/readyz answered 503" "$WORK/herr"'
check "the health checks print no secret" 'no_secret "$WORK/hout" "$WORK/herr"'
# as under systemd: the secrets are credentials the checker cannot read
env -u BITWEEN_CONFIG BITWEEN_API_PORT="$port" "$BIN" --healthcheck=healthz >/dev/null 2>"$WORK/herr"; rc=$?
check "--healthcheck needs no secret nor any other required option" '[ $rc -eq 0 ]'
"$BIN" --healthcheck --check-config >/dev/null 2>"$WORK/herr"; rc=$?
check "--healthcheck with --check-config is refused" '[ $rc -eq 2 ] && grep -q "goes alone" "$WORK/herr"'
kill -TERM "$PID" 2>/dev/null
wait "$PID"; rc=$?
PID=
check "SIGTERM stops it with exit 0" '[ $rc -eq 0 ]'
check "its debug log holds no secret" 'no_secret "$WORK/out" "$WORK/err"'

[ $fail -eq 0 ] && echo "component_cli: ok"
exit $fail
