#!/usr/bin/env python3
"""Opens the main job's report.html in headless Chromium and checks that its charts render.

Usage: report_renders.py CHROMIUM REPORT_HTML

Two checks: the DOM Chromium built has the three charts with drawn series, and a screenshot has
pixels of the first series' colour (#1f77b4): the lines were painted, not just parsed.
Standard library only (the PNG is decoded here)."""
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-dev-shm-usage", "--no-first-run"]


def fail(message):
    print("report_renders: " + message)
    sys.exit(1)


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(path + ": not a PNG")
    position, idat, width = 8, b"", 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunk = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            if depth != 8 or colour not in (2, 6):
                fail("unexpected PNG format (depth %d, colour type %d)" % (depth, colour))
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[x] = (line[x] + predictor) & 255
        rows.append(line)
        previous = line
    return width, height, channels, rows


def main():
    if len(sys.argv) != 3 or not os.path.isfile(sys.argv[2]):
        fail("usage: report_renders.py CHROMIUM REPORT_HTML (an existing file)")
    chromium = [sys.argv[1]] + CHROMIUM_FLAGS
    url = "file://" + os.path.abspath(sys.argv[2])
    dom = subprocess.run(chromium + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    charts = re.findall(r'<svg class="chart"', dom)
    series = re.findall(r'<polyline class="series"[^>]*points="([^"]+)"', dom)
    if len(charts) != 3:
        fail("expected 3 charts in the rendered DOM, found %d" % len(charts))
    if len([points for points in series if points.count(",") >= 2]) < 3:
        fail("the charts have no drawn series")
    if 'id="evaluation"' not in dom:
        fail("no evaluation table")
    with tempfile.TemporaryDirectory() as folder:
        shot = os.path.join(folder, "report.png")
        subprocess.run(chromium + ["--screenshot=" + shot, "--window-size=1280,1400", url],
                       capture_output=True, timeout=120)
        if not os.path.isfile(shot):
            fail("chromium wrote no screenshot")
        width, height, channels, rows = png_pixels(shot)
        blue = 0
        for row in rows:
            for x in range(0, width * channels, channels):
                r, g, b = row[x], row[x + 1], row[x + 2]
                if abs(r - 0x1f) < 40 and abs(g - 0x77) < 40 and abs(b - 0xb4) < 40:
                    blue += 1
        if blue < 200:
            fail("the screenshot shows almost no chart lines (%d pixels of the series colour)" % blue)
    print("report_renders: 3 charts, %d series, %d painted pixels of the first series' colour" % (len(series), blue))


main()
