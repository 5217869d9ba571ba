#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Agent benchmark, run by `scripts/bench agent` under tests/with_stack.sh
(real Prosody, PostgreSQL, bitween-component and agents), each measurement
beside its baseline in the same run, in alternating order:

1. hashing: bt.add_path of a 1 GiB file (random data, in the page cache)
   with wait: true, from the call to the hash being known, beside
   `sha1sum` of the same file. Target: at most 1.5x sha1sum's time.
2. announcing: bt.add_path of a small file on alice's agent until bob's
   agent lists it (polled every 2 ms), beside the component's own
   update-to-notification latency: a minimal XMPP client of alice's sends
   the same kind of <add/> to the component directly, until bob's agent
   lists that share. Target: at most 1.5x the baseline plus the hashing
   time (which the agent reports).

Prints every round, the median and the worst ratio.

usage: agent_bench.py BITWEEN_AGENT BITWEEN_COMPONENT [--rounds N] [--gib N]
"""
import base64
import hashlib
import hmac
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))
from agentlib import Agent, wait_for  # noqa: E402

AGENT, COMPONENT = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5
GIB = int(sys.argv[sys.argv.index("--gib") + 1]) if "--gib" in sys.argv else 1
STACK = os.environ["BITWEEN_STACK_SCRIPT"]
STACK_DIR = os.environ["BITWEEN_STACK_DIR"]
DOMAIN = os.environ["BITWEEN_STACK_DOMAIN"]
COMP = os.environ["BITWEEN_COMPONENT_JID"]
C2S = int(os.environ["BITWEEN_STACK_C2S_PORT"])


class RawClient:
    """Just enough XMPP (plaintext on loopback, SASL PLAIN, bind) to send
    the component a request and read its answer."""

    def __init__(self, user, password, resource):
        self.s = socket.create_connection(("127.0.0.1", C2S), timeout=30)
        self.buf = b""
        self.open()
        self.expect(b"</stream:features>")
        self.scram(user, password)
        self.open()
        self.expect(b"</stream:features>")
        self.s.sendall(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       b"<resource>" + resource.encode() + b"</resource></bind></iq>")
        self.expect(b"</iq>")
        self.s.sendall(b"<presence><priority>-1</priority></presence>"
                       b"<presence to='" + COMP.encode() + b"'/>")

    def scram(self, user, password):
        """SASL SCRAM-SHA-1 (RFC 5802), as the server asks on plaintext."""
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (user, nonce)
        self.s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
                       + base64.b64encode(("n,," + first_bare).encode()) + b"</auth>")
        got = self.expect(b"</challenge>")
        server_first = base64.b64decode(re.search(rb">([^<]+)</challenge>", got).group(1)).decode()
        fields = dict(f.split("=", 1) for f in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha1", password.encode(), base64.b64decode(fields["s"]),
                                     int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
        final_bare = "c=biws,r=" + fields["r"]
        auth_msg = ",".join((first_bare, server_first, final_bare)).encode()
        sig = hmac.new(hashlib.sha1(client_key).digest(), auth_msg, hashlib.sha1).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        self.s.sendall(b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
                       base64.b64encode((final_bare + ",p=" + proof).encode()) + b"</response>")
        self.expect(b"<success")

    def open(self):
        self.buf = b""
        self.s.sendall(b"<?xml version='1.0'?><stream:stream to='" + DOMAIN.encode() +
                       b"' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
                       b" version='1.0'>")

    def expect(self, marker):
        while marker not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise SystemExit("raw client: stream closed waiting for %r" % marker)
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def request(self, iq_id, payload):
        self.s.sendall(b"<iq type='set' id='" + iq_id.encode() + b"' to='" + COMP.encode() +
                       b"'>" + payload + b"</iq>")
        while True:
            got = self.expect(b">")
            if re.search(rb"<iq[^>]*id=['\"]" + iq_id.encode() + rb"['\"]", got):
                if b"type='error'" in got or b'type="error"' in got:
                    raise SystemExit("raw client: refused: %r" % (got + self.buf[:500]))
                return


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main():
    work = tempfile.mkdtemp(prefix="bitween-agent-bench.")
    for user in ("alice", "bob"):
        subprocess.run([STACK, "adduser", STACK_DIR, user, "pw"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([STACK, "subscribe", STACK_DIR, "alice", "bob"], check=True,
                   stdout=subprocess.DEVNULL)
    env = dict(os.environ, BITWEEN_DOMAINS=DOMAIN, BITWEEN_ALLOW_LOOPBACK_ADDRESSES="true",
               BITWEEN_API_PORT="0", BITWEEN_LOG_LEVEL="warn")
    comp = subprocess.Popen([COMPONENT], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "component.log"), "w"))

    def agent(user, resource):
        return Agent(AGENT, work, user + "-" + resource, {
            "BITWEEN_AGENT_JID": "%s@%s" % (user, DOMAIN), "BITWEEN_AGENT_PASSWORD": "pw",
            "BITWEEN_AGENT_RESOURCE": resource, "BITWEEN_AGENT_XMPP_HOST": "127.0.0.1",
            "BITWEEN_AGENT_XMPP_PORT": str(C2S), "BITWEEN_AGENT_XMPP_TLS": "disabled",
            "BITWEEN_AGENT_COMPONENT_JID": COMP, "BITWEEN_AGENT_ALLOW_LOOPBACK_ADDRESSES": "true",
            "BITWEEN_AGENT_LOG_LEVEL": "warn"})

    alice, bob = agent("alice", "laptop"), agent("bob", "phone")
    try:
        alice.start()
        bob.start()
        wait_for(30, lambda: all(a.result("agent.status")["registration"]["state"] ==
                                 "registered" for a in (alice, bob)))

        # 1. hashing
        big = os.path.join(work, "big.bin")
        with open(big, "wb") as f:
            for _ in range(GIB * 64):
                f.write(os.urandom(16 << 20))
        subprocess.run(["sha1sum", big], check=True, stdout=subprocess.DEVNULL)  # page cache
        print("hashing %d GiB (random data, page cache warm), %d rounds, order alternating"
              % (GIB, ROUNDS), flush=True)
        print("%5s %12s %12s %8s" % ("round", "agent s", "sha1sum s", "ratio"), flush=True)
        ratios = []
        for r in range(ROUNDS):
            def run_agent():
                t0 = time.monotonic()
                h = alice.result("bt.add_path", path=big, wait=True)["hash"]
                t = time.monotonic() - t0
                alice.result("bt.del_torrent", hash=h)
                return t

            def run_sha1():
                t0 = time.monotonic()
                subprocess.run(["sha1sum", big], check=True, stdout=subprocess.DEVNULL)
                return time.monotonic() - t0
            if r % 2 == 0:
                ta, ts = run_agent(), run_sha1()
            else:
                ts, ta = run_sha1(), run_agent()
            ratios.append(ta / ts)
            print("%5d %12.2f %12.2f %7.2fx" % (r + 1, ta, ts, ta / ts), flush=True)
        print("hashing: agent/sha1sum median %.2fx, worst %.2fx (target <= 1.50x)"
              % (median(ratios), max(ratios)), flush=True)
        os.unlink(big)

        # 2. announcing
        raw = RawClient("alice", "pw", "raw")
        seq = int(time.time() * 1000) * 1000

        def bob_has(h):
            return any(h in r for r in bob.view().get("alice@" + DOMAIN, {}).values())
        print("\nannouncing: add to contact's listing, %d rounds, order alternating" % ROUNDS,
              flush=True)
        print("%5s %12s %12s %12s %8s" % ("round", "agent ms", "hashing ms", "raw ms",
                                          "ratio"), flush=True)
        worst_excess = []
        raw_first = b"<register xmlns='urn:bitween:agent:1' seq='%d'/>" % seq
        raw.request("r0", raw_first)
        for r in range(ROUNDS):
            def run_agent():
                p = os.path.join(work, "small-%d.txt" % r)
                with open(p, "wb") as f:
                    f.write(os.urandom(1000))
                t0 = time.monotonic()
                res = alice.result("bt.add_path", path=p, wait=True)
                th = time.monotonic() - t0
                if not wait_for(30, lambda: bob_has(res["hash"]), step=0.002):
                    raise SystemExit("bob never listed alice's share")
                return time.monotonic() - t0, th

            def run_raw():
                nonlocal seq
                seq += 1
                h = os.urandom(20).hex()
                payload = (b"<add xmlns='urn:bitween:agent:1' seq='%d'><share_item hash='%s'"
                           b" name='raw-%d.txt' size='1000'/></add>" % (seq, h.encode(), r))
                t0 = time.monotonic()
                raw.request("a%d" % r, payload)
                if not wait_for(30, lambda: bob_has(h), step=0.002):
                    raise SystemExit("bob never listed the raw client's share")
                return time.monotonic() - t0
            if r % 2 == 0:
                (ta, th), tr = run_agent(), run_raw()
            else:
                tr, (ta, th) = run_raw(), run_agent()
            ratio = (ta - th) / tr
            worst_excess.append(ratio)
            print("%5d %12.1f %12.1f %12.1f %7.2fx" % (r + 1, ta * 1000, th * 1000, tr * 1000,
                                                       ratio), flush=True)
        print("announcing: (agent - hashing) / raw median %.2fx, worst %.2fx (target <= 1.50x)"
              % (median(worst_excess), max(worst_excess)), flush=True)
    finally:
        for a in (alice, bob):
            if a.alive():
                a.stop()
        comp.terminate()
        comp.wait(30)
        subprocess.run(["rm", "-rf", work])


main()
