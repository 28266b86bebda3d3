#!/usr/bin/env python3
"""Checks a report folder: every file report.html references exists, every
PNG decodes (zlib, CRCs, filtered rows of the declared size) with the
expected dimensions, and every SVG is well-formed XML.

    check_report.py DIR [NAME=WIDTHxHEIGHT ...]
"""
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path


def png_size(path):
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"{path}: bad CRC in {kind!r}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, color = ihdr[:4]
    channels = {0: 1, 2: 3, 6: 4}[color]
    raw = zlib.decompress(idat)
    if len(raw) != h * (1 + w * channels * depth // 8):
        raise ValueError(f"{path}: pixel data does not match {w}x{h}")
    return w, h, raw


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not re.match(r"^[a-z]+:", value):
                self.refs.append(value)


def main():
    folder = Path(sys.argv[1])
    page = (folder / "report.html").read_text()
    refs = Refs()
    refs.feed(page)
    if not refs.refs:
        sys.exit("report.html references no files")
    for ref in refs.refs:
        if not (folder / ref).is_file():
            sys.exit(f"report.html references {ref}, which is missing")
    if re.search(r"(src|href)=\"(https?:)?//", page):
        sys.exit("report.html loads something from the network")
    for png in folder.glob("*.png"):
        png_size(png)
    for svg in folder.glob("*.svg"):
        ET.parse(svg)
    for spec in sys.argv[2:]:
        name, size = spec.split("=")
        w, h = png_size(folder / name)[:2]
        if f"{w}x{h}" != size:
            sys.exit(f"{name} is {w}x{h}, expected {size}")
    print(f"ok: {len(refs.refs)} references, {len(list(folder.glob('*.png')))} PNGs, "
          f"{len(list(folder.glob('*.svg')))} SVGs")


if __name__ == "__main__":
    main()
