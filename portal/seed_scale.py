"""`flask seed scale --households N`: bulk synthetic data for benchmarks.

A county of ``towns`` towns; per town villages → areas → groups → 邻 so that there is one 邻 (and
one 邻长) per 40/3 ≈ 13 households; about 20 % special households (tagged, ``special_since`` set);
one account and post for every 邻长, 组长, 片长 and two per village and town; about
``logs_per_household`` duty logs per household over the last three months, with each household's
last-visit / last-contact columns set from its own logs while they are generated.

Towns go through :func:`create_region` (it installs the town's tags, 三张清单 and contact rules);
everything else is written in bulk with explicit ids after the current maximum, so the data can be
appended to a database that already has some: ``COPY`` on PostgreSQL (then the id sequences are
moved past the new rows and the tables vacuumed and analysed), ``executemany`` on SQLite. On
PostgreSQL it is all one transaction in which the loaded tables' foreign keys (and, for a table
that at least doubles, its plain indexes) are dropped and re-created at the end: other sessions
wait for those tables meanwhile, so this is for benchmark databases, not a live deployment.
400,000 households / 30,000 邻长 / 5,000,000 logs take about 2½ minutes.

Every account's password is :data:`SCALE_PASSWORD`; ``phones(role)`` below finds logins.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text

from portal.blueprints.auth.services import hash_password
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.regions.models import HouseholdTag, Region
from portal.blueprints.regions.services import create_region
from portal.clock import local_midnight_utc, local_today, utcnow
from portal.extensions import db
from portal.seed import DEMO_PASSWORD, GIVEN, SURNAMES

#: The password of every account the scale seed creates.
SCALE_PASSWORD = DEMO_PASSWORD
#: Households per 邻 (400,000 households → 30,000 邻长).
HOUSEHOLDS_PER_HOOD = 40 / 3
#: Target fan-out of the tree: 邻 per 组, 组 per 片, 片 per 村.
HOODS_PER_GROUP, GROUPS_PER_AREA, AREAS_PER_VILLAGE = 8, 4, 3
SPECIAL_SHARE = 0.2
#: Households registered during the log window (they get logs only after that).
RECENT_SHARE = 0.01
#: Special households get this many times the logs of ordinary ones.
SPECIAL_WEIGHT = 2.0
#: How diligent the 邻长 of a 邻 is, relative to the mean (normalised below).
DILIGENCE = (1.25, 1.15, 1.05, 1.0, 1.0, 0.9, 0.6, 0.3, 0.0)
LOG_DAYS = 91
#: Logs happen in local daytime, 08:00–20:00 Asia/Shanghai.
DAY_START_MIN, DAY_MINUTES = 8 * 60, 12 * 60
METHOD_POOL = ("visit",) * 5 + ("phone",) * 3 + ("wechat",) * 3 + ("other",)
NOTES = ("",) * 6 + ("身体还好，叮嘱注意用电安全。", "反映门前路灯不亮，已上报组长。",
                     "宣传医保缴费政策。", "孩子学习情况正常。", "调解邻里排水纠纷。",
                     "提醒防范电信诈骗。")
PLACES = ("枫林", "石桥", "荷塘", "竹山", "杨柳", "桃源", "龙泉", "金盆", "白沙", "清溪",
          "长岭", "松柏", "梅园", "新塘", "高桥", "团山", "花园", "莲湖", "大塘", "柏树")
CHUNK_HOUSEHOLDS = 5000
#: Multipliers that scramble ids into phone digits (bijections modulo 10**9: coprime with 10).
_HOUSEHOLD_MUL, _USER_MUL = 387_420_489, 192_837_463

COLUMNS = {
    "regions": ("id", "parent_id", "level", "name", "path", "created_at", "updated_at"),
    "users": ("id", "phone", "name", "password_hash", "active", "session_generation",
              "created_at", "updated_at"),
    "posts": ("id", "user_id", "region_id", "role", "started_at"),
    "households": ("id", "neighborhood_id", "address", "head_name", "phone", "member_count",
                   "special_since", "last_visit_at", "last_contact_at", "last_contact_method",
                   "created_at", "updated_at"),
    "household_tag_links": ("household_id", "tag_id"),
    "duty_logs": ("id", "household_id", "neighborhood_id", "user_id", "duty_item_id", "method",
                  "occurred_at", "note", "form_token", "created_at"),
}
ROLE_OF_LEVEL = {"town": "town_staff", "village": "village_staff", "area": "area_chief",
                 "group": "group_chief", "neighborhood": "neighbor_chief"}
STAFF_PER_NODE = {"town": 2, "village": 2}


def split(total: int, size: float) -> list[int]:
    """``total`` items in about ``total / size`` buckets of near-equal size (at least one)."""
    k = max(1, round(total / size)) if total else 1
    k = min(k, max(total, 1))
    return [(i + 1) * total // k - i * total // k for i in range(k)]  # remainders spread out


class _Sink:
    """Bulk writer on the session's own DBAPI connection (one transaction with the ORM part)."""

    def __init__(self):
        self.conn = db.session.connection().connection.driver_connection
        self.postgres = db.engine.dialect.name == "postgresql"
        #: Timestamps as SQLAlchemy stores them: SQLite compares them as text.
        self.ts_suffix = "" if self.postgres else ".000000"
        self.true = True if self.postgres else 1

    def write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        cols = COLUMNS[table]
        cur = self.conn.cursor()
        try:
            if self.postgres:
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                sql = (f"INSERT INTO {table} ({', '.join(cols)}) "
                       f"VALUES ({', '.join('?' * len(cols))})")
                for i in range(0, len(rows), 10_000):
                    cur.executemany(sql, rows[i:i + 10_000])
        finally:
            cur.close()

    def ts(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S") + self.ts_suffix


def _next_id(model_table: str) -> int:
    return (db.session.scalar(text(f"SELECT max(id) FROM {model_table}")) or 0) + 1


def _free_names(count: int) -> list[str]:
    used = set(db.session.scalars(select(Region.name).where(Region.parent_id.is_(None))))
    names, k = [], 1
    while len(names) < count:
        name = f"规模{k}镇"
        if name not in used:
            names.append(name)
        k += 1
    return names


def load_scale(households: int, towns: int | None = None, logs_per_household: float = 12.5,
               echo=print, seed: int = 2024) -> dict:
    """Append a synthetic county to the database; returns counts for the command to print."""
    if households < 1:
        raise ValueError("households must be at least 1")
    started = time.perf_counter()
    rng = random.Random(seed + _next_id("regions"))
    now = utcnow().replace(microsecond=0)
    sink = _Sink()

    n_hoods = max(1, households * 3 // 40)
    towns = min(max(1, towns or households // 20000), n_hoods)
    dropped = _drop_foreign_keys(sink)
    dropped_ix = _drop_indexes(sink, {"households": households,
                                      "duty_logs": int(households * logs_per_household)})

    # -- towns, through the service (defaults: tags, 三张清单, contact rules) ---------------
    town_objs = [create_region(None, None, name) for name in _free_names(towns)]
    db.session.flush()
    town_ids = [t.id for t in town_objs]
    tags_of: dict[int, list[int]] = {t: [] for t in town_ids}
    for tid, tag_id in db.session.execute(
            select(HouseholdTag.town_id, HouseholdTag.id)
            .where(HouseholdTag.town_id.in_(town_ids), HouseholdTag.name != "其他")
            .order_by(HouseholdTag.sort)):
        tags_of[tid].append(tag_id)
    duties_of: dict[int, list[int]] = {t: [] for t in town_ids}
    contact_of: dict[int, int] = {}
    for tid, item_id, title in db.session.execute(
            select(ChecklistItem.town_id, ChecklistItem.id, ChecklistItem.title)
            .where(ChecklistItem.town_id.in_(town_ids), ChecklistItem.kind == "duty")
            .order_by(ChecklistItem.sort)):
        duties_of[tid].append(item_id)
        if title == "民情联络员":
            contact_of[tid] = item_id
    echo(f"[{_t(started)}] {towns} 个镇已创建（含默认清单与联系规则）")

    # -- the tree below the towns -------------------------------------------------------------
    region_id = _next_id("regions")
    created = sink.ts(now - timedelta(days=800))
    region_rows: list[tuple] = []
    #: (region id, level, path, town id) of every node that gets staff or a chief
    nodes: list[tuple[int, str, str, int]] = [(t.id, "town", t.path, t.id) for t in town_objs]
    hoods: list[tuple[int, int, str, bool]] = []  # (邻 id, town id, group name, 社区?)
    for town, hoods_in_town in zip(town_objs, split(n_hoods, n_hoods / towns), strict=True):
        groups = split(hoods_in_town, HOODS_PER_GROUP)
        areas = split(len(groups), GROUPS_PER_AREA)
        villages = split(len(areas), AREAS_PER_VILLAGE)
        group_iter, area_iter = iter(groups), iter(areas)
        g_serial = 0
        for v_index, areas_in_village in enumerate(villages):
            v_id, region_id = region_id, region_id + 1
            v_path = f"{town.path}{v_id}/"
            region_rows.append((v_id, town.id, "village", _village_name(v_index), v_path,
                                created, created))
            nodes.append((v_id, "village", v_path, town.id))
            for a_index in range(areas_in_village):
                a_id, region_id = region_id, region_id + 1
                a_path = f"{v_path}{a_id}/"
                region_rows.append((a_id, v_id, "area", f"第{a_index + 1}片", a_path,
                                    created, created))
                nodes.append((a_id, "area", a_path, town.id))
                for _ in range(next(area_iter)):
                    g_id, region_id = region_id, region_id + 1
                    g_path = f"{a_path}{g_id}/"
                    g_name = _group_name(g_serial)
                    g_serial += 1
                    region_rows.append((g_id, a_id, "group", g_name, g_path, created, created))
                    nodes.append((g_id, "group", g_path, town.id))
                    for n_index in range(next(group_iter)):
                        n_id, region_id = region_id, region_id + 1
                        n_path = f"{g_path}{n_id}/"
                        region_rows.append((n_id, g_id, "neighborhood",
                                            f"{g_name[:-1]}{n_index + 1}邻", n_path,
                                            created, created))
                        nodes.append((n_id, "neighborhood", n_path, town.id))
                        hoods.append((n_id, town.id, g_name, v_index % 5 == 4))
    sink.write("regions", region_rows)
    levels = {lv: sum(1 for r in region_rows if r[2] == lv) for lv in ("village", "area", "group")}
    echo(f"[{_t(started)}] 单位 {len(region_rows):,} 个（村 {levels['village']:,}，"
         f"片 {levels['area']:,}，组 {levels['group']:,}，邻 {len(hoods):,}）")

    # -- accounts and posts: one person per post ----------------------------------------------
    password_hash = hash_password(SCALE_PASSWORD)  # scrypt once, shared by every account
    used_phones = set(db.session.scalars(text("SELECT phone FROM users")))
    user_id, post_id = _next_id("users"), _next_id("posts")
    user_rows, post_rows = [], []
    chief_of: dict[int, int] = {}
    started_at = sink.ts(now - timedelta(days=400))
    for rid, level, _path, _town in nodes:
        role = ROLE_OF_LEVEL[level]
        for _ in range(STAFF_PER_NODE.get(level, 1)):
            phone = _user_phone(user_id, used_phones)
            user_rows.append((user_id, phone, _name(rng), password_hash, sink.true, 0,
                              started_at, started_at))
            post_rows.append((post_id, user_id, rid, role, started_at))
            if level == "neighborhood":
                chief_of[rid] = user_id
            user_id, post_id = user_id + 1, post_id + 1
    sink.write("users", user_rows)
    sink.write("posts", post_rows)
    echo(f"[{_t(started)}] 账号和岗位 {len(user_rows):,} 个（密码 {SCALE_PASSWORD}）")

    # -- households and their logs, a chunk of 邻 at a time -----------------------------------
    minute_ts = _daytime_minutes(now, sink)
    n_minutes = len(minute_ts)
    dil_mean = sum(DILIGENCE) / len(DILIGENCE)
    # mean logs of an ordinary household of an average 邻长, so the overall mean comes out right
    base = (logs_per_household / (1 + SPECIAL_SHARE * (SPECIAL_WEIGHT - 1)) / dil_mean
            / (1 - RECENT_SHARE / 2))
    old_days = [sink.ts(now - timedelta(days=d)) for d in range(0, 1300)]
    household_id, log_id = _next_id("households"), _next_id("duty_logs")
    used_hh_phones = set(db.session.scalars(
        text("SELECT phone FROM households WHERE phone IS NOT NULL")))
    per_hood = split(households, households / n_hoods)
    totals = {"households": 0, "special": 0, "logs": 0}
    next_report = max(households // 10, 1)
    h_rows: list[tuple] = []
    link_rows: list[tuple] = []
    log_rows: list[tuple] = []  # (minute, household, 邻, user, item, method, note)

    def flush() -> None:
        nonlocal log_id
        sink.write("households", h_rows)
        sink.write("household_tag_links", link_rows)
        log_rows.sort(key=lambda r: r[0])  # heap in time order, as real logging would leave it
        rows = []
        for minute, hid, nid, uid, item, method, note in log_rows:
            at = minute_ts[minute]
            rows.append((log_id, hid, nid, uid, item, method, at, note, f"s-{log_id}", at))
            log_id += 1
        sink.write("duty_logs", rows)
        totals["logs"] += len(rows)
        h_rows.clear()
        link_rows.clear()
        log_rows.clear()

    for (nid, town_id, g_name, community), count in zip(hoods, per_hood, strict=True):
        uid = chief_of[nid]
        tags, items, contact = tags_of[town_id], duties_of[town_id], contact_of[town_id]
        diligence = rng.choice(DILIGENCE)
        for _ in range(count):
            hid, household_id = household_id, household_id + 1
            lo = int(rng.random() * n_minutes) if rng.random() < RECENT_SHARE else 0
            created_at = minute_ts[lo] if lo else old_days[300 + int(rng.random() * 900)]
            special_since = None
            weight = 1.0
            if rng.random() < SPECIAL_SHARE:
                weight = SPECIAL_WEIGHT
                totals["special"] += 1
                special_since = minute_ts[lo] if lo else (
                    old_days[1 + int(rng.random() * 60)] if rng.random() < 0.05
                    else old_days[60 + int(rng.random() * 240)])
                first = tags[int(rng.random() * len(tags))]
                link_rows.append((hid, first))
                if rng.random() < 0.2:
                    second = tags[int(rng.random() * len(tags))]
                    if second != first:
                        link_rows.append((hid, second))
            expected = base * weight * diligence * (n_minutes - lo) / n_minutes
            n_logs = int(expected + rng.random())
            last_visit = last_contact = -1
            last_method = None
            span = n_minutes - lo
            for _ in range(n_logs):
                minute = lo + int(rng.random() * span)
                method = METHOD_POOL[int(rng.random() * 12)]
                item = contact if rng.random() < 0.6 else items[int(rng.random() * len(items))]
                log_rows.append((minute, hid, nid, uid, item, method,
                                 NOTES[int(rng.random() * len(NOTES))]))
                if method == "visit" and minute > last_visit:
                    last_visit = minute
                if minute >= last_contact:
                    last_contact, last_method = minute, method
            phone = _household_phone(hid, used_hh_phones)
            address = (f"{g_name[:-1]}小区{1 + int(rng.random() * 20)}栋"
                       f"{1 + int(rng.random() * 6)}0{1 + int(rng.random() * 4)}" if community
                       else f"{g_name}{1 + int(rng.random() * 80)}号")
            h_rows.append((
                hid, nid, address, _name(rng), phone, 1 + int(rng.random() * 6), special_since,
                minute_ts[last_visit] if last_visit >= 0 else None,
                minute_ts[last_contact] if last_contact >= 0 else None, last_method,
                created_at, created_at))
            totals["households"] += 1
            if totals["households"] >= next_report:
                next_report += max(households // 10, 1)
                echo(f"[{_t(started)}] 户 {totals['households']:,} / {households:,}，"
                     f"履职记录 {totals['logs'] + len(log_rows):,}")
        if len(h_rows) >= CHUNK_HOUSEHOLDS:
            flush()
    flush()
    echo(f"[{_t(started)}] 数据已写入，重建索引、检查外键…")
    _recreate(dropped_ix, echo, started)
    _restore_foreign_keys(dropped)
    _finish(sink)
    db.session.commit()
    _after_commit(sink, echo, started)
    neighbor_phone = next(r[1] for r, p in zip(user_rows, post_rows, strict=True)
                          if p[3] == "neighbor_chief")
    town_phone = next(r[1] for r, p in zip(user_rows, post_rows, strict=True)
                      if p[3] == "town_staff")
    return {"镇": towns, "村/社区": levels["village"], "片": levels["area"],
            "组": levels["group"], "邻": len(hoods), "户": totals["households"],
            "特殊户": totals["special"], "账号": len(user_rows), "履职记录": totals["logs"],
            "邻长示例": neighbor_phone, "镇干部示例": town_phone, "密码": SCALE_PASSWORD,
            "用时": f"{time.perf_counter() - started:.1f}s"}


#: Tables written in bulk; on PostgreSQL their foreign keys are checked once at the end.
BULK_TABLES = ("regions", "posts", "households", "household_tag_links", "duty_logs")


def _drop_foreign_keys(sink: _Sink) -> list[tuple[str, str, str]]:
    """PostgreSQL checks a foreign key per COPY row (and locks the referenced row), ~100 µs a
    row; dropping the loaded tables' foreign keys inside this transaction and adding them back
    at the end checks each one in a single join instead. Nothing changes if the load fails."""
    if not sink.postgres:
        return []
    db.session.execute(text("SET LOCAL synchronous_commit = off"))
    db.session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    fks = [tuple(r) for r in db.session.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid::regclass::text IN :tables ORDER BY 1, 2"
    ).bindparams(bindparam("tables", expanding=True)), {"tables": list(BULK_TABLES)})]
    for table, name, _definition in fks:
        db.session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    return fks


def _drop_indexes(sink: _Sink, new_rows: dict[str, int]) -> list[tuple[str, str, str]]:
    """Plain (non-constraint) indexes of a table that at least doubles are built once at the end
    (a sort) instead of row by row. Primary keys and unique constraints stay."""
    if not sink.postgres:
        return []
    out = []
    for table, adding in new_rows.items():
        existing = db.session.scalar(text(f"SELECT count(*) FROM {table}"))
        if adding < max(existing, 100_000):
            continue
        out += [(table, *r) for r in db.session.execute(text(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid "
            "WHERE x.indrelid = CAST(:t AS regclass) AND c.oid IS NULL ORDER BY 1"), {"t": table})]
    for _table, name, _definition in out:
        db.session.execute(text(f'DROP INDEX "{name}"'))
    return out


def _recreate(indexes: list[tuple[str, str, str]], echo, started: float) -> None:
    for _table, name, definition in indexes:
        db.session.execute(text(definition))
        echo(f"[{_t(started)}] 索引 {name} 已重建")


def _restore_foreign_keys(fks: list[tuple[str, str, str]]) -> None:
    for table, name, definition in fks:
        db.session.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))


def _finish(sink: _Sink) -> None:
    """Move PostgreSQL's id sequences past the explicitly numbered rows."""
    if not sink.postgres:
        return
    for table in ("regions", "users", "posts", "households", "duty_logs"):
        db.session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"))


def _after_commit(sink: _Sink, echo, started: float) -> None:
    """Fresh statistics (and, on PostgreSQL, a visibility map for index-only scans)."""
    tables = ("regions", "users", "posts", "households", "household_tag_links", "duty_logs")
    if sink.postgres:
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in tables:
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    echo(f"[{_t(started)}] 统计信息已更新 (ANALYZE)")


def _daytime_minutes(now: datetime, sink: _Sink) -> list[str]:
    """Every local-daytime minute of the last LOG_DAYS days up to now, oldest first."""
    today = local_today(now)
    out = []
    for back in range(LOG_DAYS, -1, -1):
        midnight = local_midnight_utc(today - timedelta(days=back))
        for m in range(DAY_START_MIN, DAY_START_MIN + DAY_MINUTES):
            at = midnight + timedelta(minutes=m)
            if at > now:
                return out or [sink.ts(now)]
            out.append(sink.ts(at))
    return out


def _name(rng: random.Random) -> str:
    return SURNAMES[int(rng.random() * len(SURNAMES))] + GIVEN[int(rng.random() * len(GIVEN))]


def _village_name(k: int) -> str:
    place = PLACES[k % len(PLACES)] + (str(k // len(PLACES) + 1) if k >= len(PLACES) else "")
    return place + ("社区" if k % 5 == 4 else "村")


def _group_name(k: int) -> str:
    place = PLACES[(k * 7) % len(PLACES)] + (str(k // len(PLACES) + 1) if k >= len(PLACES) else "")
    return place + "组"


def _user_phone(uid: int, used: set[str]) -> str:
    digits = f"{uid * _USER_MUL % 10**9:09d}"
    for second in "76":
        phone = f"1{second}{digits}"
        if phone not in used:
            return phone
    raise RuntimeError(f"no free phone number for user {uid}")


def _household_phone(hid: int, used: set[str]) -> str | None:
    digits = f"{hid * _HOUSEHOLD_MUL % 10**9:09d}"
    for k in range(4):
        phone = f"1{'3589'[(hid + k) % 4]}{digits}"
        if phone not in used:
            return phone
    return None  # every variant taken by older data: leave this one without a phone


def _t(started: float) -> str:
    return f"{time.perf_counter() - started:6.1f}s"


def phones(role: str, limit: int = 1, town_id: int | None = None) -> list[str]:
    """Login phones of accounts holding an active post of ``role`` (for bench and tests)."""
    from portal.blueprints.auth.models import User
    from portal.blueprints.regions.models import Post

    q = (select(User.phone).join(Post, Post.user_id == User.id)
         .where(Post.role == role, Post.ended_at.is_(None)).order_by(Post.id).limit(limit))
    if town_id is not None:
        q = q.join(Region, Post.region_id == Region.id).where(
            Region.path.startswith(f"/{town_id}/"))
    return list(db.session.scalars(q))

