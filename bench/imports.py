"""Benchmark: importing a roster of 100,000 households (名册导入).

    .venv/bin/python bench/imports.py [--database-url URL] [--households 100000] [--repeat 3]

Makes a fresh town with ``--villages`` villages on the database (default: a temporary SQLite
file; the schema is built by the migrations when missing), writes an XLSX of ``--households``
households (openpyxl write-only, into a temporary folder) spread over 10 片 × 10 组 × 20 邻 per
village (all new: the import creates them), each with a phone, 1–6 members and a special tag on
one in seven, then times what the pages run:

* ``dry_run``: what the upload's background job does — read the file (calamine) and check
  every row against the database — median of ``--repeat`` (``dry_run_read_s``: the reading
  alone, timed apart);
* ``import``: what the background job does — read, check again, create the regions and
  households with their tags, one audit row, commit (once: it changes the database);
* ``reimport``: the same file again — read, check, apply 0 changes (median of ``--repeat``);
  it must report 0 created and 0 updated and leave every household's ``updated_at`` alone.

Prints seconds as JSON and writes bench/results/imports-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TAGS = ("独居老人", "留守儿童", "低保户", "残疾人")


def write_roster(path: Path, households: int, villages: list[str]) -> None:
    from openpyxl import Workbook

    from portal.blueprints.ledgers.imports import COLUMNS

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("住户名册")
    ws.append([c.header for c in COLUMNS["households"]])
    per_village = -(-households // len(villages))
    for i in range(households):
        v, k = divmod(i, per_village)
        hood = k // 10  # 10 households per 邻, 20 邻 per 组, 10 组 per 片
        ws.append([villages[v], f"第{hood // 200 + 1}片", f"{hood // 20 % 10 + 1}组",
                   f"{hood % 20 + 1}邻", f"{villages[v]}{hood + 1}栋{k % 10 + 1}号", f"户主{i}",
                   f"13{i:09d}", 1 + i % 6, TAGS[i // 7 % 4] if i % 7 == 0 else ""])
    wb.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--villages", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import func, inspect, select

    from portal import create_app
    from portal.blueprints.auth.models import User
    from portal.blueprints.ledgers import imports as imp
    from portal.blueprints.regions.models import Household, Post, Region
    from portal.blueprints.regions.services import create_region
    from portal.extensions import db
    from portal.scope import path_range

    folder = Path(tempfile.mkdtemp(prefix="imports-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    app = create_app({"DATABASE_URL": url, "IMPORT_DIR": str(folder / "jobs"),
                      "SECRET_KEY": "bench"})
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    with app.app_context():
        if "regions" not in inspect(db.engine).get_table_names():
            upgrade()
        town = create_region(None, None, f"基准镇{stamp}")
        villages = [create_region(None, town, f"{town.name}第{v + 1}村").name
                    for v in range(args.villages)]
        staff = User(phone=f"19{int(time.time()) % 10**9:09d}", name="基准镇干部",
                     password_hash="!")
        db.session.add(staff)
        db.session.flush()
        db.session.add(Post(user_id=staff.id, region_id=town.id, role="town_staff"))
        db.session.commit()
        town_id, staff_id = town.id, staff.id

        roster = folder / "roster.xlsx"
        t = time.perf_counter()
        write_roster(roster, args.households, villages)
        write_s = time.perf_counter() - t

        def job():
            """What the background thread runs, synchronously."""
            token = imp.new_token()
            imp.job_paths(token)[0].write_bytes(roster.read_bytes())
            state = {"user_id": staff_id, "kind": "households", "town_id": town_id,
                     "town_name": "", "file_name": roster.name, "status": "running",
                     "rows": args.households}
            t = time.perf_counter()
            imp._run(app, token, state, staff_id)
            return state, time.perf_counter() - t

        def dry_run():
            """What the upload's background thread runs, synchronously; and the reading alone."""
            token = imp.new_token()
            imp.job_paths(token)[0].write_bytes(roster.read_bytes())
            state = {"user_id": staff_id, "kind": "households", "town_id": town_id,
                     "town_name": "", "file_name": roster.name, "rows": 0}
            t = time.perf_counter()
            imp._dry_run(app, token, state, staff_id)
            total = time.perf_counter() - t
            t = time.perf_counter()
            imp.read_sheet(roster, "households")
            return state, time.perf_counter() - t, total

        runs = [dry_run() for _ in range(args.repeat)]
        for state, _, _ in runs:
            assert state["status"] == "checked" and not state["problem_count"], state
            assert state["summary"]["created"] == args.households, state["summary"]
        first, import_s = job()
        assert first["status"] == "done", first
        db.session.remove()
        hh_filter = select(Household.id, Household.updated_at).join(
            Region, Household.neighborhood_id == Region.id).where(
            path_range(Region.path, db.session.get(Region, town_id).path))
        stamps = dict(db.session.execute(hh_filter).all())
        assert len(stamps) == args.households
        again = [job() for _ in range(args.repeat)]
        for state, _ in again:
            assert state["status"] == "done", state
            s = state["summary"]
            assert s["created"] == s["updated"] == s["new_regions"] == 0, s
            assert s["unchanged"] == args.households, s
        db.session.remove()
        assert dict(db.session.execute(hh_filter).all()) == stamps
        regions = db.session.scalar(select(func.count()).select_from(Region).where(
            path_range(Region.path, db.session.get(Region, town_id).path)))

    result = {
        "database": url.split(":", 1)[0].split("+")[0],
        "households": args.households, "villages": args.villages, "regions": regions,
        "file_mb": round(roster.stat().st_size / 1e6, 2), "write_xlsx_s": round(write_s, 2),
        "dry_run_read_s": round(statistics.median(r[1] for r in runs), 2),
        "dry_run_s": round(statistics.median(r[2] for r in runs), 2),
        "import_s": round(import_s, 2),
        "import_summary": first["summary"],
        "reimport_s": round(statistics.median(t for _, t in again), 2),
        "reimport_summary": again[0][0]["summary"],
        "repeat": args.repeat,
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"imports-{stamp}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
