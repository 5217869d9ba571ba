#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Command-line behaviour of bitween-component: --help, --version, config
# check with missing and bad options (exit 2 with a clear message), the
# precedence of file, environment and flags, and secrets never printed.
set -uo pipefail
BIN=$1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1" >&2; fail=1; else echo "ok: $1"; fi; }
unset BITWEEN_CONFIG BITWEEN_COMPONENT_JID BITWEEN_COMPONENT_SECRET BITWEEN_DOMAINS \
      BITWEEN_DATABASE_URL BITWEEN_XMPP_PORT BITWEEN_LOG_LEVEL

check "--help exits 0 and shows usage" '"$BIN" --help | grep -q "usage: bitween-component"'
check "--version prints a version" '"$BIN" --version | grep -Eq "^bitween-component [0-9]+\.[0-9]+"'
check "unknown flag exits 2" '"$BIN" --bogus >/dev/null 2>&1; [ $? -eq 2 ]'

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
CONF
check "a complete file passes the check" '"$BIN" -c "$WORK/c.conf" --check-config >/dev/null'
out=$(BITWEEN_XMPP_PORT=5401 "$BIN" -c "$WORK/c.conf" --log-level debug --print-config)
check "environment overrides the file" 'grep -q "^xmpp_port = 5401  # env" <<<"$out"'
check "flags override the file" 'grep -q "^log_level = debug  # flag" <<<"$out"'
check "secrets are never printed" '! grep -q "s3cr3t-value\|dbpass" <<<"$out"'
echo 'xmpp_port = 70000' >>"$WORK/c.conf"
out=$("$BIN" -c "$WORK/c.conf" --check-config 2>&1); rc=$?
check "a bad value exits 2" '[ $rc -eq 2 ]'
check "a bad value names file, line and option" 'grep -q "c.conf:7" <<<"$out" && grep -q xmpp_port <<<"$out"'
printf 'component_jid = a\nbogus_option = 1\n' >"$WORK/d.conf"
out=$("$BIN" -c "$WORK/d.conf" --check-config 2>&1); rc=$?
check "an unknown option exits 2 and is named" '[ $rc -eq 2 ] && grep -q bogus_option <<<"$out"'
printf 's3cr3t-from-file\n' >"$WORK/secret"
out=$(BITWEEN_COMPONENT_JID=a BITWEEN_DOMAINS=d BITWEEN_DATABASE_URL=x \
      BITWEEN_COMPONENT_SECRET_FILE="$WORK/secret" "$BIN" --print-config)
check "a secret can come from a _FILE variable" 'grep -q "^component_secret = (set)  # env" <<<"$out"'
[ $fail -eq 0 ] && echo "component_cli: ok"
exit $fail
