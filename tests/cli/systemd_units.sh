#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd units of deploy/systemd: systemd-analyze verify finds no
# unknown key, bad value or missing program in them (with ExecStart
# pointed at this build's binaries), and the component's unit keeps its
# hardening: `systemd-analyze security` rates its exposure at most 2.0 of
# 10 (1.4 when written). systemd is not running here: the checks are
# offline; a unit that fails them would fail on a real host.
#
#   systemd_units.sh COMPONENT_BINARY AGENT_BINARY
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd_units: systemd-analyze is missing (scripts/deps installs systemd)" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 77
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1" >&2; fail=1; fi; }

sed "s|/usr/bin/bitween-component|$(realpath "$1")|" "$ROOT/deploy/systemd/bitween-component.service" \
    >"$WORK/bitween-component.service"
sed "s|/usr/bin/bitween-agent|$(realpath "$2")|" "$ROOT/deploy/systemd/bitween-agent.service" \
    >"$WORK/bitween-agent.service"
for u in bitween-component bitween-agent; do
    out=$(systemd-analyze verify --man=no "$WORK/$u.service" 2>&1); rc=$?
    check "$u.service verifies without a warning" '[ $rc -eq 0 ] && [ -z "$out" ] || { echo "$out" >&2; false; }'
done
# the check itself catches a bad key
printf '[Service]\nExecStart=/bin/true\nProtectSystm=strict\n' >"$WORK/bad.service"
out=$(systemd-analyze verify --man=no "$WORK/bad.service" 2>&1)
check "a misspelt key is reported (the check can fail)" 'grep -q "Unknown key" <<<"$out"'
systemd-analyze security --offline=yes --threshold=20 "$WORK/bitween-component.service" \
    >"$WORK/security" 2>&1; rc=$?
check "the component's unit: exposure at most 2.0 ($(grep -o 'exposure level.*' "$WORK/security"))" '[ $rc -eq 0 ]'
[ $fail -eq 0 ] && echo "systemd_units: ok"
exit $fail
