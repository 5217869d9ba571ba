#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Downloads from contacts end to end: the real Prosody and PostgreSQL of
scripts/stack (run under tests/with_stack.sh), the real bitween-component
and bitween-agent processes, real libtorrent transfers; content checked by
SHA-256. Each agent listens on a loopback address of its own (127.0.0.2,
.3, ...) so that contacts on one machine look like different hosts.

- alice shares a generated 64 MiB folder; bob adds its hash: the folder
  arrives identical, in a new folder of bob's download directory, and then
  bob's item lists it (alice sees bob share it);
- alice's laptop and carol share the same file; bob downloads it slowly
  (a rate limit, so that the moment is not a race): his peer list maps
  peers to alice/laptop and carol; alice's desktop comes online later with
  the same file and bob connects to it without any action: three sources
  at once, each mapped to its contact and resource;
- bob's agent is killed (SIGKILL) at about half of a 256 MiB download and
  restarted: the download completes, and the bytes received after the
  restart (libtorrent's session counter) are clearly less than the total;
- a finished download seeds again without a check after a clean restart;
- bad input: a malformed hash, a v2-only hash, a save_path outside the
  allowed roots, pause/resume/remove with and without data.

- mallory (a contact) announces a crafted torrent whose file names try
  `..`, an absolute path and a link pointing out, beside an address
  where nobody listens: bob's download stays inside its own new folder
  (a folder of that name existed: it is left alone), completes from the
  good address, and the agent lives on; a hash whose only source never
  sends the metadata times out into a clear error;
- the bitween command line against bob's and alice's agents: every
  command, --json output parsed, exit codes, and the progress bar
  captured from a pseudo-terminal (script) with a moving percentage.

usage (under with_stack.sh): download_e2e.py BITWEEN_AGENT BITWEEN_COMPONENT BITWEEN_CLI
                             ANNOUNCE_TOOL
"""
import hashlib
import json
import re
import subprocess
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import agentlib  # noqa: E402
from agentlib import check, registered, stack, wait_for  # noqa: E402

AGENT, COMPONENT, CLI, ANNOUNCE = sys.argv[1:5]
SEEDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                      "crafted_seed.py")
DOMAIN = os.environ["BITWEEN_STACK_DOMAIN"]
ALICE, BOB, CAROL = "alice@" + DOMAIN, "bob@" + DOMAIN, "carol@" + DOMAIN
MALLORY = "mallory@" + DOMAIN
MiB = 1 << 20


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def random_file(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n


def tree_digest(root):
    """{relative path: sha256} of every file under `root` (or of `root`)."""
    out = {}
    if os.path.isfile(root):
        return {"": hashlib.sha256(open(root, "rb").read()).hexdigest()}
    for d, _, files in os.walk(root):
        for n in files:
            p = os.path.join(d, n)
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def torrent(a, hash_):
    for t in a.result("bt.get_torrents")["torrents"]:
        if t["hash"] == hash_:
            return t
    return None


def state(a, hash_):
    t = torrent(a, hash_)
    return t["state"] if t else None


last_seen = {}


def peers_of(a, hash_):
    """{(jid, resource)} of the connected peers (the torrent kept in
    last_seen for the failure message)."""
    t = torrent(a, hash_)
    last_seen[hash_] = t
    return {(p["jid"], p["resource"]) for p in t["peer_list"]} if t else set()


def cli(a, *args):
    """Run `bitween` against agent `a`: (exit status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITWEEN_")}
    p = subprocess.run([CLI, "--state-dir", a.state] + list(args), capture_output=True, text=True,
                       env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def cli_json(a, *args):
    rc, out, err = cli(a, "--json", *args)
    if rc != 0:
        raise SystemExit("bitween %s: exit %d: %s" % (" ".join(args), rc, err))
    return json.loads(out)


def main():
    work = tempfile.mkdtemp(prefix="bitween-download-e2e.")
    data = os.path.join(work, "data")
    folder = os.path.join(data, "holiday photos")
    for i in range(4):
        random_file(os.path.join(folder, "day %d" % i, "photo %d.jpg" % i), 15 * MiB)
    random_file(os.path.join(folder, "notes", "ünïcode ☀.txt"), 4 * MiB)
    # the same file at three places: alice's laptop, alice's desktop, carol
    film = os.path.join(data, "laptop", "film.mkv")
    random_file(film, 24 * MiB)
    for where in ("desktop", "carol"):
        os.makedirs(os.path.join(data, where))
        shutil.copy(film, os.path.join(data, where, "film.mkv"))
    big = os.path.join(data, "laptop", "big.iso")
    random_file(big, 256 * MiB)

    for user in ("alice", "bob", "carol", "mallory"):
        stack("adduser", user, "pw-" + user)
    stack("subscribe", "alice", "bob")
    stack("subscribe", "carol", "bob")
    stack("subscribe", "mallory", "bob")
    comp = agentlib.Component(COMPONENT, work)
    comp.start()

    def agent(user, resource, ip, **extra):
        return agentlib.stack_agent(AGENT, work, user, resource,
                                    listen_interfaces="%s:0" % ip, **extra)

    laptop = agent("alice", "laptop", "127.0.0.2")
    desktop = agent("alice", "desktop", "127.0.0.3")
    carol = agent("carol", "home", "127.0.0.4")
    phone = agent("bob", "phone", "127.0.0.5", metadata_timeout=10)
    agents = [laptop, desktop, carol, phone]
    children = []
    try:
        for a in (laptop, carol, phone):
            a.start()
        check("agents register", wait_for(60, lambda: all(registered(a) for a in
                                                          (laptop, carol, phone))))

        # -- bad input, before anything is shared
        r = phone.call("bt.add_torrent_by_hash", hash="xyz")
        check("a malformed hash is refused, saying what a hash is",
              r.get("error", {}).get("code") == -32602 and
              "info-hash" in r["error"]["message"], r)
        r = phone.call("bt.add_torrent_by_hash", hash="ab" * 32)
        check("a v2-only hash is refused as such",
              r.get("error", {}).get("data", {}).get("name") == "v2_hash" and
              "v2" in r["error"]["message"], r)
        r = phone.call("bt.add_torrent_by_hash", magnet="magnet:?xt=urn:btmh:1220" + "cd" * 32)
        check("a magnet naming only a v2 hash too", "v2" in r.get("error", {}).get("message", ""), r)
        r = phone.call("bt.add_torrent_by_hash", hash="12" * 20, save_path=data)
        check("a save_path outside the allowed roots is refused",
              "outside the download directory" in r.get("error", {}).get("message", ""), r)
        check("and nothing was added", phone.result("bt.get_torrents")["torrents"] == [])

        # -- a hash nobody shares waits, as long as it takes
        nobody = "34" * 20
        r = phone.result("bt.add_torrent_by_hash", hash=nobody)
        check("a hash nobody shares is accepted", not r["duplicate"] and r["sources"] == 0, r)
        t = torrent(phone, nobody)
        check("and waits for a source, saying so", t["state"] == "waiting for a source" and
              "no contact shares it" in t["detail"], t)

        # -- alice shares a 64 MiB folder; bob gets it
        fh = laptop.result("bt.add_path", path=folder, wait=True)["hash"]
        check("bob sees alice's folder",
              wait_for(60, lambda: fh in phone.view().get(ALICE, {}).get("laptop", {})),
              phone.view())
        rc, out, err = cli(phone, "get", fh)
        dest = os.path.join(work, "bob-phone.downloads", "holiday photos")
        check("bitween get HASH: exit 0 once the folder is here", rc == 0, (rc, out, err))
        check("it says where, and prints a line per change (not a terminal)",
              ("added into %s (1 source known)" % dest) in out and "100.0%" in out and
              ("done: %s" % dest) in out and "\r" not in out, out)
        r = cli_json(phone, "get", "--no-wait", "magnet:?xt=urn:btih:%s&dn=x" % fh)
        check("the same hash again is a duplicate, in the same folder",
              r["duplicate"] and r["path"] == dest and r["hash"] == fh, r)
        check("the folder is seeded", state(phone, fh) == "seeding", torrent(phone, fh))
        got = tree_digest(os.path.join(dest, "holiday photos"))
        check("identical, file by file (SHA-256)", got == tree_digest(folder),
              sorted(got.items())[:3])
        check("then bob's item lists it: alice sees bob share it",
              wait_for(60, lambda: fh in laptop.view().get(BOB, {}).get("phone", {})),
              laptop.view())
        t = torrent(phone, fh)
        check("the finished download reads as one", t["kind"] == "download" and
              t["progress"] == 1 and t["done"] == t["size"] == 64 * MiB and
              t["announce"] == "announced" and t["completed"], t)

        # -- one file from three sources, one of them coming online later
        lh = laptop.result("bt.add_path", path=film, wait=True)["hash"]
        ch = carol.result("bt.add_path", path=os.path.join(data, "carol", "film.mkv"),
                          wait=True)["hash"]
        check("the same data has the same hash everywhere", lh == ch)
        check("bob sees two sources", wait_for(60, lambda: len(
            phone.result("xmpp.get_hashes", hash=lh)["hashes"][0]["sources"]) == 2
            if phone.result("xmpp.get_hashes", hash=lh)["hashes"] else False))
        phone.result("bt.set_rates", download=512)  # KiB/s: 24 MiB take long enough
        phone.result("bt.add_torrent_by_hash", hash=lh)
        # the progress bar, as a terminal shows it
        env = {k: v for k, v in os.environ.items() if not k.startswith("BITWEEN_")}
        shown = os.path.join(work, "progress.txt")
        bar = subprocess.Popen(["script", "-qfec", "%s --state-dir %s get %s" %
                                (CLI, phone.state, lh), shown], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check("bob downloads from alice's laptop and carol at once",
              wait_for(60, lambda: {(ALICE, "laptop"), (CAROL, "home")} <= peers_of(phone, lh)),
              last_seen.get(lh))
        desktop.start()
        desktop.result("bt.add_path", path=os.path.join(data, "desktop", "film.mkv"), wait=True)
        check("alice's desktop, online later, is connected without any action from bob",
              wait_for(60, lambda: {(ALICE, "laptop"), (ALICE, "desktop"), (CAROL, "home")} <=
                       peers_of(phone, lh)), last_seen.get(lh))
        t = torrent(phone, lh)
        check("the status counts three sources and shows rates", t["sources"] == 3 and
              t["state"] == "downloading" and t["download_rate"] > 0, t)
        phone.result("bt.set_rates", download=0)
        check("it completes", wait_for(120, lambda: state(phone, lh) == "seeding"),
              torrent(phone, lh))
        check("bitween get on a terminal ends with it", bar.wait(60) == 0)
        frames = open(shown, errors="replace", newline="").read()  # keep the CRs
        pcts = [float(x) for x in re.findall(r"\r\x1b\[K\[[#.]{30}\]\s+([0-9.]+)%", frames)]
        check("and drew a bar whose percentage moved from under 50 % to 100 %",
              len(set(pcts)) >= 3 and min(pcts) < 50 and max(pcts) == 100.0 and
              "/s ETA" in frames and "done: " in frames, frames[-600:])
        dst = os.path.join(torrent(phone, lh)["path"], "film.mkv")
        check("identical (SHA-256)", tree_digest(dst) == tree_digest(film))

        # -- pause and resume; kill -9 at half of 256 MiB, then resume
        bh = laptop.result("bt.add_path", path=big, wait=True)["hash"]
        check("bob sees the big file",
              wait_for(60, lambda: bh in phone.view().get(ALICE, {}).get("laptop", {})))
        phone.result("bt.set_rates", download=8 * 1024)  # 8 MiB/s: about 32 s
        phone.result("bt.add_torrent_by_hash", hash=bh)
        check("downloading", wait_for(60, lambda: state(phone, bh) == "downloading"),
              torrent(phone, bh))
        r = phone.result("bt.pause", hash=bh)
        check("paused", r["state"] == "paused" and state(phone, bh) == "paused", r)
        r = phone.result("bt.resume", hash=bh)
        check("resumed", r["state"] != "paused", r)
        check("half way", wait_for(120, lambda: (torrent(phone, bh) or {}).get("progress", 0)
                                   >= 0.5), torrent(phone, bh))
        before = torrent(phone, bh)["done"]
        resume = os.path.join(phone.state, "downloads", bh + ".resume")
        half = time.time()
        check("its resume data is saved while it runs",
              wait_for(30, lambda: os.path.exists(resume) and os.path.getmtime(resume) > half))
        phone.kill()
        phone.start()
        phone.result("bt.set_rates", download=0)
        check("after kill -9 the download completes",
              wait_for(180, lambda: state(phone, bh) == "seeding"), torrent(phone, bh))
        t = torrent(phone, bh)
        check("and fetched clearly less than the whole after the restart",
              t["session_downloaded"] < 256 * MiB * 0.75 and t["session_downloaded"] > 0,
              "before kill %d bytes verified; after restart %d bytes received" %
              (before, t["session_downloaded"]))
        dst = os.path.join(t["path"], "big.iso")
        check("identical (SHA-256)", tree_digest(dst) == tree_digest(big))

        # -- a clean restart: everything seeds again without a check
        phone.stop()
        phone.start()
        ts = phone.result("bt.get_torrents", fields=["hash", "state", "session_downloaded"])
        seeding = [t for t in ts["torrents"] if t["state"] == "seeding"]
        check("after a clean stop the three downloads seed at once",
              {t["hash"] for t in seeding} == {fh, lh, bh}, ts)
        check("with nothing fetched again", all(t["session_downloaded"] == 0 for t in seeding),
              ts)

        # -- the other commands, with --json and as text
        r = cli_json(phone, "list")
        check("bitween list --json: the agent's torrents",
              {t["hash"] for t in r["torrents"]} == {fh, lh, bh, nobody}, r)
        rc, out, _ = cli(phone, "list")
        check("bitween list: a line each, with state and name", rc == 0 and
              "seeding" in out and "holiday photos" in out and "waiting for a source" in out, out)
        r = cli_json(phone, "shares", ALICE)
        check("bitween shares CONTACT --json", [c["jid"] for c in r["contacts"]] == [ALICE], r)
        rc, out, _ = cli(phone, "shares")
        check("bitween shares: contacts, devices, shares", rc == 0 and CAROL in out and
              "laptop" in out and "film.mkv" in out, out)
        r = cli_json(phone, "search", "HOLIDAY")
        check("bitween search --json: one result per hash, with its sources",
              [x["hash"] for x in r["results"]] == [fh] and r["results"][0]["here"] == "download",
              r)
        rc, out, _ = cli(phone, "search", "nothing like it")
        check("bitween search without a match says so", rc == 0 and "no share" in out, out)
        r = cli_json(phone, "status")
        check("bitween status --json", r["xmpp"]["state"] == "online" and
              r["registration"]["state"] == "registered", r)
        rc, out, _ = cli(phone, "status")
        check("bitween status", rc == 0 and "xmpp     online" in out and "registered" in out, out)
        rc, out, _ = cli(phone, "pause", nobody[:8])
        check("bitween pause PREFIX", rc == 0 and out.strip() == nobody + " paused", out)
        rc, out, _ = cli(phone, "resume", nobody[:8])
        check("bitween resume PREFIX", rc == 0 and "waiting for a source" in out, out)
        rc, out, _ = cli(laptop, "add", "--no-wait", film)
        check("bitween add: a path already shared", rc == 0 and "already shared" in out, out)
        for args, code, what in ((["pause", "zz"], 2, "not an info-hash"),
                                 (["get", "12"], 1, "info-hash"),
                                 (["rm", "abcdef"], 1, "no torrent"),
                                 (["frobnicate"], 2, "no command"),
                                 (["get"], 2, "one info-hash"),
                                 (["rm", fh[:8], "--delete-data", "--no-such-option"], 2, "")):
            rc, out, err = cli(phone, *args)
            check("bitween %s: exit %d" % (" ".join(args), code), rc == code and what in err,
                  (rc, out, err))
        rc, _, err = cli(phone, "get", "--help")
        check("bitween get --help", rc == 0, err)
        p = subprocess.run([CLI, "--state-dir", os.path.join(work, "nowhere"), "list"],
                           capture_output=True, text=True)
        check("no agent there: exit 3, saying so", p.returncode == 3 and
              "is bitween-agent running" in p.stderr, p.stderr)

        # -- a hostile contact: crafted names, a dead address, muted metadata
        seeders = [subprocess.Popen(["/usr/bin/python3", SEEDER] + mode + ["127.0.0.6", work],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for mode in ([], ["--mute"])]
        children.extend(seeders)
        (eh, esize, eport), (mh, msize, mport) = [s.stdout.readline().split() for s in seeders]
        mallory = subprocess.Popen(
            [ANNOUNCE, "mallory@%s/evil" % DOMAIN, "pw-mallory", os.environ["BITWEEN_STACK_C2S_PORT"],
             os.environ["BITWEEN_COMPONENT_JID"], "share:%s:%s:evil" % (eh, esize),
             "share:%s:%s:muted" % (mh, msize), "address:127.0.0.7:9",
             "address:127.0.0.6:%s" % eport, "address:127.0.0.6:%s" % mport],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(mallory)
        check("mallory's item is registered", mallory.stdout.readline().strip() == "registered")
        check("bob sees it", wait_for(60, lambda: eh in phone.view().get(MALLORY, {}).get(
            "evil", {})), phone.view())
        downloads = os.path.join(work, "bob-phone.downloads")
        write(os.path.join(downloads, "evil", "ok.txt"), b"mine")
        outside = [os.path.join(downloads, "escape.txt"), os.path.join(work, "escape.txt"),
                   os.path.join(work, "outside"), "/tmp/abs.txt"]
        existed = {p: os.path.lexists(p) for p in outside}
        r = phone.result("bt.add_torrent_by_hash", hash=eh)
        folder_e = r["path"]
        check("a folder named like the download exists: a new one is made beside it",
              folder_e == os.path.join(downloads, "evil (2)"), r)
        check("the crafted torrent completes from the good address, the dead one ignored",
              wait_for(60, lambda: state(phone, eh) == "seeding"), torrent(phone, eh))
        made = []
        for d, dirs, files in os.walk(folder_e):
            made += [os.path.join(d, n) for n in files + dirs]
        real = os.path.realpath(folder_e)
        check("every file it wrote is inside its folder, links too",
              made and all(os.path.realpath(p).startswith(real + os.sep) or
                           (os.path.islink(p) and os.readlink(p) == os.path.basename(p))
                           for p in made), made)
        check("with the data of each file", open(os.path.join(folder_e, "evil", "escape.txt"),
                                                  "rb").read() == b"\x01" * 20000)
        check("nothing outside it", all(os.path.lexists(p) == existed[p] for p in outside),
              {p: os.path.lexists(p) for p in outside})
        check("the folder that was there is untouched",
              open(os.path.join(downloads, "evil", "ok.txt"), "rb").read() == b"mine")
        phone.result("bt.add_torrent_by_hash", hash=mh)
        check("a hash whose source never sends the metadata times out into an error",
              wait_for(60, lambda: state(phone, mh) == "error"), torrent(phone, mh))
        t = torrent(phone, mh)
        check("saying why", "no source sent the metadata within 10 s" in t["error"], t)
        check("and the agent lives on", phone.alive() and
              phone.result("agent.status")["xmpp"]["state"] == "online")

        # -- remove: without data the files stay; with data they go
        path = torrent(phone, lh)["path"]
        phone.result("bt.del_torrent", hash=lh)
        check("removed without its data: the files stay",
              os.path.exists(os.path.join(path, "film.mkv")) and torrent(phone, lh) is None)
        path = torrent(phone, bh)["path"]
        rc, out, err = cli(phone, "rm", bh[:10], "--delete-data")
        check("bitween rm PREFIX --delete-data: the file and its folder go",
              rc == 0 and "its data deleted" in out and
              wait_for(30, lambda: not os.path.exists(path)), (rc, out, err))
        r = laptop.call("bt.del_torrent", hash=fh, delete_data=True)
        check("a share of one's own files never deletes them",
              "error" in r and os.path.exists(folder), r)
        r = phone.result("bt.del_torrent", hash=nobody, delete_data=True)
        check("a download without data removes its empty folder", r["removed"], r)
    finally:
        for c in children:
            c.kill()
            c.wait(30)
        for a in agents:
            if a.alive():
                a.kill()
        comp.stop()
    if agentlib.failures:
        for a in agents:
            print("---- %s\n%s" % (a.state, a.log_text()[-6000:]), file=sys.stderr)
        print("---- component\n" + open(comp.log_path).read()[-3000:], file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("download e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
