#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# docker/compose.yaml brought up for real: a Docker engine (started here
# when none runs, and then stopped again), the base image debian:bookworm-slim made with debootstrap when
# it is missing (cached in the engine afterwards), the four images built,
# the stack up and healthy; alice shares a file, bob downloads it through
# the containers and the copy matches by SHA-256; the agents announced
# their compose-network addresses; the component keeps working across
# `restart prosody` and `restart postgres` (same container, not restarted:
# a second file goes from alice to bob after each); then `down -v`.
#
# Exit 77 (ctest: skipped) when no engine can run here, except under
# CI=true, where that is a failure. Prints wall times and image sizes.
# An engine started here is stopped again and its default bridge removed;
# the iptables chains and forwarding settings an engine sets up stay, as
# after any run of dockerd. The images (bitween-*:test and the base image)
# stay cached in the engine for the next run.
set -euo pipefail

# The whole test under a watchdog below ctest's limit, so that the cleanup
# below always runs (ctest kills without a chance to clean up).
if [ -z "${BITWEEN_DOCKER_TEST_WATCHDOG:-}" ]; then
    BITWEEN_DOCKER_TEST_WATCHDOG=1 exec timeout -k 60 3300 "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/bitween-docker-test.XXXXXX)
PROJECT=bitweentest$$
TAG=test
T0=$SECONDS
DOCKERD_PID=
MADE_BRIDGE=0
COMPOSE_UP=0

log() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
skip() {
    if [ "${CI:-}" = true ]; then fail "cannot run under CI: $*"; fi
    log "SKIPPED: $* (scripts/deps installs docker.io, docker-compose and debootstrap)"
    exit 77
}
ok() { log "ok: $*"; }

DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker || true)
[ -n "$DOCKER" ] || skip "no docker client"
command -v docker-compose >/dev/null || skip "no docker-compose"
[ "$(id -u)" -eq 0 ] || skip "the engine and debootstrap need root"
export DOCKER_HOST=unix:///var/run/docker.sock

# every compose command bounded: 10 min, the image build 25 min
compose() {
    local limit=600
    [ "$1" != build ] || limit=1500
    BITWEEN_TAG=$TAG BITWEEN_API_PUBLISH=127.0.0.1:$API_PORT \
        timeout "$limit" docker-compose -f "$ROOT/docker/compose.yaml" -p "$PROJECT" "$@"
}

cleanup() {
    local rc=$?
    set +e
    if [ $COMPOSE_UP = 1 ]; then
        [ $rc -eq 0 ] || compose logs --no-color --tail=40 >"$WORK/compose.log" 2>&1
        [ $rc -eq 0 ] || { echo "---- last compose logs ----"; tail -n 150 "$WORK/compose.log"; }
        compose down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ -n "$DOCKERD_PID" ]; then
        kill -TERM "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DOCKERD_PID" 2>/dev/null
        # the engine leaves its default bridge behind
        [ $MADE_BRIDGE = 0 ] || ip link delete docker0 2>/dev/null
        [ $rc -eq 0 ] || { echo "---- dockerd log ----"; tail -n 30 "$WORK/dockerd.log"; }
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # SECONDS WHAT COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for: $what"
        sleep 0.5
    done
}

# ---- the engine -------------------------------------------------------------
if ! timeout 20 "$DOCKER" info >/dev/null 2>&1; then
    [ -x /usr/sbin/dockerd ] || skip "no Docker engine runs and /usr/sbin/dockerd is missing"
    [ ! -S /var/run/docker.sock ] || skip "/var/run/docker.sock exists but no engine answers on it"
    ip link show docker0 >/dev/null 2>&1 || MADE_BRIDGE=1
    /usr/sbin/dockerd --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    deadline=$((SECONDS + 60))
    until timeout 10 "$DOCKER" info >/dev/null 2>&1; do
        kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -n 20 "$WORK/dockerd.log"; skip "dockerd exited at start"; }
        [ $SECONDS -lt $deadline ] || { tail -n 20 "$WORK/dockerd.log"; skip "dockerd did not answer within 60 s"; }
        sleep 0.2
    done
    log "started dockerd (pid $DOCKERD_PID)"
fi

# ---- the base image -----------------------------------------------------------
if ! "$DOCKER" image inspect debian:bookworm-slim >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || skip "debian:bookworm-slim is missing and so is debootstrap"
    # the mirror this machine uses (the only archive reachable under CI)
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "making debian:bookworm-slim with debootstrap from $mirror"
    timeout 600 debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -n 20 "$WORK/debootstrap.log"; fail "debootstrap"; }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -c . | "$DOCKER" import - debian:bookworm-slim >/dev/null
    rm -rf "$WORK/rootfs"
    ok "base image imported"
fi

# ---- build and up -------------------------------------------------------------
API_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t=$SECONDS
compose build >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log"; fail "docker-compose build"; }
BUILD_S=$((SECONDS - t))
ok "images built in ${BUILD_S} s"
t=$SECONDS
COMPOSE_UP=1
compose up -d >"$WORK/up.log" 2>&1 ||
    { cat "$WORK/up.log"; fail "docker-compose up"; }

cid() { compose ps -q "$1"; }
health() { "$DOCKER" inspect -f '{{.State.Health.Status}}' "$(cid "$1")"; }
healthy() { [ "$(health "$1")" = healthy ]; }
for s in postgres prosody component alice bob; do wait_for 180 "$s healthy" healthy "$s"; done
UP_S=$((SECONDS - t))
ok "postgres, prosody, component, alice and bob healthy ${UP_S} s after up"

# ---- what the operator sees -------------------------------------------------
TOKEN=$(compose exec -T component cat /run/bitween-secrets/api_token | tr -d '\r\n')
[ ${#TOKEN} -ge 32 ] || fail "no API token in the secrets volume"
api() {
    printf 'Authorization: Bearer %s\n' "$TOKEN" |
        curl -fsS --max-time 10 --noproxy '*' -H @- "http://127.0.0.1:$API_PORT$1"
}
readyz() { curl -fsS --max-time 10 --noproxy '*' "http://127.0.0.1:$API_PORT/readyz"; }
wait_for 60 "the component's /readyz on the published port" readyz
ok "the admin API answers on 127.0.0.1:$API_PORT"
ports=$("$DOCKER" port "$(cid prosody)" || true)
[ -z "$ports" ] || fail "Prosody publishes ports: $ports"
ok "Prosody publishes no port (c2s and XEP-0114 stay on the compose network)"
"$DOCKER" port "$(cid component)" | grep -qx "8080/tcp -> 127.0.0.1:$API_PORT" ||
    fail "the admin API is not published on loopback only: $("$DOCKER" port "$(cid component)")"
ok "the admin API is published on 127.0.0.1 only"
uid=$(compose exec -T component id -u | tr -d '\r')
[ "$uid" = 10001 ] || fail "the component runs as UID $uid, not 10001"
groups=$(compose exec -T component id -G | tr -d '\r')
ok "the component runs as the fixed non-root UID 10001 (groups $groups)"
absent() { # SERVICE FILE: exit status 1 of `test -e` exactly (not a failed exec)
    local rc=0
    compose exec -T "$1" test -e "/run/bitween-secrets/$2" || rc=$?
    [ $rc -eq 1 ]
}
absent alice api_token || fail "alice's agent can see the component's secrets"
absent alice bob_password || fail "alice's agent can see bob's password"
absent prosody database_url || fail "Prosody can see the database URL"
compose exec -T alice test -r /run/bitween-secrets/alice_password ||
    fail "alice's agent cannot read her password"
ok "each service sees only its own secrets"

bw() { local who=$1; shift; compose exec -T "$who" bitween "$@"; }
registered() { bw "$1" --json status | grep -q '"state": *"registered"'; }
sees() { bw bob --json search "$1" | grep -q "$2"; }
wait_for 60 "alice registered" registered alice
wait_for 60 "bob registered" registered bob

# ---- alice shares, bob downloads ---------------------------------------------
transfer() { # NAME MIB: alice shares a new random file, bob downloads and checks it
    local name=$1 mib=$2 hash path a b
    compose exec -T alice sh -c "head -c $((mib * 1048576)) /dev/urandom >/var/lib/bitween/shares/$name"
    hash=$(bw alice add "/var/lib/bitween/shares/$name" | awk '{print $1; exit}')
    [[ "$hash" =~ ^[0-9a-f]{40}$ ]] || fail "alice could not share $name: $hash"
    wait_for 60 "bob sees $name" sees "$name" "$hash"
    path=$(bw bob get "$hash" </dev/null | sed -n 's/^done: //p' | tr -d '\r' | tail -n1)
    [ -n "$path" ] || fail "bob's download of $name did not finish"
    a=$(compose exec -T alice sha256sum "/var/lib/bitween/shares/$name" | awk '{print $1}')
    # a download gets a folder of its own: the path is the file or its folder
    b=$(compose exec -T bob sh -c 'f=$1; [ -d "$f" ] && f=$f/$2; sha256sum "$f"' _ "$path" "$name" |
        awk '{print $1}')
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$name differs: alice $a, bob $b"
    ok "bob downloaded $name ($mib MiB) from alice through the containers; SHA-256 matches"
    echo "$hash"
}
t=$SECONDS
h1=$(transfer film.bin 48)
log "first transfer took $((SECONDS - t)) s"

# the addresses the component published for alice: the compose network's
subnet=$("$DOCKER" network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "${PROJECT}_xmpp")
alice_ip=$("$DOCKER" inspect -f "{{(index .NetworkSettings.Networks \"${PROJECT}_xmpp\").IPAddress}}" "$(cid alice)")
item=$(api "/api/v1/users/alice@bitween.test")
grep -q "\"$alice_ip\"" <<<"$item" || fail "alice's address $alice_ip (xmpp network $subnet) is not in her registration: $item"
! grep -q '"127\.0\.0\.1"' <<<"$item" || fail "alice announced loopback: $item"
ok "alice announced her compose-network address $alice_ip (subnet $subnet)"
grep -q "$h1" <<<"$(api "/api/v1/shares/$h1")" || fail "the admin API does not know who shares $h1"

# ---- the component survives its servers' restarts -----------------------------
comp_id=$(cid component)
started=$("$DOCKER" inspect -f '{{.State.StartedAt}}' "$comp_id")
for svc in prosody postgres; do
    t=$SECONDS
    compose restart "$svc" >/dev/null 2>&1
    wait_for 120 "$svc healthy again" healthy "$svc"
    wait_for 120 "the component ready again after restart $svc" readyz
    wait_for 120 "alice registered again" registered alice
    wait_for 120 "bob registered again" registered bob
    [ "$("$DOCKER" inspect -f '{{.State.StartedAt}}' "$comp_id")" = "$started" ] ||
        fail "the component container restarted with $svc"
    transfer "after-$svc.bin" 8 >/dev/null
    ok "restart $svc: the component reconnected by itself and shares flow again ($((SECONDS - t)) s)"
done

# ---- figures --------------------------------------------------------------------
for img in component agent prosody postgres; do
    size=$("$DOCKER" image inspect -f '{{.Size}}' "bitween-$img:$TAG")
    log "image bitween-$img:$TAG: $((size / 1048576)) MiB"
done
base=$("$DOCKER" image inspect -f '{{.Size}}' debian:bookworm-slim)
log "base debian:bookworm-slim: $((base / 1048576)) MiB"
compose down -v >/dev/null 2>&1
COMPOSE_UP=0
left=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "containers left after down: $left"
left=$("$DOCKER" volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "volumes left after down -v: $left"
ok "down -v left no container and no volume"
log "docker test passed in $((SECONDS - T0)) s (build ${BUILD_S} s, up to healthy ${UP_S} s)"
