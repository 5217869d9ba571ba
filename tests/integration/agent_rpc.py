#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The real bitween-agent (real libtorrent, real HTTP) driven through its
JSON-RPC API, no XMPP server needed:

- the HTTP guards: a foreign Host (DNS rebinding) 421, a foreign Origin
  403, no token, a wrong one, one cut by a NUL byte, two Authorization
  headers 401, another path 404, another method 405, an oversized body
  413; the same origin and the right token pass;
- bt.add_path of a nested folder with spaces and multi-byte names and of
  a single file: the info-hash returned is the SHA-1 of the torrent's info
  dictionary, and every piece hash matches the files (both recomputed
  here with hashlib, tests/support/infohash.py);
- the API answers while a multi-GiB file is being hashed (a call returns
  while the share is still "hashing");
- after a restart every share seeds again without being hashed (the log
  says so, and no hashing line appears); a file modified while the agent
  was stopped, size kept, is checked and withdrawn, never seeded.

usage: agent_rpc.py BITWEEN_AGENT INFOHASH_PY
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from agentlib import Agent, check, infohash, wait_for  # noqa: E402
import agentlib  # noqa: E402

AGENT, INFOHASH = sys.argv[1], sys.argv[2]
BIG_GIB = 3


def http_guards(a):
    ok = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "agent.status"}).encode()
    status, _, body = a.http(body=ok)
    check("the right token passes", status == 200 and b'"result"' in body, body)
    status, _, _ = a.http(body=ok, headers={"Origin": "http://%s:%d" % (a.host, a.port)})
    check("the API's own origin passes", status == 200)
    status, _, _ = a.http(body=ok, headers={"Host": "localhost:%d" % a.port})
    check("localhost passes", status == 200)
    status, _, body = a.http(body=ok, headers={"Host": "evil.example:%d" % a.port})
    check("a foreign Host is refused (421)", status == 421 and b"bad_host" in body, status)
    status, _, _ = a.http(body=ok, headers={"Origin": "http://evil.example"})
    check("a foreign Origin is refused (403)", status == 403, status)
    status, headers, _ = a.http(body=ok, token=False)
    check("no token: 401 with WWW-Authenticate", status == 401 and
          headers.get("WWW-Authenticate") == "Bearer", status)
    status, _, _ = a.http(body=ok, token=False, headers={"Authorization": "Bearer nope"})
    check("a wrong token: 401", status == 401, status)
    head = ("POST /rpc HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            % (a.host, a.port)).encode()
    status = a.raw(head + b"Authorization: Bearer " + a.token.encode() + b"\0junk\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(ok) + ok)
    check("a token followed by a NUL byte: refused", status in (400, 401), status)
    status = a.raw(head + b"Authorization: Bearer x\r\nAuthorization: Bearer " +
                   a.token.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(ok) + ok)
    check("two Authorization headers: 401", status == 401, status)
    status, _, _ = a.http(path="/other")
    check("another path: 404", status == 404, status)
    status, headers, _ = a.http(method="GET")
    check("another method: 405 with Allow", status == 405 and headers.get("Allow") == "POST",
          status)
    status = a.raw(head + b"Authorization: Bearer " + a.token.encode() +
                   b"\r\nContent-Length: %d\r\n\r\n" % ((1 << 20) + 1))
    check("a body declared over 1 MiB: 413 before it is sent", status == 413, status)
    status = a.raw(head + b"Authorization: Bearer " + a.token.encode() +
                   b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   b"".join(b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n" for _ in range(17)) +
                   b"0\r\n\r\n")
    check("a chunked body over 1 MiB: 413", status == 413, status)
    status, _, body = a.http(body=b"{not json")
    check("not JSON: a parse error", status == 200 and b"-32700" in body, body)
    check("the token never reaches the log", a.token not in a.log_text())


def main():
    work = tempfile.mkdtemp(prefix="bitween-agent-rpc.")
    data = os.path.join(work, "data")
    folder = os.path.join(data, "holiday photos")
    os.makedirs(os.path.join(folder, "día 2", "ネコ"))
    for rel, size in (("a.txt", 1000), ("día 2/b b.bin", 300000),
                      ("día 2/ネコ/c.bin", 70000), ("día 2/ネコ/empty", 0)):
        with open(os.path.join(folder, rel), "wb") as f:
            f.write(os.urandom(size))
    secret = os.path.join(work, "secret.key")
    with open(secret, "wb") as f:
        f.write(b"private key\n")
    os.symlink(secret, os.path.join(folder, "día 2", "link to a key"))
    single = os.path.join(data, "notes.txt")
    with open(single, "wb") as f:
        f.write(b"a note\n" * 1000)
    big = os.path.join(data, "big.img")
    with open(big, "wb") as f:
        f.truncate(BIG_GIB << 30)

    a = Agent(AGENT, work, "state", {"BITWEEN_AGENT_JID": "alice@example.org",
                                      "BITWEEN_AGENT_PASSWORD": "pw",
                                      "BITWEEN_AGENT_XMPP_HOST": "127.0.0.1",
                                      "BITWEEN_AGENT_XMPP_PORT": "9",
                                      "BITWEEN_AGENT_XMPP_TLS": "disabled"})
    a.start()
    try:
        http_guards(a)

        hashes = {}
        for path in (folder, single):
            r = a.result("bt.add_path", path=path, wait=True)
            hashes[path] = r["hash"]
            torrent = os.path.join(a.state, "shares", r["hash"] + ".torrent")
            check("%s: the hash is the info dictionary's, every piece matches" %
                  os.path.basename(path), infohash(INFOHASH, torrent, data) == r["hash"],
                  (infohash(INFOHASH, torrent, data), r["hash"]))
        t = a.torrents()
        check("both seed", t[folder]["state"] == "seeding" and t[single]["state"] == "seeding")
        with open(os.path.join(a.state, "shares", hashes[folder] + ".torrent"), "rb") as f:
            check("a link inside a shared folder is not followed", b"link to a key" not in
                  f.read())
        r = a.call("bt.add_path", path=a.state)
        check("the state directory (with the RPC token) is never shared",
              r.get("error", {}).get("code") == -32002, r)
        r = a.call("bt.add_path", path=work)
        check("nor a folder holding it", r.get("error", {}).get("code") == -32002, r)
        check("sizes are the data's", t[folder]["size"] == 371000 and t[single]["size"] == 7000)

        # the API answers while a big file is hashed
        r = a.result("bt.add_path", path=big)
        check("a big file starts hashing", r["state"] == "hashing" and r["hash"] is None)
        answered_while_hashing = 0
        for _ in range(5):
            s = a.result("agent.status")
            t = a.torrents()
            if t[big]["state"] == "hashing" and s["shares"]["hashing"] == 1:
                answered_while_hashing += 1
        check("calls return while the %d GiB file is still hashing" % BIG_GIB,
              answered_while_hashing == 5, answered_while_hashing)
        progressed = wait_for(600, lambda: a.torrents()[big]["hashed"] > 0 or
                              a.torrents()[big]["state"] != "hashing")
        check("hashing progress is reported", progressed)
        done = wait_for(900, lambda: a.torrents()[big]["state"] != "hashing")
        check("the big file is shared once hashed", done and
              a.torrents()[big]["state"] == "seeding", a.torrents()[big])
        hashes[big] = a.torrents()[big]["hash"]
        check("three shares are kept",
              len(os.listdir(os.path.join(a.state, "shares"))) == 9)
        check("a clean stop", a.stop() == 0)

        # restart: seeded again without hashing
        a.start()
        t = a.torrents()
        check("after a restart all three seed at once",
              all(t[p]["state"] == "seeding" for p in hashes), t)
        log = a.log_text()
        check("the log says none was checked or hashed",
              "3 share(s) loaded" in log and "3 seeding without a check" in log and
              "hashing " not in log, log[-2000:])
        check("a clean stop again", a.stop() == 0)

        # a file modified while the agent was stopped, size kept
        target = os.path.join(folder, "día 2", "b b.bin")
        with open(target, "r+b") as f:
            f.seek(1000)
            f.write(b"changed!")
        a.start()
        settled = wait_for(60, lambda: a.torrents()[folder]["state"] not in ("checking",))
        t = a.torrents()
        check("the changed folder is checked and withdrawn",
              settled and t[folder]["state"] == "error", t[folder])
        check("the others still seed", t[single]["state"] == "seeding" and
              t[big]["state"] == "seeding")
        log = a.log_text()
        check("the log says why", "changed while the agent was stopped" in log and
              "withdrawn" in log, log[-2000:])
        check("the user's file is untouched", open(target, "rb").read()[1000:1008] ==
              b"changed!")
        check("the last clean stop", a.stop() == 0)
    finally:
        if a.proc and a.proc.poll() is None:
            a.proc.kill()
        if agentlib.failures:
            print("----- agent log -----\n" + open(a.log_path).read()[-6000:], file=sys.stderr)
        subprocess.run(["rm", "-rf", work])
    sys.exit(1 if agentlib.failures else 0)


main()
