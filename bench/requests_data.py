"""Bulk 民情诉求 for the benchmark: ``load_requests(200_000)`` appends requests to the households
of the scale data (``flask seed scale``), spread over the last twelve months, with PostgreSQL COPY.

The mix follows what the rules would leave behind: most requests older than a few days are
closed — at 邻 about 62 %, 组 20 %, 村 13 %, 镇 5 % ("微事不出邻、小事不出组、大事不出村、难事不出镇")
— most of them rated; the recent ones are waiting (with deadlines chained from when they entered
their level, so some are already past them and effectively escalated), being worked on, on the
接单 board or taken. Handlers are the people in post at that level. No timeline events are
written (no benchmarked page reads them).

Foreign keys of ``requests`` are dropped inside the transaction and re-added at the end (one
join each instead of a check per row); then the table is vacuumed and analysed.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

from sqlalchemy import text

from portal.blueprints.requests.models import DEFAULT_HOURS
from portal.blueprints.requests.services import PATH_INDEX, chain_dues
from portal.clock import local_midnight_utc, local_today, utcnow
from portal.extensions import db

COLUMNS = ("id", "town_id", "household_id", "neighborhood_id", "path", "category_id",
           "description", "photo", "contact_name", "contact_phone", "contact_note", "source",
           "created_by_id", "form_token", "status", "level", "due_0", "due_1", "due_2", "due_3",
           "missed", "handler_id", "department_id", "open_to_helpers", "helper_id", "claimed_at",
           "helper_done_at", "answer", "closed_at", "closed_level", "closed_by_id", "rating",
           "rating_note", "rated_at", "reopen_count", "version", "created_at", "updated_at")
DESCRIPTIONS = ("楼道灯坏了，晚上看不见。", "垃圾桶满了好几天没人清运。", "屋后电线老化，下雨天有火花。",
                "水沟堵了，污水漫到路上。", "想问问医保今年怎么缴费。", "隔壁新砌的围墙占了我家出路。",
                "小区路灯坏了好几盏。", "独居老人家里水管爆了，需要人帮忙修。", "山塘输水洞堵塞，蓄水困难。",
                "村道转弯处护栏被撞坏了。", "高龄补贴怎么申请？", "楼上漏水到我家，协商不下来。")
ANSWERS = ("已经处理好了，谢谢反映。", "已联系相关单位修复。", "已上门讲解政策，问题已解决。",
           "组织双方协商，已达成一致。", "已转交部门办理完毕，已回访。")
#: Share of closed requests by the level that closed them.
CLOSED_LEVELS = (62, 20, 13, 5)
#: How long the level took to close, in hours (min, max).
CLOSE_HOURS = ((0.5, 30), (20, 72), (40, 150), (72, 240))
RATINGS = ("satisfied",) * 14 + ("basic",) * 4 + ("unsatisfied",) * 2 + (None,) * 5
HANDLER_ROLE = ("neighbor_chief", "group_chief", "village_staff", "town_staff")


def load_requests(count: int, echo=print, seed: int = 2025, days: int = 365) -> int:
    """Append ``count`` requests unless the database has some already; returns how many the
    table holds. PostgreSQL only (COPY)."""
    have = db.session.scalar(text("SELECT count(*) FROM requests"))
    if have:
        return have
    if db.engine.dialect.name != "postgresql":
        raise SystemExit("the request bench data needs PostgreSQL (COPY)")
    started = time.perf_counter()
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    homes = db.session.execute(text(
        "SELECT h.id, h.neighborhood_id, r.path FROM households h "
        "JOIN regions r ON r.id = h.neighborhood_id ORDER BY h.id")).all()
    if not homes:
        raise SystemExit("no households: load the scale data first (flask seed scale)")
    holders: dict[tuple[int, str], int] = {}
    for region_id, role, user_id in db.session.execute(text(
            "SELECT region_id, role, user_id FROM posts WHERE ended_at IS NULL "
            "AND role IN ('neighbor_chief','group_chief','village_staff','town_staff') "
            "ORDER BY id DESC")):
        holders[(region_id, role)] = user_id  # the first post of a node wins
    categories: dict[int, list[int]] = {}
    for town_id, cid in db.session.execute(text(
            "SELECT town_id, id FROM request_categories WHERE active ORDER BY sort")):
        categories.setdefault(town_id, []).append(cid)
    departments: dict[int, list[int]] = {}
    for town_id, did in db.session.execute(text(
            "SELECT town_id, id FROM departments WHERE active ORDER BY sort")):
        departments.setdefault(town_id, []).append(did)
    hours = {t: tuple(h) for t, *h in db.session.execute(text(
        "SELECT town_id, hours_neighborhood, hours_group, hours_village, hours_town "
        "FROM request_settings"))}
    echo(f"[{_t(started)}] {len(homes):,} 户, 生成 {count:,} 条诉求…")

    first_id = (db.session.scalar(text("SELECT max(id) FROM requests")) or 0) + 1
    today = local_today(now)
    midnights = [local_midnight_utc(today - timedelta(days=d)) for d in range(days + 1)]
    rows = []
    for i in range(count):
        rid = first_id + i
        hid, hood_id, path = homes[int(rng.random() * len(homes))]
        ids = [int(p) for p in path.strip("/").split("/")]
        town_id = ids[0]
        nodes = [ids[PATH_INDEX[k]] for k in range(4)]
        # local daytime 07:00–21:00 of a day in the last year; a few from the last hours
        if rng.random() < 0.004:
            created = now - timedelta(minutes=int(rng.random() * 600))
        else:
            created = midnights[int(rng.random() * days) + 1] + timedelta(
                minutes=7 * 60 + int(rng.random() * 14 * 60))
        created = min(created, now)
        age_h = (now - created).total_seconds() / 3600
        by_chief = rng.random() < 0.25
        row = dict(
            id=rid, town_id=town_id, household_id=hid, neighborhood_id=hood_id, path=path,
            category_id=rng.choice(categories[town_id]),
            description=DESCRIPTIONS[int(rng.random() * len(DESCRIPTIONS))], photo=None,
            contact_name="", contact_phone=None, contact_note="",
            source="chief" if by_chief else "resident",
            created_by_id=holders.get((nodes[0], "neighbor_chief")) if by_chief else None,
            form_token=f"bench-{rid}", status="new", level=0, missed=0, handler_id=None,
            department_id=None, open_to_helpers=False, helper_id=None, claimed_at=None,
            helper_done_at=None, answer=None, closed_at=None, closed_level=None,
            closed_by_id=None, rating=None, rating_note="", rated_at=None, reopen_count=0,
            version=1, created_at=created, updated_at=created)
        town_hours = hours.get(town_id, DEFAULT_HOURS)
        roll = rng.random()
        if age_h < 240:  # the last ten days: a real mix
            state = "closed" if roll < 0.55 else "working" if roll < 0.8 else "new"
        else:  # older: almost all closed, a few stuck
            state = "closed" if roll < 0.97 else "working" if roll < 0.99 else "new"
        level = rng.choices(range(4), CLOSED_LEVELS)[0]
        entered = created
        if level and state != "closed":
            entered = min(created + timedelta(hours=level * rng.uniform(1, 8)), now)
        dues = chain_dues(level, entered, town_hours)
        if state == "closed":
            lo, hi = CLOSE_HOURS[level]
            closed_at = min(created + timedelta(hours=rng.uniform(lo, hi)), now)
            handler = holders.get((nodes[level], HANDLER_ROLE[level]))
            rating = rng.choice(RATINGS) if closed_at < now - timedelta(hours=2) else None
            row.update(status="closed", level=level, closed_level=level, closed_at=closed_at,
                       closed_by_id=handler, handler_id=handler, updated_at=closed_at,
                       answer=ANSWERS[int(rng.random() * len(ANSWERS))], rating=rating,
                       rated_at=closed_at + timedelta(hours=20) if rating else None,
                       missed=1 if level and rng.random() < 0.25 else 0)
            if level >= 2 and rng.random() < 0.7:
                row["department_id"] = rng.choice(departments[town_id])
        elif state == "working":
            handler = holders.get((nodes[level], HANDLER_ROLE[level]))
            row.update(status="working", level=level, handler_id=handler,
                       updated_at=min(entered + timedelta(hours=1), now))
            if rng.random() < 0.08:  # on the 接单 board; half of them taken by the 组长
                row["open_to_helpers"] = True
                if rng.random() < 0.5:
                    row.update(helper_id=holders.get((nodes[1], "group_chief")),
                               claimed_at=row["updated_at"])
        else:
            row.update(level=level)
        row.update(due_0=dues[0], due_1=dues[1], due_2=dues[2], due_3=dues[3])
        rows.append(tuple(row[c] for c in COLUMNS))
    echo(f"[{_t(started)}] 写入…")
    fks = _drop_foreign_keys()
    conn = db.session.connection().connection.driver_connection
    with conn.cursor() as cur, cur.copy(f"COPY requests ({', '.join(COLUMNS)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
    for name, definition in fks:
        db.session.execute(text(f'ALTER TABLE requests ADD CONSTRAINT "{name}" {definition}'))
    db.session.execute(text(
        "SELECT setval(pg_get_serial_sequence('requests', 'id'), "
        "(SELECT coalesce(max(id), 0) + 1 FROM requests), false)"))
    db.session.commit()
    with db.engine.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM (ANALYZE) requests"))
    echo(f"[{_t(started)}] {count:,} 条诉求已装入并分析")
    return db.session.scalar(text("SELECT count(*) FROM requests"))


def _drop_foreign_keys() -> list[tuple[str, str]]:
    db.session.execute(text("SET LOCAL synchronous_commit = off"))
    fks = [tuple(r) for r in db.session.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = 'requests'::regclass ORDER BY 1"))]
    for name, _ in fks:
        db.session.execute(text(f'ALTER TABLE requests DROP CONSTRAINT "{name}"'))
    return fks


def _t(started: float) -> str:
    return f"{time.perf_counter() - started:6.1f}s"


def stats_periods(now: datetime | None = None) -> dict[str, tuple[str, str]]:
    """The periods the bench asks the figures page for: last calendar month, last 365 days."""
    today = local_today(now or utcnow())
    last_end = today.replace(day=1) - timedelta(days=1)
    return {"month": (last_end.replace(day=1).isoformat(), last_end.isoformat()),
            "year": ((today - timedelta(days=364)).isoformat(), today.isoformat())}
