#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Print the v1 info-hash of a .torrent file: the SHA-1 of the bencoded
`info` dictionary exactly as it appears in the file. Independent of
libtorrent and of bitween, for the tests to check their hashes against.

    infohash.py FILE.torrent
"""
import hashlib
import sys


def skip(buf, i):
    """Index just past the bencoded value starting at buf[i]."""
    c = buf[i:i + 1]
    if c == b"i":
        return buf.index(b"e", i) + 1
    if c in (b"l", b"d"):
        i += 1
        while buf[i:i + 1] != b"e":
            i = skip(buf, i)
        return i + 1
    if c.isdigit():
        colon = buf.index(b":", i)
        return colon + 1 + int(buf[i:colon])
    raise ValueError("not bencode at offset %d" % i)


def info_span(buf):
    if buf[:1] != b"d":
        raise ValueError("not a bencoded dictionary")
    i = 1
    while buf[i:i + 1] != b"e":
        key_end = skip(buf, i)
        colon = buf.index(b":", i)
        key = buf[colon + 1:key_end]
        value_end = skip(buf, key_end)
        if key == b"info":
            return key_end, value_end
        i = value_end
    raise ValueError("no info dictionary")


def main():
    with open(sys.argv[1], "rb") as f:
        buf = f.read()
    start, end = info_span(buf)
    print(hashlib.sha1(buf[start:end]).hexdigest())


if __name__ == "__main__":
    main()
