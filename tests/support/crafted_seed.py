#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A hostile seeder for the download tests, on Debian's python3-libtorrent:
makes a v1 torrent whose file names try to leave the downloader's folder
(`..` elements, an element holding a slash, a symbolic link pointing out),
seeds it, and prints its info-hash, size and listen port. With --mute the
session has no ut_metadata (no extension at all): peers connect and never
get the metadata.

usage: crafted_seed.py [--mute] LISTEN_IP WORK_DIR
Runs until its standard input closes.
"""
import hashlib
import os
import sys
import time

import libtorrent as lt

PIECE = 16384


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"


def crafted(mute):
    files = [
        (["..", "..", "escape.txt"], 20000),
        (["/tmp", "abs.txt"], 30000),
        (["ok.txt"], 10000),
    ]
    data = b"".join(bytes([i + 1]) * n for i, (_, n) in enumerate(files))
    pieces = b"".join(hashlib.sha1(data[i:i + PIECE]).digest()
                      for i in range(0, len(data), PIECE))
    entries = [{"path": p, "length": n} for p, n in files]
    entries.append({"path": ["link"], "length": 0, "attr": "l",
                    "symlink path": ["..", "..", "..", "outside"]})
    info = {"name": "muted" if mute else "evil", "piece length": PIECE, "pieces": pieces,
            "files": entries}
    return bencode({"info": info}), files, data


def main():
    mute = "--mute" in sys.argv
    ip, work = [a for a in sys.argv[1:] if a != "--mute"]
    torrent, files, data = crafted(mute)
    save = os.path.join(work, "muted-seed" if mute else "evil-seed")
    os.makedirs(save, exist_ok=True)
    settings = {"listen_interfaces": "%s:0" % ip, "enable_dht": False, "enable_lsd": False,
                "enable_upnp": False, "enable_natpmp": False,
                "allow_multiple_connections_per_ip": True}
    ses = lt.session(settings, 0) if mute else lt.session(settings)
    if not mute:
        ses.add_extension("ut_metadata")
    ti = lt.torrent_info(lt.bdecode(torrent))
    # the data where libtorrent's own sanitized names put it
    fs = ti.files()
    offset = 0
    for i in range(fs.num_files()):
        size = fs.file_size(i)
        if size:
            path = os.path.join(save, fs.file_path(i))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data[offset:offset + size])
        offset += size
    h = ses.add_torrent({"ti": ti, "save_path": save})
    deadline = time.monotonic() + 30
    while not h.status().is_seeding and time.monotonic() < deadline:
        time.sleep(0.05)
    if not h.status().is_seeding:
        sys.exit("crafted_seed: the torrent does not seed: %s" % h.status().errc.message())
    print(str(ti.info_hash()), ti.total_size(), ses.listen_port(), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
