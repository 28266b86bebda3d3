#!/usr/bin/env python3
"""Renders a report folder in headless Chromium and checks what a reader sees.

    check_render.py DIR WIDTH OUT_PNG     screen: layout and pixels at WIDTH px
    check_render.py DIR print OUT_PDF     print: the PDF's pages (needs pdftotext)

Screen: a copy of report.html with a probe script is loaded with --dump-dom,
which reports the page's width and height and where the kernels, the
confusion matrix and the feature maps are laid out; then the page is
screenshotted at its full height, the PNG decoded, and those regions must
hold colour (the kernels' blue and red, the matrix's blue shades). The page
must not scroll sideways, and each test image's feature maps must sit in
one row at desktop width.
Print: the whole config must be in the PDF, and the confusion matrix on
one page.
"""
import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

CHROME = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
          "--force-device-scale-factor=1", "--virtual-time-budget=4000",
          "--allow-file-access-from-files"]

# The report is shown in an iframe of the width under test: Chromium's
# headless window is at least 500 px wide, an iframe can be narrower, and
# the report's media queries see the iframe's width.
HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><iframe id="f" src="report.html" style="border:0;display:block;width:%dpx;height:%dpx"></iframe>
%s</body></html>"""

PROBE = """<script>
document.getElementById('f').addEventListener('load', function () {
  var w = this.contentWindow, doc = this.contentDocument, d = doc.documentElement;
  function box(e) { var r = e.getBoundingClientRect();
    return [r.left + w.scrollX, r.top + w.scrollY, r.width, r.height]; }
  var out = {
    viewport: w.innerWidth, scrollWidth: d.scrollWidth, height: d.scrollHeight,
    kernels: [].map.call(doc.querySelectorAll('.kernels svg'), box),
    cm: [].map.call(doc.querySelectorAll('table.cm'), box),
    maps: [].map.call(doc.querySelectorAll('.maps'), function (m) {
      return [].map.call(m.querySelectorAll('figure'), function (f) { return Math.round(f.getBoundingClientRect().top); });
    }),
    wide: [].filter.call(doc.querySelectorAll('body *'), function (e) {
      return e.getBoundingClientRect().right > w.innerWidth + 0.5 && !e.closest('.scroll');
    }).slice(0, 5).map(function (e) { return e.tagName + '.' + e.className; })
  };
  var p = document.createElement('pre'); p.id = 'probe'; p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
});
</script>"""


def chrome(args, profile):
    return subprocess.run(CHROME + [f"--user-data-dir={profile}"] + args, capture_output=True, text=True,
                          timeout=90)


def decode_png(path):
    """RGB(A) rows of an 8-bit PNG, unfiltered: (width, height, channels, rows)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and color in (2, 6), f"{path}: want 8-bit RGB(A), got depth {depth} colour type {color}"
    ch = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * ch, [], bytearray(w * ch)
    lo7, hi1 = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    for y in range(h):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype in (0, 2):  # none, or up: bytewise sums done on one big integer, with no carries across bytes
            if ftype == 2:
                x, p = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
                line = bytearray((((x & lo7) + (p & lo7)) ^ ((x ^ p) & hi1)).to_bytes(stride, "big"))
            rows.append(line)
            prev = line
            continue
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, ch, rows


def colour_share(img, rect, test):
    """The share of pixels inside RECT (x, y, w, h in CSS px) that pass TEST(r, g, b)."""
    w, h, ch, rows = img
    x0, y0 = max(0, int(rect[0])), max(0, int(rect[1]))
    x1, y1 = min(w, int(rect[0] + rect[2])), min(h, int(rect[1] + rect[3]))
    assert x1 > x0 and y1 > y0, f"region {rect} is outside the {w}x{h} screenshot"
    hits = total = 0
    for y in range(y0, y1, 2):
        row = rows[y]
        for x in range(x0, x1, 2):
            r, g, b = row[x * ch], row[x * ch + 1], row[x * ch + 2]
            hits += test(r, g, b)
            total += 1
    return hits / total


def harness(folder, width, height, script):
    page = folder / "render-harness.html"
    page.write_text(HARNESS % (width, height, script))
    return page


def probe(folder, width, profile):
    page = harness(folder, width, 900, PROBE)
    try:
        dom = chrome(["--dump-dom", f"--window-size={max(width, 500)},900", page.as_uri()], profile).stdout
    finally:
        page.unlink()
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run (no result in --dump-dom)"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screen(folder, width, shot):
    profile = Path(shot).parent / f"chrome-{width}"
    p = probe(folder, width, profile)
    print(f"{width} px: viewport {p['viewport']}, scrollWidth {p['scrollWidth']}, height {p['height']}")
    assert p["viewport"] == width, f"viewport is {p['viewport']} px, not {width}"
    assert p["scrollWidth"] == width, f"the page scrolls sideways: {p['scrollWidth']} px wide at {width} ({p['wide']})"
    assert p["kernels"] and p["cm"], "no kernels or no confusion matrix laid out"
    for what, rect in [("kernels", r) for r in p["kernels"]] + [("confusion matrix", p["cm"][0])]:
        assert rect[0] + rect[2] <= width + 0.5, f"the {what} ({rect[2]:.0f} px) do not fit in {width} px"
    if width >= 1000:
        for tops in p["maps"]:
            assert len(set(tops)) == 1, f"a test image's feature maps wrap onto {len(set(tops))} rows: {tops}"
    height = min(int(p["height"]), 30000)
    page = harness(folder, width, height, "")
    try:
        chrome([f"--screenshot={shot}", f"--window-size={max(width, 500)},{height}", page.as_uri()], profile)
    finally:
        page.unlink()
    img = decode_png(shot)
    assert img[1] == height, f"screenshot is {img[1]} px high, want {height}"
    for rect in p["kernels"]:
        blue = colour_share(img, rect, lambda r, g, b: b - r > 60 and b - g > 60)
        red = colour_share(img, rect, lambda r, g, b: r - b > 60 and r - g > 60)
        print(f"kernels at {[round(v) for v in rect]}: {blue:.1%} blue, {red:.1%} red pixels")
        assert blue > 0.02 and red > 0.02, "the kernels are not drawn in blue and red where the page puts them"
    heat = colour_share(img, p["cm"][0], lambda r, g, b: b - r > 40)
    print(f"confusion matrix at {[round(v) for v in p['cm'][0]]}: {heat:.1%} blue-shaded pixels")
    assert heat > 0.05, "the confusion matrix has no heat-map colour"


def printed(folder, pdf):
    profile = Path(pdf).parent / "chrome-print"
    chrome(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", (folder / "report.html").as_uri()], profile)
    assert Path(pdf).is_file() and Path(pdf).stat().st_size > 1000, "no PDF written"
    pages = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    print(f"PDF: {len(pages)} pages")
    config = (folder / "report.html").read_text().split("<pre>")[-1].split("</pre>")[0]
    text = "\n".join(pages)
    for line in config.strip().splitlines():
        # pdftotext drops trailing blanks ("extra = " with no value)
        assert line.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&").rstrip() in text, \
            f"the printed config lacks '{line}'"
    cm = [i for i, t in enumerate(pages) if "recall" in t or "precision" in t]
    assert cm, "no confusion matrix in the PDF"
    assert len(cm) == 1, f"the confusion matrix is split over pages {[i + 1 for i in cm]}"


def main():
    folder, mode, out = Path(sys.argv[1]).resolve(), sys.argv[2], str(Path(sys.argv[3]).resolve())
    if not shutil.which("chromium"):
        sys.exit("chromium is not installed")
    if mode == "print":
        printed(folder, out)
    else:
        screen(folder, int(mode), out)
    print("ok")


if __name__ == "__main__":
    main()
