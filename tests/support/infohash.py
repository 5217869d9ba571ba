#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Print the v1 info-hash of a .torrent file: the SHA-1 of the bencoded
`info` dictionary exactly as it appears in the file. Independent of
libtorrent and of bitween, for the tests to check their hashes against.
With a data folder, also check every piece hash against the files there
(the torrent's `name` under that folder), and fail when one differs.

    infohash.py FILE.torrent [DATA_PARENT]
"""
import hashlib
import os
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


def decode(buf, i=0):
    """The bencoded value at buf[i] as Python objects, and the index past it."""
    c = buf[i:i + 1]
    if c == b"i":
        end = buf.index(b"e", i)
        return int(buf[i + 1:end]), end + 1
    if c == b"l":
        out, i = [], i + 1
        while buf[i:i + 1] != b"e":
            v, i = decode(buf, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while buf[i:i + 1] != b"e":
            k, i = decode(buf, i)
            v, i = decode(buf, i)
            out[k] = v
        return out, i + 1
    colon = buf.index(b":", i)
    n = int(buf[i:colon])
    return buf[colon + 1:colon + 1 + n], colon + 1 + n


def check_pieces(info, parent):
    """Recompute every piece's SHA-1 over the files under `parent`."""
    name = info[b"name"].decode()
    if b"files" in info:
        files = [(os.path.join(parent, name, *[p.decode() for p in f[b"path"]]), f[b"length"],
                  f.get(b"attr", b"")) for f in info[b"files"]]
    else:
        files = [(os.path.join(parent, name), info[b"length"], b"")]
    plen, pieces = info[b"piece length"], info[b"pieces"]
    data, n = bytearray(), 0
    for path, length, attr in files:
        chunk = b"\0" * length if b"p" in attr else open(path, "rb").read()
        if len(chunk) != length:
            raise ValueError("%s: %d bytes, the torrent says %d" % (path, len(chunk), length))
        data += chunk
        while len(data) >= plen:
            if hashlib.sha1(data[:plen]).digest() != pieces[20 * n:20 * n + 20]:
                raise ValueError("piece %d differs" % n)
            del data[:plen]
            n += 1
    if data:
        if hashlib.sha1(data).digest() != pieces[20 * n:20 * n + 20]:
            raise ValueError("piece %d differs" % n)
        n += 1
    if 20 * n != len(pieces):
        raise ValueError("%d pieces hashed, the torrent has %d" % (n, len(pieces) // 20))


def main():
    with open(sys.argv[1], "rb") as f:
        buf = f.read()
    start, end = info_span(buf)
    if len(sys.argv) > 2:
        check_pieces(decode(buf, start)[0], sys.argv[2])
    print(hashlib.sha1(buf[start:end]).hexdigest())


if __name__ == "__main__":
    main()
