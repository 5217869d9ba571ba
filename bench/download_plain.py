#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Plain libtorrent sessions for bench/download_bench.py, the baseline of
the agent's downloads: Debian's python3-libtorrent, the same libtorrent
library the agent links, with the settings of the agent's shim
(agent/btshim_lt.cpp): no DHT, LSD, UPnP or NAT-PMP; no default plugin,
then ut_metadata and smart_ban (which acts only on pieces that fail their
hash check); several connections per IP allowed; outgoing connections
over TCP (uTP accepted from peers); every peer in the global peer class;
torrents neither auto-managed nor paused. One process per
session, so that its CPU time is its own.

  download_plain.py seed ADDRESS TORRENT SAVE_DIR
      seeds TORRENT from SAVE_DIR in seed mode and upload mode, as the
      agent seeds a share; prints "port N" once listening, then runs until
      its standard input closes.
  download_plain.py leech [--utp] ADDRESS HASH NAME SAVE_DIR TIMEOUT_S IP:PORT...
      with --utp, outgoing uTP on (libtorrent's default, which connects
      over uTP first: a reference, not the shim's settings); prints "ready" once
      listening and waits for a line on standard input;
      then adds HASH as a magnet (the info-hash only; NAME as the agent
      names the torrent), connect_peer()s each IP:PORT, waits for
      torrent_finished (all pieces verified) or TIMEOUT_S, and prints one
      JSON line: seconds from the add, its own CPU seconds (user + system,
      all threads) over the same span, payload bytes received, size, and
      the payload bytes each peer sent as last seen while connected.
"""
import json
import os
import sys
import time

import libtorrent as lt


def session(address, utp=False):
    alert_mask = (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
                  | lt.alert.category_t.storage_notification
                  | lt.alert.category_t.port_mapping_notification)
    settings = {
        "listen_interfaces": "%s:0" % address,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "download_rate_limit": 0, "upload_rate_limit": 0,
        "user_agent": "bitween/0.1.0",
        "peer_fingerprint": lt.generate_fingerprint("BW", 0, 1, 0, 0),
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": utp,
        "alert_mask": alert_mask,
    }
    ses = lt.session(settings, 0)  # flags 0: no default plugins
    ses.add_extension("ut_metadata")
    ses.add_extension("smart_ban")
    f = lt.ip_filter()
    glob = 1 << lt.session.global_peer_class_id
    f.add_rule("0.0.0.0", "255.255.255.255", glob)
    f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", glob)
    ses.set_peer_class_filter(f)
    end = time.monotonic() + 30
    while not ses.listen_port():
        if time.monotonic() > end:
            sys.exit("plain session: not listening on %s" % address)
        time.sleep(0.01)
    return ses


def no_queueing(flags):
    return flags & ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)


def seed(address, torrent, save_dir):
    ses = session(address)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_dir
    atp.flags = no_queueing(atp.flags) | lt.torrent_flags.seed_mode | lt.torrent_flags.upload_mode
    h = ses.add_torrent(atp)
    print("port %d %s" % (ses.listen_port(), h.info_hash()), flush=True)
    sys.stdin.read()  # until the bench closes it


def leech(address, hash_, name, save_dir, timeout, peers, utp):
    ses = session(address, utp)
    atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + hash_)
    atp.name = name
    atp.save_path = save_dir
    atp.flags = no_queueing(atp.flags) & ~(lt.torrent_flags.seed_mode |
                                           lt.torrent_flags.upload_mode |
                                           lt.torrent_flags.stop_when_ready)
    print("ready", flush=True)
    sys.stdin.readline()
    c0, t0 = os.times(), time.monotonic()
    h = ses.add_torrent(atp)
    for p in peers:
        ip, port = p.rsplit(":", 1)
        h.connect_peer((ip, int(port)))
    end = t0 + timeout
    done = False
    by_peer = {}
    while not done and time.monotonic() < end:
        for p in h.get_peer_info():
            by_peer[p.ip[0]] = p.total_download
        if ses.wait_for_alert(100):
            for a in ses.pop_alerts():
                if isinstance(a, lt.torrent_finished_alert):
                    done = True
                elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                    sys.exit("plain leech: " + a.message())
        if not done:
            st = h.status()
            done = st.has_metadata and st.total_wanted > 0 and \
                st.total_wanted_done == st.total_wanted
    t1, c1 = time.monotonic(), os.times()
    st = h.status()
    print(json.dumps({"ok": done, "seconds": t1 - t0,
                      "cpu": (c1.user - c0.user) + (c1.system - c0.system),
                      "received": st.total_payload_download, "size": st.total_wanted,
                      "verified": st.total_wanted_done, "by_peer": by_peer}), flush=True)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "seed":
        seed(*sys.argv[2:])
    elif len(sys.argv) >= 8 and sys.argv[1] == "leech":
        utp = sys.argv[2] == "--utp"
        a = sys.argv[3:] if utp else sys.argv[2:]
        leech(a[0], a[1], a[2], a[3], float(a[4]), a[5:], utp)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
