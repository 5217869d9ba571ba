#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Command-line behaviour of bitween-agent: --help, --version, config check
# with missing and bad options (exit 2 with a clear message), the
# precedence of file, environment and flags, the password never printed
# (not by --print-config, which must succeed, nor by a failed check, nor in
# the log at debug level), and a run: the RPC file written with mode 0600,
# SIGHUP reloading, SIGTERM stopping cleanly and removing the RPC file.
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
wait_for() { # wait_for SECONDS CONDITION
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do eval "$2" && return 0; sleep 0.1; done
    return 1
}
for v in $(env | grep -o '^BITWEEN_AGENT_[A-Z_]*'); do unset "$v"; done
SECRETS='pa55-value\|pa55-from-file\|t0ken-value'
no_secret() { ! grep -q "$SECRETS" "$@"; }

check "--help exits 0 and shows usage" '"$BIN" --help | grep -q "usage: bitween-agent"'
check "--help names the environment prefix" '"$BIN" --help | grep -q "BITWEEN_AGENT_<NAME>"'
check "--version prints a version" '"$BIN" --version | grep -Eq "^bitween-agent [0-9]+\.[0-9]+"'
check "unknown flag exits 2" '"$BIN" --bogus >/dev/null 2>&1; [ $? -eq 2 ]'
check "an argument exits 2" '"$BIN" extra >/dev/null 2>&1; [ $? -eq 2 ]'

out=$("$BIN" --check-config 2>&1); rc=$?
check "missing options exit 2" '[ $rc -eq 2 ]'
check "missing options are named with their variables" 'grep -q "jid (BITWEEN_AGENT_JID)" <<<"$out" && grep -q "password (BITWEEN_AGENT_PASSWORD)" <<<"$out"'

cat >"$WORK/a.conf" <<CONF
jid = alice@example.org
password = "pa55-value"
xmpp_port = 5400
log_level = warn
rpc_token = t0ken-value
state_dir = $WORK/state
CONF
"$BIN" -c "$WORK/a.conf" --check-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "a complete file passes the check" '[ $rc -eq 0 ] && grep -q "configuration ok" "$WORK/out"'
check "the check prints no secret" 'no_secret "$WORK/out" "$WORK/err"'
BITWEEN_AGENT_XMPP_PORT=5401 "$BIN" -c "$WORK/a.conf" --log-level debug --print-config \
    >"$WORK/out" 2>"$WORK/err"; rc=$?
check "--print-config exits 0" '[ $rc -eq 0 ]'
check "environment overrides the file" 'grep -q "^xmpp_port = 5401  # env" "$WORK/out"'
check "flags override the file" 'grep -q "^log_level = debug  # flag" "$WORK/out"'
check "secrets are shown as set" 'grep -q "^password = (set)" "$WORK/out" && grep -q "^rpc_token = (set)" "$WORK/out"'
check "secrets are never printed" 'no_secret "$WORK/out" "$WORK/err"'
check "TLS is required by default" 'grep -q "^xmpp_tls = required  # default" "$WORK/out"'
check "port mapping is off by default" 'grep -q "^port_mapping = false  # default" "$WORK/out"'
check "the RPC listens on loopback by default" 'grep -q "^rpc_address = 127.0.0.1  # default" "$WORK/out"'

BITWEEN_AGENT_JID=alice "$BIN" -c "$WORK/a.conf" --check-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "a JID without a domain exits 2" '[ $rc -eq 2 ] && grep -q "not a bare JID" "$WORK/err"'
BITWEEN_AGENT_JID=alice@example.org/phone "$BIN" -c "$WORK/a.conf" --check-config >/dev/null 2>"$WORK/err"; rc=$?
check "a full JID exits 2" '[ $rc -eq 2 ] && grep -q "not a bare JID" "$WORK/err"'
BITWEEN_AGENT_PRIORITY=5 "$BIN" -c "$WORK/a.conf" --check-config >/dev/null 2>"$WORK/err"; rc=$?
check "a positive priority exits 2" '[ $rc -eq 2 ] && grep -q "priority" "$WORK/err"'
BITWEEN_AGENT_XMPP_TLS=sometimes "$BIN" -c "$WORK/a.conf" --check-config >/dev/null 2>"$WORK/err"; rc=$?
check "a bad TLS mode exits 2 naming the choices" '[ $rc -eq 2 ] && grep -q "required" "$WORK/err"'
check "a failed check prints no secret" 'no_secret "$WORK/err"'
printf 'pa55-from-file\n' >"$WORK/secret"
BITWEEN_AGENT_JID=bob@example.org BITWEEN_AGENT_PASSWORD_FILE="$WORK/secret" \
    "$BIN" --print-config >"$WORK/out" 2>"$WORK/err"; rc=$?
check "the password can come from a _FILE variable" '[ $rc -eq 0 ] && grep -q "^password = (set)  # env" "$WORK/out"'
check "and is never printed" 'no_secret "$WORK/out" "$WORK/err"'
check "the component JID defaults from the JID" '"$BIN" --help >/dev/null && BITWEEN_AGENT_JID=bob@example.org BITWEEN_AGENT_PASSWORD=x "$BIN" --check-config >/dev/null'

# A run: no XMPP server is needed to serve the RPC.
BITWEEN_AGENT_LISTEN_INTERFACES=127.0.0.1:0 BITWEEN_AGENT_RPC_TOKEN= \
    "$BIN" -c "$WORK/a.conf" --log-level debug >"$WORK/run.out" 2>"$WORK/run.err" &
PID=$!
wait_for 20 '[ -s "$WORK/state/rpc.json" ]'
check "the RPC file is written" '[ -s "$WORK/state/rpc.json" ]'
check "with mode 0600" '[ "$(stat -c %a "$WORK/state/rpc.json")" = 600 ]'
check "the state directory is private" '[ "$(stat -c %a "$WORK/state")" = 700 ]'
check "it holds the URL" 'grep -q "\"url\":\"http://127.0.0.1:[0-9]*/rpc\"" "$WORK/state/rpc.json"'
check "the log names the file, not the token" 'grep -q "rpc.json" "$WORK/run.err" && ! grep -q "$(sed -n "s/.*\"token\":\"\([^\"]*\)\".*/\1/p" "$WORK/state/rpc.json")" "$WORK/run.err"'
sed -i 's/^log_level = warn/log_level = error/' "$WORK/a.conf"
kill -HUP "$PID"
wait_for 10 'grep -q "configuration reloaded (log level debug)" "$WORK/run.err"'
check "SIGHUP reloads (the -l flag still wins)" 'grep -q "configuration reloaded (log level debug)" "$WORK/run.err"'
kill -TERM "$PID"
wait "$PID"; rc=$?
PID=
check "SIGTERM stops with status 0" '[ $rc -eq 0 ]'
check "and removes the RPC file" '[ ! -e "$WORK/state/rpc.json" ]'
check "the run logged no secret" 'no_secret "$WORK/run.out" "$WORK/run.err"'
exit $fail
