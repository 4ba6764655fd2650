"""The report's interactive map at scale: time to a drawn map in Chromium, responsiveness, and
the folder's size per image.

Run from the repository root (``pip install ".[all,test]"``, Debian's ``chromium``)::

    python benchmarks/bench_map.py [--sizes 20000 100000] [--workdir DIR] [--runs 3]

For each size a folder is written as ``group`` writes its map: ``map/`` sprite sheets of
thumbnails and ``map/points.json`` (``imgclust.report.image_map``), and a ``report.html``
with the map and the 2,000-row image table of the group report. The thumbnails are crops of
scikit-image's sample photos at random places and scales (real photo content, so the JPEG
sheets are as large as a real run's); the ids are file names of 20-30 characters in
subfolders; the map is 30 Gaussian blobs with 30 clusters and known labels. The images are not
decoded (the decoding of the originals is the run's reading, measured elsewhere).

Measured, with headless Chromium (``/usr/bin/chromium`` through Playwright) on the page opened
from disk:

- time to a drawn map: from the start of navigation to the end of the map's first drawing
  (``data-drawn-at``, ``performance.now()``), median of ``--runs`` fresh pages, and the wall
  time of ``page.goto`` until then;
- a pan or zoom frame: the time the map's drawing of every point takes (``data-draw-ms``,
  mean of 20 zoom steps; the browser shows a frame every 16.7 ms at 60 Hz);
- hover: the time of a pointer move over the map until its thumbnail shows (mean of 20);
- sizes: ``report.html``, ``map/`` and bytes per image;
- writing: the seconds to write the sheets and the data (thumbnails given).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as samples

from imgclust.report.html import Report
from imgclust.report.image_map import (
    SPRITE_SIDE,
    MapPoints,
    map_payload,
    write_map_data,
    write_sprites,
)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def _thumbnails(seed: int):
    """A function giving thumbnail i: a crop of a sample photo, seeded by i."""
    photos = [Image.fromarray(getattr(samples, name)()) for name in PHOTOS]

    def thumbnail(i: int) -> Image.Image:
        rng = np.random.default_rng(seed + i)
        photo = photos[i % len(photos)]
        side = int(rng.integers(48, min(photo.size)))
        x = int(rng.integers(0, photo.width - side + 1))
        y = int(rng.integers(0, photo.height - side + 1))
        return photo.crop((x, y, x + side, y + side)).resize((SPRITE_SIDE, SPRITE_SIDE))

    return thumbnail


def _points(n: int, seed: int = 0) -> MapPoints:
    rng = np.random.default_rng(seed)
    blobs = rng.normal(scale=10, size=(30, 2))
    clusters = rng.integers(0, 30, n)
    xy = blobs[clusters] + rng.normal(size=(n, 2))
    labels = [f"class {c % 12}" for c in clusters]
    ids = [f"folder_{c % 40:02d}/IMG_{i:07d}_holiday.jpg" for i, c in enumerate(clusters)]
    return MapPoints(ids, xy, clusters, ranks=np.ones(n, dtype=int), truth=labels)


def write_folder(folder: Path, n: int) -> float:
    """Write the map of ``n`` images and its report into ``folder``; seconds taken."""
    folder.mkdir(parents=True, exist_ok=True)
    points = _points(n)
    started = time.perf_counter()
    sheets = write_sprites(folder, n, _thumbnails(0))
    payload = map_payload(points, sheets=sheets, folder=folder)
    write_map_data(folder, payload)
    report = Report("imgclust group", "benchmark").heading("Map").interactive_map(payload)
    report.table(["image", "cluster"], ([points.ids[i], int(points.clusters[i])] for i in range(n)),
                 total=n)  # fmt: skip
    report.write(folder, {}, {})
    return time.perf_counter() - started


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_ZOOM = """async () => {
  const canvas = document.querySelector('.imap-canvas');
  const box = canvas.getBoundingClientRect();
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  await frame();
  const times = [];
  for (let k = 0; k < 20; k++) {
    canvas.dispatchEvent(new WheelEvent('wheel', {deltaY: k < 10 ? -120 : 120,
      clientX: box.left + box.width / 2, clientY: box.top + box.height / 2, cancelable: true}));
    await frame();
    times.push(Number(document.querySelector('[data-draw-ms]').dataset.drawMs));
  }
  return times;
}"""

_HOVER = """() => {
  const canvas = document.querySelector('.imap-canvas');
  const box = canvas.getBoundingClientRect();
  const times = [];
  for (let k = 0; k < 20; k++) {
    const start = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: box.left + box.width * (0.3 +
      k / 50), clientY: box.top + box.height * (0.3 + k / 60), pointerId: 1}));
    times.push(performance.now() - start);
  }
  return times;
}"""


def measure(folder: Path, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    report = (folder / "report.html").as_uri()
    drawn, walls = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            started = time.perf_counter()
            page.goto(report)
            page.locator("[data-drawn-at]").wait_for(timeout=60_000)
            walls.append(time.perf_counter() - started)
            drawn.append(float(page.get_attribute("[data-drawn-at]", "data-drawn-at")) / 1000)
            page.close()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report)
        page.locator("[data-drawn-at]").wait_for(timeout=60_000)
        page.locator(".imap-canvas").scroll_into_view_if_needed()
        frames = page.evaluate(_ZOOM)
        hovers = page.evaluate(_HOVER)
        browser.close()
    return {
        "drawn_s": statistics.median(drawn),
        "wall_s": statistics.median(walls),
        "frame_ms": statistics.mean(frames[1:]),
        "hover_ms": statistics.mean(hovers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="imgclust-bench-map-"))
    print("| images | write (s) | report.html | map/ | per image | drawn (s) | goto to drawn (s)"
          " | pan/zoom frame (ms) | hover (ms) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        folder = root / f"map_{n}"
        seconds = write_folder(folder, n)
        page, sheets = (folder / "report.html").stat().st_size, _size(folder / "map")
        m = measure(folder, args.runs)
        print(
            f"| {n:,} | {seconds:.1f} | {page / 1e6:.1f} MB | {sheets / 1e6:.1f} MB "
            f"| {(page + sheets) / n / 1e3:.2f} kB | {m['drawn_s']:.2f} | {m['wall_s']:.2f} "
            f"| {m['frame_ms']:.1f} | {m['hover_ms']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
