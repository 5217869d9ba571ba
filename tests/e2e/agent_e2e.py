#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Agents end to end: the real Prosody and PostgreSQL of scripts/stack
(run under tests/with_stack.sh), the real bitween-component, real
bitween-agent processes for alice (devices laptop and desktop) and bob
(phone), mutual contacts, all driven through their JSON-RPC APIs.

- alice shares a folder (nested, spaces, multi-byte names) and a file; bob
  lists both under alice's laptop with names, sizes, hashes and the
  laptop's address; the hash is the info dictionary's SHA-1 and every
  piece matches the data (recomputed with hashlib);
- alice's desktop shares too: bob sees both devices; bt.del_torrent on the
  laptop withdraws that share only;
- kill -9 of the desktop: bob's view drops it; restarted, its share comes
  back without being hashed again (its log says so);
- the component holds a newer seq for the desktop than the agent's: its
  next update is refused with conflict, and the agent catches up from the
  stored seq (docs/protocol.md §1.2) by itself;
- Prosody restarts: the agents reconnect and register again; bob's view
  is whole again;
- a file of a shared folder is changed while the laptop's agent is
  stopped, its size kept: after the restart the folder is not announced;
- the component's quota is two shares per resource: the two newest are
  announced, the rest are reported "not announced: over the server's
  quota";
- a name holding a bidirectional isolate is announced with U+FFFD in its
  place, never dropped; one that libtorrent itself rewrites (a right-to-left
  override) is refused with the reason;
- TLS: with a certificate made here for the server, an agent that trusts
  its CA (xmpp_ca_file) logs in over TLS; one that does not trust it, with
  TLS required, does not log in and says why.

usage (under with_stack.sh): agent_e2e.py BITWEEN_AGENT BITWEEN_COMPONENT INFOHASH_PY
"""
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from agentlib import check, infohash, registered, stack, stack_service, wait_for  # noqa: E402
import agentlib  # noqa: E402

AGENT, COMPONENT, INFOHASH = sys.argv[1:4]
STACK_DIR = os.environ["BITWEEN_STACK_DIR"]
DOMAIN = os.environ["BITWEEN_STACK_DOMAIN"]
COMP_JID = os.environ["BITWEEN_COMPONENT_JID"]
ALICE, BOB = "alice@" + DOMAIN, "bob@" + DOMAIN


class Component(agentlib.Component):
    def __init__(self, work):
        super().__init__(COMPONENT, work)


def agent(work, user, resource):
    return agentlib.stack_agent(AGENT, work, user, resource)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tls_setup(work):
    """A CA and a certificate for the server's domain, given to Prosody,
    which is restarted to offer STARTTLS with it."""
    certs = os.path.join(STACK_DIR, "prosody", "data", "certs")
    os.makedirs(certs, exist_ok=True)
    ca_key, ca = os.path.join(work, "ca.key"), os.path.join(work, "ca.pem")
    key, csr = os.path.join(certs, DOMAIN + ".key"), os.path.join(work, "server.csr")
    ext = os.path.join(work, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s,DNS:%s\nbasicConstraints=CA:FALSE\n" % (DOMAIN, COMP_JID))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=bitween test CA", "-keyout", ca_key, "-out", ca], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + DOMAIN,
                    "-keyout", key, "-out", csr], **quiet)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-extfile", ext,
                    "-out", os.path.join(certs, DOMAIN + ".crt")], **quiet)
    os.chmod(key, 0o644)  # Prosody may run as another user
    stack_service("restart", "prosody")


def main():
    work = tempfile.mkdtemp(prefix="bitween-agent-e2e.")
    data = os.path.join(work, "data")
    folder = os.path.join(data, "summer trip")
    write(os.path.join(folder, "day 1", "beach ☀.jpg"), os.urandom(200000))
    write(os.path.join(folder, "día 2", "ネコ.png"), os.urandom(70000))
    write(os.path.join(folder, "notes.txt"), b"sun\n" * 500)
    single = os.path.join(data, "recipe.pdf")
    write(single, os.urandom(12345))
    other = os.path.join(data, "desk", "draft.odt")
    write(other, os.urandom(4321))

    for user in ("alice", "bob"):
        stack("adduser", user, "pw-" + user)
    stack("subscribe", "alice", "bob")
    comp = Component(work)
    comp.start()
    laptop, desktop, phone = agent(work, "alice", "laptop"), agent(work, "alice", "desktop"), \
        agent(work, "bob", "phone")
    agents = [laptop, desktop, phone]
    try:
        laptop.start()
        phone.start()
        check("both agents register", wait_for(30, lambda: registered(laptop) and
                                                registered(phone)))

        # -- alice shares; bob sees it
        hashes = {}
        for path in (folder, single):
            r = laptop.result("bt.add_path", path=path, wait=True)
            hashes[path] = r["hash"]
            torrent = os.path.join(laptop.state, "shares", r["hash"] + ".torrent")
            check("%s: the hash is the info dictionary's SHA-1, every piece matches" %
                  os.path.basename(path), infohash(INFOHASH, torrent, data) == r["hash"],
                  infohash(INFOHASH, torrent, data))

        def bob_sees(resource, hash_, name=None):
            v = phone.view().get(ALICE, {}).get(resource, {})
            return hash_ in v and (name is None or v[hash_][0] == name)

        check("bob lists alice's folder and file",
              wait_for(30, lambda: bob_sees("laptop", hashes[folder], "summer trip") and
                       bob_sees("laptop", hashes[single], "recipe.pdf")), phone.view())
        v = phone.view()[ALICE]["laptop"]
        check("with their sizes", v[hashes[folder]][1] == 272000 and
              v[hashes[single]][1] == 12345, v)
        port = laptop.result("agent.status")["listen_ports"][0]
        src = phone.result("xmpp.get_hashes", hash=hashes[single])["hashes"]
        check("and the laptop's address", src and src[0]["sources"][0]["addresses"] ==
              [{"address": "127.0.0.1", "port": port}], src)
        check("the server told the agent its address (XEP-0279)",
              "the server sees this device at 127.0.0.1 (XEP-0279)" in laptop.log_text(),
              laptop.log_text()[-2000:])
        st = laptop.result("agent.status")
        check("alice's status: registered, two announced", st["registration"]["state"] ==
              "registered" and st["registration"]["announced"] == 2, st["registration"])

        # -- a second device
        desktop.start()
        dh = desktop.result("bt.add_path", path=other, wait=True)["hash"]
        check("bob sees both of alice's devices",
              wait_for(30, lambda: bob_sees("desktop", dh) and bob_sees("laptop", hashes[folder])),
              phone.view())
        laptop.result("bt.del_torrent", hash=hashes[single])
        check("a removed share leaves bob's view, the rest stays",
              wait_for(30, lambda: not bob_sees("laptop", hashes[single]) and
                       bob_sees("laptop", hashes[folder]) and bob_sees("desktop", dh)),
              phone.view())
        check("the user's file is still there", os.path.getsize(single) == 12345)

        # -- kill -9 of a device, then its restart
        desktop.kill()
        check("a killed device leaves bob's view",
              wait_for(60, lambda: "desktop" not in phone.view().get(ALICE, {})), phone.view())
        desktop.start()
        check("restarted, its share comes back", wait_for(30, lambda: bob_sees("desktop", dh)),
              phone.view())
        log = desktop.log_text()
        check("without hashing again", "1 seeding without a check" in log and
              "INFO share: hashing" not in log, log[-1500:])

        # -- the component holds a newer seq (another install of this
        # device, a clock stepped back): the agent catches up by itself
        stale = 9 * 10 ** 18
        subprocess.run(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", os.environ["BITWEEN_DATABASE_URL"],
                        "-c", "UPDATE resources SET seq = %d WHERE resource = 'desktop'" % stale],
                       check=True, stdout=subprocess.DEVNULL)
        newer = os.path.join(data, "desk", "newer.txt")
        write(newer, b"newer\n" * 10)
        nh = desktop.result("bt.add_path", path=newer, wait=True)["hash"]
        check("after a conflict the agent continues from the stored seq",
              wait_for(30, lambda: bob_sees("desktop", nh) and
                       desktop.result("agent.status")["registration"]["seq"] > stale),
              desktop.result("agent.status")["registration"])
        check("and says so", "holds a newer seq (%d)" % stale in desktop.log_text())

        # -- the XMPP server restarts
        stack_service("restart", "prosody")
        check("the agents reconnect and register again",
              wait_for(60, lambda: all(registered(a) for a in (laptop, desktop, phone))),
              [a.result("agent.status")["registration"] for a in agents])
        check("bob's view is whole again",
              wait_for(60, lambda: bob_sees("laptop", hashes[folder]) and bob_sees("desktop", dh)),
              phone.view())
        check("the laptop logged its reconnection", "connection lost" in laptop.log_text() or
              "stream error" in laptop.log_text())

        # -- a file changed while the agent was stopped, size kept
        check("a clean stop", laptop.stop() == 0)
        check("the stopped laptop leaves bob's view",
              wait_for(30, lambda: "laptop" not in phone.view().get(ALICE, {})), phone.view())
        target = os.path.join(folder, "day 1", "beach ☀.jpg")
        with open(target, "r+b") as f:
            f.seek(5000)
            f.write(b"edited")
        laptop.start()
        check("the laptop is back", wait_for(30, lambda: "laptop" in
                                             phone.view().get(ALICE, {})), phone.view())
        wait_for(30, lambda: laptop.torrents()[folder]["state"] not in ("checking",))
        check("the changed folder is not announced with its old hash",
              not bob_sees("laptop", hashes[folder]) and
              laptop.torrents()[folder]["state"] == "error", laptop.torrents()[folder])

        # -- names the component would refuse are shown with U+FFFD
        odd = os.path.join(data, "photo\u2066gpj.exe")
        write(odd, b"x" * 99)
        oh = laptop.result("bt.add_path", path=odd, wait=True)["hash"]
        check("a name with a bidi isolate is announced with U+FFFD",
              wait_for(30, lambda: bob_sees("laptop", oh, "photo\ufffdgpj.exe")), phone.view())
        # libtorrent itself rewrites a few characters (an override, a tab):
        # such a file cannot be seeded from where it is, and says so
        odd2 = os.path.join(data, "photo\u202egpj.exe")
        write(odd2, b"y" * 99)
        r = laptop.call("bt.add_path", path=odd2, wait=True)
        check("a name BitTorrent clients rewrite is refused in words",
              r.get("error", {}).get("code") == -32005 and
              "rename it" in r["error"]["message"], r)

        # -- quotas: two shares per resource
        for a in agents:
            if a.alive():
                a.stop()
        comp.stop()
        comp.start(BITWEEN_MAX_SHARES_PER_RESOURCE="2")
        laptop.start()
        phone.start()
        names = []
        for i in range(4):
            p = os.path.join(data, "q", "file%d.bin" % i)
            write(p, os.urandom(1000 + i))
            names.append(laptop.result("bt.add_path", path=p, wait=True)["hash"])
        check("the two newest are announced",
              wait_for(30, lambda: bob_sees("laptop", names[3]) and bob_sees("laptop", names[2])),
              phone.view())
        v = phone.view()[ALICE]["laptop"]
        check("and nothing else", len(v) == 2, v)
        st = laptop.result("agent.status")["registration"]
        check("the status counts the others", st["not_announced"] == 3 and
              st["state"] == "registered",
              (st, [(x["name"], x["state"], x["announce"])
                    for x in laptop.result("bt.get_torrents")["torrents"]]))
        t = {x["hash"]: x["announce"] for x in laptop.result("bt.get_torrents")["torrents"]
             if x["hash"]}
        check("each says why", t[names[0]] == "not announced: over the server's quota" and
              t[names[3]] == "announced", t)

        # -- TLS with a certificate of our own
        tls_setup(work)
        tablet = agent(work, "bob", "tablet")
        tablet.env.update(BITWEEN_AGENT_XMPP_TLS="required",
                          BITWEEN_AGENT_XMPP_CA_FILE=os.path.join(work, "ca.pem"))
        agents.append(tablet)
        tablet.start()
        check("an agent trusting the server's CA logs in over TLS",
              wait_for(30, lambda: tablet.result("agent.status")["xmpp"]["tls"] and
                       registered(tablet)), tablet.result("agent.status")["xmpp"])
        check("and sees alice's shares",
              wait_for(30, lambda: names[3] in tablet.view().get(ALICE, {}).get("laptop", {})),
              tablet.view())
        wary = agent(work, "bob", "wary")
        wary.env.update(BITWEEN_AGENT_XMPP_TLS="required")
        agents.append(wary)
        wary.start()
        st = wait_for(30, lambda: wary.result("agent.status")["xmpp"]["error"] and
                      wary.result("agent.status")["xmpp"])
        check("an agent not trusting it does not log in, and says so",
              st and st["state"] != "online" and "could not connect or log in" in st["error"],
              st)
    finally:
        for a in agents:
            if a.alive():
                a.kill()
        if comp.proc and comp.proc.poll() is None:
            comp.proc.kill()
        if agentlib.failures:
            for a in agents:
                print("----- %s -----\n%s" % (a.log_path, open(a.log_path, errors="replace")
                                             .read()[-5000:]), file=sys.stderr)
            print("----- component -----\n" + open(comp.log_path).read()[-3000:],
                  file=sys.stderr)
        subprocess.run(["rm", "-rf", work])
    sys.exit(1 if agentlib.failures else 0)


main()
