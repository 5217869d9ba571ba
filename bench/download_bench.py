#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Download benchmark, run by `scripts/bench download` under
tests/with_stack.sh: the real Prosody, PostgreSQL, bitween-component and
agents, each agent on a loopback address of its own (alice's laptop
127.0.0.2, her desktop 127.0.0.3, bob 127.0.0.4), beside plain libtorrent
sessions (bench/download_plain.py: the same libtorrent, the shim's
settings; seeders on 127.0.0.5 and .6, the leecher on 127.0.0.7), in the
same run. One file of random data (1 GiB by default), in the page cache.

1. one source: bob's agent adds alice's hash (bt.add_torrent_by_hash;
   the source comes from alice's merged item through XMPP), timed from
   the call to all pieces verified (bt.get_torrents polled every 50 ms
   until `seeding`), beside a plain leecher that adds the same hash as a
   magnet, connect_peer()s the plain seeder and waits for torrent_finished.
   Target: the agent's throughput at least 0.90x the plain sessions'.
2. two sources: alice's laptop and desktop (two agents sharing the same
   file) beside the laptop alone, and the same for plain sessions.
3. CPU time per GiB received (user + system, all threads): bob's agent
   from /proc/PID/stat over the transfer, the plain leecher its own.

Like the shim, the plain sessions connect to peers over TCP and accept
uTP. As a reference (no target), every round also times a plain leecher
with libtorrent's default, outgoing uTP on (it connects over uTP first),
from the same seeders. Each transfer records the UDP datagrams the machine's
sockets dropped for a full receive buffer (/proc/net/snmp, the whole
network namespace), the CPU time of the seeders and the busy cores of the
whole machine, since on a small machine other work shows in the figures.

Before the rounds, one untimed download from each seeder alone: seeders
add a share in seed mode (as the agent does after hashing) and verify each
piece the first time a peer asks for it; the warm-up makes every seeder
serve verified pieces in the timed rounds (the agents keep that across the
restarts that toggle the desktop). The order of agent and plain (and of
one and two sources) alternates per round; every download goes to a fresh
folder that is deleted before the next one (disk: the source plus one
copy). Prints every round, the median, the worst and the max.

usage: download_bench.py BITWEEN_AGENT BITWEEN_COMPONENT [--rounds N] [--gib N]
                         [--mib N (instead of --gib, for a quick try)]
                         [--timeout SECONDS_PER_GIB (default 900)]
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
import agentlib  # noqa: E402
from agentlib import registered, stack, wait_for  # noqa: E402


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


AGENT, COMPONENT = sys.argv[1], sys.argv[2]
ROUNDS = arg("--rounds", 3)
MIB = arg("--mib", arg("--gib", 1) * 1024)
SIZE = MIB << 20
TIMEOUT = max(60.0, arg("--timeout", 900.0) * MIB / 1024)  # seconds for one transfer
PLAIN = os.path.join(HERE, "download_plain.py")
HZ = os.sysconf("SC_CLK_TCK")
GiB = 1 << 30
POLL = 0.05


def plain_python():
    """An interpreter that has libtorrent's bindings: ours, else Debian's
    (python3-libtorrent), which a python3 of pyenv or a venv does not see."""
    for py in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(py) and subprocess.run([py, "-c", "import libtorrent"],
                                                 capture_output=True).returncode == 0:
            return py
    raise SystemExit("download bench: no python3 with libtorrent's bindings "
                     "(scripts/deps installs python3-libtorrent)")


def cpu_of(pid):
    """User + system CPU seconds of a process, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def machine():
    """Busy CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / HZ


def snmp():
    """{(protocol, counter): value} of /proc/net/snmp."""
    out = {}
    with open("/proc/net/snmp") as f:
        lines = f.read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        proto = head.split(":")[0]
        for k, v in zip(head.split()[1:], vals.split()[1:]):
            out[(proto, k)] = int(v)
    return out


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


class Meter:
    """CPU of some processes, busy cores of the machine and UDP drops over
    a span."""

    def __init__(self, pids):
        self.pids = pids
        self.c0 = [cpu_of(p) for p in pids]
        self.m0 = machine()
        self.n0 = snmp()
        self.t0 = time.monotonic()

    def stop(self):
        c1 = [cpu_of(p) for p in self.pids]
        m1 = machine()
        n1 = snmp()
        self.wall = time.monotonic() - self.t0
        self.cpu = [b - a for a, b in zip(self.c0, c1)]
        self.busy = (m1 - self.m0) / self.wall  # cores
        self.udp = n1[("Udp", "InDatagrams")] - self.n0[("Udp", "InDatagrams")]
        self.udp_drops = n1[("Udp", "RcvbufErrors")] - self.n0[("Udp", "RcvbufErrors")]
        self.tcp = n1[("Tcp", "InSegs")] - self.n0[("Tcp", "InSegs")]
        return self


def read_line(proc, seconds, what):
    """One line of a child's (unbuffered, binary) stdout within `seconds`."""
    end = time.monotonic() + seconds
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise SystemExit("download bench: %s: nothing within %.0f s" % (what, seconds))
        chunk = os.read(fd, 1)
        if not chunk:
            raise SystemExit("download bench: %s: exited (%s)" % (what, proc.wait(10)))
        buf += chunk
    return buf.decode().strip()


def result(seconds, cpu, received, meter, seeder_cpu, split, first=None):
    return {"s": seconds, "cpu": cpu, "received": received, "seeder_cpu": seeder_cpu,
            "busy": meter.busy, "udp": meter.udp, "udp_drops": meter.udp_drops, "tcp": meter.tcp,
            "split": split, "first": first or [None] * len(split)}


class Bench:
    def __init__(self, work):
        self.work = work
        self.procs = []  # plain sessions, ended in cleanup()
        self.py = plain_python()
        self.log = open(os.path.join(work, "plain.log"), "a")

    def spawn(self, *args):
        p = subprocess.Popen([self.py, PLAIN] + [str(a) for a in args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, bufsize=0, stderr=self.log)
        self.procs.append(p)
        return p

    def end(self, p):
        if p.poll() is None:
            try:
                p.stdin.close()
                p.wait(10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                p.kill()
                p.wait(10)
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.procs = []

    # ---- plain libtorrent ----------------------------------------------------

    def plain_seeder(self, address, torrent, save_dir):
        p = self.spawn("seed", address, torrent, save_dir)
        line = read_line(p, 60, "plain seeder on " + address)
        p.endpoint = "%s:%s" % (address, line.split()[1])
        return p

    def plain(self, seeders, h, name, check=None, tcp=False):
        """A plain leecher downloads `h` from `seeders`: a result dict."""
        dest = tempfile.mkdtemp(prefix="plain.", dir=self.work)
        p = self.spawn("leech", *((["--utp"] if tcp else []) +
                                  ["127.0.0.7", h, name, dest, TIMEOUT] +
                                  [s.endpoint for s in seeders]))
        try:
            read_line(p, 60, "plain leecher")
            m = Meter([s.pid for s in seeders])
            p.stdin.write(b"go\n")
            r = json.loads(read_line(p, TIMEOUT + 60, "plain leecher"))
            m.stop()
        finally:
            self.end(p)
        if not r["ok"] or r["verified"] != r["size"]:
            raise SystemExit("plain download did not finish within %.0f s: %s" % (TIMEOUT, r))
        if check and subprocess.run(["cmp", "-s", check, os.path.join(dest, name)]).returncode:
            raise SystemExit("plain download differs from the source")
        shutil.rmtree(dest)
        return result(r["seconds"], r["cpu"], r["received"], m, m.cpu,
                      [r["by_peer"].get(s.endpoint.split(":")[0], 0) for s in seeders])

    # ---- the agents ------------------------------------------------------------

    def agent(self, bob, seeders, h, check=None):
        """Bob's agent downloads `h` from what alice's item lists."""
        m = Meter([bob.proc.pid] + [s.proc.pid for s in seeders])
        t0 = time.monotonic()
        r = bob.result("bt.add_torrent_by_hash", hash=h)
        got = {}    # resource: bytes it sent, as last seen
        first = {}  # resource: seconds from the add to its first sighting as a peer
        polled = [0.0]

        def seeding():
            t = bob.result("bt.get_torrents", hash=h, fields=["state", "done", "size",
                                                               "session_downloaded"])
            t = t["torrents"][0]
            if t["state"] == "error":
                raise SystemExit("bob's download failed: %s" % t)
            now = time.monotonic()
            if now - polled[0] > 1:
                polled[0] = now
                peers = bob.result("bt.get_torrents", hash=h, fields=["peer_list"])
                for pe in peers["torrents"][0]["peer_list"]:
                    got[pe["resource"]] = pe["downloaded"]
                    first.setdefault(pe["resource"], now - t0)
            return t if t["state"] == "seeding" and t["done"] == t["size"] else None
        t = wait_for(TIMEOUT, seeding, step=POLL)
        dt = time.monotonic() - t0
        m.stop()
        if not t:
            raise SystemExit("bob's download did not finish within %.0f s: %s" %
                             (TIMEOUT, bob.result("bt.get_torrents", hash=h)))
        if check and subprocess.run(["cmp", "-s", check, os.path.join(r["path"], "big.bin")]
                                    ).returncode:
            raise SystemExit("bob's download differs from the source")
        bob.result("bt.del_torrent", hash=h, delete_data=True)
        if not wait_for(120, lambda: not os.path.exists(r["path"])):
            raise SystemExit("bob's download folder %s was not deleted" % r["path"])
        names = [s.env["BITWEEN_AGENT_RESOURCE"] for s in seeders]
        return result(dt, m.cpu[0], t["session_downloaded"], m, m.cpu[1:],
                      [got.get(n, 0) for n in names], [first.get(n) for n in names])


def sources(bob, h):
    r = bob.result("xmpp.get_hashes", hash=h)["hashes"]
    return sorted(s["resource"] for s in r[0]["sources"]) if r else []


def need_sources(bob, h, want):
    if not wait_for(60, lambda: sources(bob, h) == sorted(want)):
        raise SystemExit("bob sees sources %s, not %s" % (sources(bob, h), want))


def cpu_per_gib(r):
    return r["cpu"] / (r["received"] / GiB)


def sent_per_gib(r, i=0):
    return r["seeder_cpu"][i] / (r["received"] / GiB)


def summary(label, values, unit, worst_is_max, fmt="%.2f"):
    """The median, the worst and the range of one metric, on one line."""
    worst = max(values) if worst_is_max else min(values)
    print(("  %-46s median " + fmt + "%s, worst " + fmt + "%s, min " + fmt + "%s, max " + fmt +
           "%s") % (label, median(values), unit, worst, unit, min(values), unit, max(values),
                    unit), flush=True)


def mib(v):
    return "/".join("%d" % (x >> 20) for x in v)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="bitween-download-bench.")
    b = Bench(work)
    comp = None
    agents = []
    try:
        for user in ("alice", "bob"):
            stack("adduser", user, "pw-" + user)
        stack("subscribe", "alice", "bob")
        comp = agentlib.Component(COMPONENT, work)
        comp.start()

        def agent(user, resource, ip):
            return agentlib.stack_agent(AGENT, work, user, resource, log_level="info",
                                        listen_interfaces="%s:0" % ip)
        laptop = agent("alice", "laptop", "127.0.0.2")
        desktop = agent("alice", "desktop", "127.0.0.3")
        bob = agent("bob", "phone", "127.0.0.4")
        agents = [laptop, desktop, bob]
        for a in (laptop, bob):
            a.start()
        if not wait_for(60, lambda: registered(laptop) and registered(bob)):
            raise SystemExit("the agents did not register")

        data = os.path.join(work, "data")
        os.makedirs(data)
        big = os.path.join(data, "big.bin")
        t0 = time.monotonic()
        with open(big, "wb") as f:
            for _ in range(MIB):
                f.write(os.urandom(1 << 20))
        h = laptop.result("bt.add_path", path=big, wait=True)["hash"]
        torrent = os.path.join(laptop.state, "shares", h + ".torrent")
        need_sources(bob, h, ["laptop"])
        seed_a = b.plain_seeder("127.0.0.5", torrent, data)
        seed_b = b.plain_seeder("127.0.0.6", torrent, data)
        load = os.getloadavg()
        print("download bench: %d MiB of random data (page cache), %d rounds; %d cores, load "
              "average %.2f %.2f %.2f at the start; setup %.0f s; plain sessions: %s"
              % (MIB, ROUNDS, os.cpu_count(), load[0], load[1], load[2],
                 time.monotonic() - t0, b.py), flush=True)

        def row(tag, r):
            return ("%-9s %7.2f s %6.1f MB/s  cpu %5.2f s/GiB  seeders %s s  busy %.2f cores  "
                    "UDP datagrams %d (dropped %d), TCP segments %d" % (
                        tag, r["s"], r["received"] / r["s"] / 1e6, cpu_per_gib(r),
                        "+".join("%.2f" % c for c in r["seeder_cpu"]), r["busy"],
                        r["udp"], r["udp_drops"], r["tcp"]))

        # 1. one source, agent beside plain; 3. CPU per GiB
        print("\n1. one source: bob's agent (hash from alice's item) beside plain libtorrent "
              "(same settings: TCP out); plain with uTP first as a reference", flush=True)
        wa = b.agent(bob, [laptop], h, check=big)
        wp = b.plain([seed_a], h, "big.bin", check=big)
        print("   warm-up (seeders verify each piece on first request; contents compared):",
              flush=True)
        print("     " + row("agent", wa), flush=True)
        print("     " + row("plain", wp), flush=True)
        one = []
        hdr = "%5s %8s %8s %11s %8s %10s %10s %8s %10s %12s %12s %11s"
        print(hdr % ("round", "agent", "plain", "throughput", "plain", "agent CPU", "plain CPU",
                     "CPU", "uTP CPU", "UDP kdgrams", "UDP drops", "busy cores"), flush=True)
        print(hdr % ("", "s", "s", "agent/plain", "uTP s", "s/GiB", "s/GiB", "ratio", "s/GiB",
                     "agent/plain", "agent/plain", "agent/plain"), flush=True)
        for r in range(ROUNDS):
            if r % 2 == 0:
                ra = b.agent(bob, [laptop], h)
                rp = b.plain([seed_a], h, "big.bin")
                rt = b.plain([seed_a], h, "big.bin", tcp=True)
            else:
                rt = b.plain([seed_a], h, "big.bin", tcp=True)
                rp = b.plain([seed_a], h, "big.bin")
                ra = b.agent(bob, [laptop], h)
            one.append((ra, rp, rt))
            print("%5d %8.2f %8.2f %10.2fx %8.2f %10.2f %10.2f %7.2fx %10.2f %12s %12s %11s" % (
                r + 1, ra["s"], rp["s"], rp["s"] / ra["s"], rt["s"], cpu_per_gib(ra),
                cpu_per_gib(rp), cpu_per_gib(ra) / cpu_per_gib(rp), cpu_per_gib(rt),
                "%d/%d" % (ra["udp"] // 1000, rp["udp"] // 1000),
                "%d/%d" % (ra["udp_drops"], rp["udp_drops"]),
                "%.2f/%.2f" % (ra["busy"], rp["busy"])), flush=True)
        print("one source, %d rounds:" % ROUNDS, flush=True)
        summary("agent seconds", [x[0]["s"] for x in one], " s", True)
        summary("plain seconds", [x[1]["s"] for x in one], " s", True)
        summary("throughput agent/plain (target >= 0.90x)", [x[1]["s"] / x[0]["s"] for x in one],
                "x", False)
        summary("plain with uTP first, seconds (reference)", [x[2]["s"] for x in one], " s", True)
        summary("agent CPU per GiB received", [cpu_per_gib(x[0]) for x in one], " s", True)
        summary("plain CPU per GiB received", [cpu_per_gib(x[1]) for x in one], " s", True)
        summary("CPU per GiB agent/plain", [cpu_per_gib(x[0]) / cpu_per_gib(x[1]) for x in one],
                "x", True)
        summary("plain with uTP first, CPU per GiB received", [cpu_per_gib(x[2]) for x in one],
                " s", True)
        summary("alice's agent (seeder) CPU per GiB sent", [sent_per_gib(x[0]) for x in one],
                " s", True)
        summary("plain seeder CPU per GiB sent", [sent_per_gib(x[1]) for x in one], " s", True)
        summary("UDP datagrams dropped, agent transfer", [x[0]["udp_drops"] for x in one], "",
                True, "%.0f")
        summary("UDP datagrams dropped, plain transfer", [x[1]["udp_drops"] for x in one], "",
                True, "%.0f")

        # 2. two sources beside one
        print("\n2. two sources (alice's laptop and desktop, the same file) beside one "
              "(the laptop)", flush=True)
        laptop.stop()
        desktop.start()
        if not wait_for(60, lambda: registered(desktop)):
            raise SystemExit("alice's desktop did not register")
        if desktop.result("bt.add_path", path=big, wait=True)["hash"] != h:
            raise SystemExit("alice's desktop hashed the file differently")
        need_sources(bob, h, ["desktop"])
        wd = b.agent(bob, [desktop], h)
        wb = b.plain([seed_b], h, "big.bin")
        print("   warm-up of the second seeders, alone:", flush=True)
        print("     " + row("agent", wd), flush=True)
        print("     " + row("plain", wb), flush=True)
        laptop.start()
        if not wait_for(60, lambda: registered(laptop)):
            raise SystemExit("alice's laptop did not register again")
        need_sources(bob, h, ["desktop", "laptop"])
        desktop_on = True

        def set_desktop(on):
            nonlocal desktop_on
            if on and not desktop_on:
                desktop.start()
                if not wait_for(60, lambda: registered(desktop)):
                    raise SystemExit("alice's desktop did not register again")
            elif not on and desktop_on:
                desktop.stop()
            desktop_on = on
            need_sources(bob, h, ["desktop", "laptop"] if on else ["laptop"])

        def agent_n(n):
            set_desktop(n == 2)
            return b.agent(bob, [laptop, desktop] if n == 2 else [laptop], h)

        def plain_n(n, tcp=False):
            return b.plain([seed_a, seed_b] if n == 2 else [seed_a], h, "big.bin", tcp=tcp)
        two = []
        hdr = "%5s %8s %8s %8s %8s %8s %8s %8s %8s %8s %10s %10s %10s %14s %12s %12s"
        print(hdr % ("round", "agent 1", "agent 2", "speed-", "plain 1", "plain 2", "speed-",
                     "uTP 1", "uTP 2", "speed-", "agent 2", "plain 2", "uTP 2", "busy 2",
                     "UDP kdgrams", "TCP ksegs"), flush=True)
        print(hdr % ("", "s", "s", "up", "s", "s", "up", "s", "s", "up", "split MiB",
                     "split MiB", "split MiB", "agt/pln/uTP", "agent 1/2", "agent 1/2"),
              flush=True)
        for r in range(ROUNDS):
            if r % 2 == 0:
                a2, a1 = agent_n(2), agent_n(1)
                p1, p2 = plain_n(1), plain_n(2)
                t1, t2 = plain_n(1, True), plain_n(2, True)
            else:
                t2, t1 = plain_n(2, True), plain_n(1, True)
                p2, p1 = plain_n(2), plain_n(1)
                a1, a2 = agent_n(1), agent_n(2)
            two.append((a1, a2, p1, p2, t1, t2))
            print("%5d %8.2f %8.2f %7.2fx %8.2f %8.2f %7.2fx %8.2f %8.2f %7.2fx %10s %10s %10s "
                  "%14s %12s %12s" % (
                      r + 1, a1["s"], a2["s"], a1["s"] / a2["s"], p1["s"], p2["s"],
                      p1["s"] / p2["s"], t1["s"], t2["s"], t1["s"] / t2["s"],
                      mib(a2["split"]), mib(p2["split"]), mib(t2["split"]),
                      "/".join("%.2f" % x["busy"] for x in (a2, p2, t2)),
                      "%d/%d" % (a1["udp"] // 1000, a2["udp"] // 1000),
                      "%d/%d" % (a1["tcp"] // 1000, a2["tcp"] // 1000)), flush=True)
        print("two sources (splits: laptop/desktop, as last seen), %d rounds:" % ROUNDS,
              flush=True)
        summary("agent, one source, seconds", [x[0]["s"] for x in two], " s", True)
        summary("agent, two sources, seconds", [x[1]["s"] for x in two], " s", True)
        summary("agent speed-up, two sources / one", [x[0]["s"] / x[1]["s"] for x in two],
                "x", False)
        summary("plain speed-up, two sources / one", [x[2]["s"] / x[3]["s"] for x in two],
                "x", False)
        summary("plain uTP first speed-up, two sources / one",
                [x[4]["s"] / x[5]["s"] for x in two], "x", False)
        summary("throughput agent/plain, two sources", [x[3]["s"] / x[1]["s"] for x in two],
                "x", False)
        summary("agent CPU per GiB received, two sources", [cpu_per_gib(x[1]) for x in two],
                " s", True)
        summary("plain CPU per GiB received, two sources", [cpu_per_gib(x[3]) for x in two],
                " s", True)
        summary("leecher + both seeders CPU, agents, 2 sources",
                [x[1]["cpu"] + sum(x[1]["seeder_cpu"]) for x in two], " s", True)
        summary("leecher + both seeders CPU, uTP first, 2 sources",
                [x[5]["cpu"] + sum(x[5]["seeder_cpu"]) for x in two], " s", True)
        summary("busy cores, agents, two sources", [x[1]["busy"] for x in two], "", True)
        summary("busy cores, plain uTP first, two sources", [x[5]["busy"] for x in two], "",
                True)
        summary("bytes received / size, agent, two sources",
                [x[1]["received"] / SIZE for x in two], "", True, "%.3f")
        print("per transfer with two sources: seconds from the add until bob's agent listed "
              "each source as a peer (laptop, desktop; polled each second); CPU seconds of "
              "leecher, laptop, desktop for agent / plain / uTP first:", flush=True)
        for i, x in enumerate(two):
            print("  round %d: %s; %s / %s / %s" % (
                i + 1, ", ".join("%.1f" % f if f is not None else "never" for f in x[1]["first"]),
                *("%.2f, %s" % (y["cpu"], ", ".join("%.2f" % c for c in y["seeder_cpu"]))
                  for y in (x[1], x[3], x[5]))), flush=True)
        load = os.getloadavg()
        print("\nload average at the end %.2f %.2f %.2f" % load, flush=True)
    finally:
        b.cleanup()
        for a in agents:
            if a.alive():
                try:
                    a.stop()
                except Exception:
                    a.kill()
        if comp and comp.proc and comp.proc.poll() is None:
            comp.stop()
        subprocess.run(["rm", "-rf", work])


main()
