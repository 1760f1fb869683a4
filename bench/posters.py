"""Benchmark: 好邻 poster renders (DESIGN.md §6: ≤ 0.3 s warm, ≤ 300 KB without a photo).

    .venv/bin/python bench/posters.py [--renders 8] [--batch 39]

Renders, in a test request context on a throwaway SQLite app (the poster code reads no data):
the first poster (fonts loaded, cold), then ``--renders`` more with different deeds (warm, the
cache bypassed), each design, with and without a photo; then a cache hit; then ``--batch``
posters one after another as a campaign's batch print would, and their merge into one PDF;
then a PNG from a cached PDF. Prints the medians and sizes as
JSON and writes bench/results/posters-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=8)
    parser.add_argument("--batch", type=int, default=39)
    args = parser.parse_args()

    from PIL import Image

    from portal import create_app
    from portal.batch import merge_pdfs
    from portal.blueprints.commendations import posters
    from portal.blueprints.commendations.posters import PosterData
    from portal.pdf import render_pdf

    folder = Path(tempfile.mkdtemp(prefix="posters-"))
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / 'b.db'}"})
    posters._cache_dir = lambda: folder  # the bench's own cache
    photo = io.BytesIO()
    Image.new("RGB", (1600, 1200), (190, 120, 90)).save(photo, "JPEG", quality=90)

    def data(i: int, with_photo: bool = False) -> PosterData:
        return PosterData(
            name="胡新林", honour="江背好邻", series="《江背“好邻” 幸福同行》",
            where="江背镇 · 特立村 · 杨家井组",
            deeds=f"常年义务照看独居老人，组织邻里清理山塘，三年走访不断（第 {i} 张）。",
            stats={"households": 11, "visits": 86, "requests": 9, "disputes": 3, "points": 155},
            campaign="2026 年度江背好邻评选", issuer="江背镇人民政府",
            link=f"https://example.invalid/honour/{i}",
            photo=photo.getvalue() if with_photo else None)

    def timed(d: PosterData, design: str) -> tuple[float, int]:
        started = time.perf_counter()
        pdf = render_pdf(posters.poster_html(d, design))
        return time.perf_counter() - started, len(pdf)

    out: dict = {"when": datetime.now().isoformat(timespec="seconds")}
    with app.test_request_context():
        out["first_s"] = round(timed(data(0), "red")[0], 3)
        for design in ("red", "plain"):
            for with_photo in (False, True):
                runs = [timed(data(i, with_photo), design) for i in range(1, args.renders + 1)]
                out[f"{design}{'_photo' if with_photo else ''}"] = {
                    "warm_median_s": round(statistics.median(t for t, _ in runs), 3),
                    "bytes": max(n for _, n in runs)}
        posters.poster_pdf(data(0), "red")
        started = time.perf_counter()
        posters.poster_pdf(data(0), "red")
        out["cache_hit_s"] = round(time.perf_counter() - started, 4)
        started = time.perf_counter()
        batch = [posters.poster_pdf(data(1000 + i, with_photo=True), "red")[0]
                 for i in range(args.batch)]
        out[f"batch_{args.batch}_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        merged = merge_pdfs(batch)
        out[f"batch_{args.batch}_merge_s"] = round(time.perf_counter() - started, 3)
        out[f"batch_{args.batch}_bytes"] = len(merged)
        out["png_s"] = round(_png_time(posters, data(2000)), 3)
    print(json.dumps(out, ensure_ascii=False, indent=1))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"posters-{datetime.now():%Y%m%d-%H%M%S}.json").write_text(
        json.dumps(out, ensure_ascii=False, indent=1))
    return 0


def _png_time(posters, d) -> float:
    """The PNG of a poster whose PDF is cached (what a second download costs to rasterise)."""
    posters.poster_pdf(d, "red")
    started = time.perf_counter()
    posters.poster_png(d, "red")
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
