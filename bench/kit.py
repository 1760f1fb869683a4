"""Benchmark: the 四个一 cards, one card and a whole village's sheets.

    .venv/bin/python bench/kit.py [--households 400] [--chiefs 40]

Builds a throwaway SQLite database with one village of ``--chiefs`` 邻长 (one per 邻, a card
photo each) and ``--households`` households spread over their 邻, then times, in a request
context, what the views run: loading the rows, making the QR codes and rendering the PDF. First
one work card (fonts loaded, cold), then each single card warm (median of 5), then the village's
work-card, policy-card and contact-card sheets, and the contact cards as the batch print renders
them (parts, then the merge). Prints seconds, pages and bytes as JSON and
writes bench/results/kit-<timestamp>.json.
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
    parser.add_argument("--households", type=int, default=400)
    parser.add_argument("--chiefs", type=int, default=40)
    args = parser.parse_args()

    from PIL import Image

    from portal import create_app
    from portal.batch import merge_pdfs
    from portal.blueprints.auth.models import User
    from portal.blueprints.commendations import kit
    from portal.blueprints.regions.models import Household, Post
    from portal.blueprints.regions.services import create_region, path_names
    from portal.extensions import db
    from portal.photos import new_photo_name, store_photo

    folder = Path(tempfile.mkdtemp(prefix="kit-"))
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / 'b.db'}",
                      "UPLOAD_DIR": str(folder / "uploads"), "SERVER_NAME": "sanzhang.example"})
    photo = io.BytesIO()
    Image.new("RGB", (600, 800), (190, 120, 90)).save(photo, "JPEG", quality=85)
    with app.app_context():
        db.create_all()
        town = create_region(None, None, "江背镇")
        village = create_region(None, town, "特立村")
        group = create_region(None, create_region(None, village, "第一片"), "杨家井组")
        hoods = [create_region(None, group, f"杨家井{i + 1}邻") for i in range(args.chiefs)]
        for i, hood in enumerate(hoods):
            user = User(phone=f"139{i:08d}", name=f"胡新林{i}", password_hash="!")
            db.session.add(user)
            db.session.flush()
            name = new_photo_name()
            store_photo(kit.PHOTO_KIND, name, photo.getvalue())
            db.session.add(Post(user_id=user.id, region_id=hood.id, role="neighbor_chief",
                                card_photo=name))
        for i in range(args.households):
            db.session.add(Household(neighborhood_id=hoods[i % len(hoods)].id,
                                     address=f"杨家井{i + 1}号", head_name=f"户主{i}",
                                     member_count=3, intake_token=f"bench{i:017d}"))
        db.session.commit()

        def run(kind: str, one: int | None, sheet: bool) -> tuple[float, int, int]:
            started = time.perf_counter()
            with app.test_request_context():
                if kind == "contact":
                    rows = kit.households_under(village, household_id=one)
                    cards = kit.contact_cards(rows, path_names(r.path for r in rows))
                else:
                    chiefs = kit.chiefs_under(village, post_id=one)
                    names = path_names([c.path for c in chiefs] + [town.path])
                    if kind == "work":
                        kit.fill_card_tokens([c.post for c in chiefs])
                        cards = kit.work_cards(chiefs, names)
                    else:
                        cards = kit.policy_cards(chiefs, names, town, None,
                                                 kit.checklists(town.id))
                pdf = kit.cards_pdf(kind, cards, sheet)
            db.session.commit()
            return time.perf_counter() - started, len(pdf), len(cards)

        first_post = db.session.scalar(db.select(Post.id).order_by(Post.id))
        first_household = db.session.scalar(db.select(Household.id).order_by(Household.id))
        results: dict[str, dict] = {}
        seconds, size, _ = run("work", first_post, False)
        results["work card, cold"] = {"seconds": round(seconds, 3), "bytes": size}
        for kind, one in (("work", first_post), ("policy", first_post),
                          ("contact", first_household)):
            runs = [run(kind, one, False) for _ in range(5)]
            results[f"{kind} card, warm"] = {
                "seconds": round(statistics.median(r[0] for r in runs), 3),
                "bytes": runs[0][1]}
        for kind in ("work", "policy", "contact"):
            seconds, size, cards = run(kind, None, True)
            results[f"{kind} sheet"] = {"cards": cards, "seconds": round(seconds, 2),
                                        "bytes": size,
                                        "pages": -(-cards // kit.PER_SHEET[kind])}
        # the village's contact cards as the batch print renders them: parts of PART_SIZE
        # cards one after another in the background, then merged for the download
        with app.test_request_context():
            rows = kit.households_under(village)
            parts = kit.contact_parts(kit.contact_cards(rows, path_names(r.path for r in rows)))
            timed = []
            for part in parts:
                started = time.perf_counter()
                pdf = part.render()
                timed.append((time.perf_counter() - started, pdf))
            started = time.perf_counter()
            merged = merge_pdfs([pdf for _, pdf in timed])
            results["contact batch"] = {
                "parts": len(parts), "cards per part": kit.PART_SIZE,
                "part seconds, median": round(statistics.median(t for t, _ in timed), 2),
                "all parts seconds": round(sum(t for t, _ in timed), 2),
                "merge seconds": round(time.perf_counter() - started, 3),
                "bytes": len(merged)}
    print(json.dumps(results, ensure_ascii=False, indent=1))
    out = Path(__file__).parent / "results" / f"kit-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
