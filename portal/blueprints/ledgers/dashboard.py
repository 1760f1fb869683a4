"""The figures of a scope (town, village, 片, group) for a period, and their 12-month trends: the
dashboard and its monthly PDF report.

Definitions (each written under its figure on the page too):

* 走访服务群众 (contacts): non-voided duty logs whose ``occurred_at`` lies in the period, in the
  scope's 邻 (the 邻 the household belonged to when the duty was done); 上门 = method visit.
* 收集问题诉求 (collected): requests created in the period.
* 调解矛盾纠纷 (disputes): mediation sessions held in the period on requests of the scope: the
  count the 好邻 statistics snapshot makes (commendations.services.stats_snapshot) for one 邻长.
* 开展为民服务 (services): requests closed (办结) in the period and still closed.
* 办结层级 (share solved at each level): of the requests closed in the period, the share closed at
  邻 / 组 / 村 / 镇 (requests.services.Figures.closed_share, but counted by closing date).
* 逾期未办 (overdue now): open requests that missed a response deadline at some level, recorded or
  not yet: the union of the /requests/overdue lists (requests.services.missed_sql).
* 三长 in post now: posts not ended, on a node of the scope.
* 覆盖 (covered): households whose 邻 has a 邻长 in post; 按时联系: households not overdue under the
  town's contact rules now (duties.services.overdue_sql, as /duties/dashboard).

The monthly cache: the trend's contacts of a closed month come from :class:`DutyMonth` rows (per
邻 and local month) when the town's :class:`DutyMonthMark` of that month has ``filled_version ==
version``. A month is cached only once it ended more than :data:`GRACE` ago, and
:func:`logs_changed` (called by duties.services.log_duty and void_log in their transaction) bumps
the version of a month that has ended. So a cached figure is stale only if a duty log of a closed
month is inserted, voided, deleted or moved to another 邻 by something other than those two
functions (bulk loads, hand-made SQL): run ``flask ledgers refresh-figures`` after such a change.
A fill reads the version before it counts and marks the month filled only if the version is still
the one it read, so a log back-dated while the count runs leaves the month unfilled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Integer,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from portal.blueprints.duties.models import DutyLog
from portal.blueprints.duties.services import overdue_sql, rule_windows
from portal.blueprints.ledgers.models import DutyMonth, DutyMonthMark
from portal.blueprints.regions.models import Household, Post, Region
from portal.blueprints.requests.models import TOP, Mediation, Request
from portal.blueprints.requests.services import missed_sql
from portal.clock import local_midnight_utc, local_today, utcnow
from portal.extensions import db
from portal.scope import path_range

#: Months in a trend.
MONTHS = 12
#: A month is cached only this long after it ended (no transaction that began in it is still open).
GRACE = timedelta(hours=1)
#: The 三长 (and volunteers) counted, in the order shown.
CHIEF_ROLES = ("area_chief", "group_chief", "neighbor_chief", "volunteer")
LEVELS = ("邻", "组", "村", "镇")


def add_months(month: date, n: int) -> date:
    k = month.year * 12 + month.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def month_of(at: datetime) -> date:
    """The first day of the local month of a stored (UTC) instant."""
    return local_today(at).replace(day=1)


def cacheable(month: date, now: datetime) -> bool:
    return local_midnight_utc(add_months(month, 1)) + GRACE <= now


# -- the monthly cache -------------------------------------------------------------------------
def _upsert(model):
    name = db.session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model)


def logs_changed(town_id: int, occurred_at: datetime, now: datetime | None = None) -> None:
    """A duty log of the town at ``occurred_at`` was added or voided: if its month has ended,
    the month's cached counts of the town are no longer trusted (one statement; none for a
    log of the running month)."""
    now = now or utcnow()
    month = month_of(occurred_at)
    if local_midnight_utc(add_months(month, 1)) > now:
        return
    table = DutyMonthMark.__table__
    db.session.execute(
        _upsert(DutyMonthMark).values(town_id=town_id, month=month, version=1)
        .on_conflict_do_update(index_elements=["town_id", "month"],
                               set_={"version": table.c.version + 1}))


def fill_month(town_id: int, town_path: str, month: date, seen_version: int | None,
               now: datetime) -> bool:
    """Count the town's non-voided logs of ``month`` per 邻 into :class:`DutyMonth` and mark the
    month filled at ``seen_version`` (the mark's version read before this call; None: no mark
    yet). In a savepoint: returns False (and changes nothing) when another fill got there first
    or a log changed meanwhile."""
    start, end = local_midnight_utc(month), local_midnight_utc(add_months(month, 1))
    hoods = select(Region.id).where(path_range(Region.path, town_path),
                                    Region.level == "neighborhood")
    try:
        with db.session.begin_nested():
            if seen_version is None:
                db.session.execute(_upsert(DutyMonthMark).values(
                    town_id=town_id, month=month, version=0).on_conflict_do_nothing())
                seen_version = 0
            db.session.execute(delete(DutyMonth).where(DutyMonth.month == month,
                                                       DutyMonth.neighborhood_id.in_(hoods)))
            db.session.execute(insert(DutyMonth).from_select(
                ["neighborhood_id", "month", "town_id", "contacts", "visits"],
                select(DutyLog.neighborhood_id, literal(month), literal(town_id), func.count(),
                       func.sum(case((DutyLog.method == "visit", 1), else_=0)))
                .where(DutyLog.neighborhood_id.in_(hoods), DutyLog.voided_at.is_(None),
                       DutyLog.occurred_at >= start, DutyLog.occurred_at < end)
                .group_by(DutyLog.neighborhood_id)))
            done = db.session.execute(
                update(DutyMonthMark).where(DutyMonthMark.town_id == town_id,
                                            DutyMonthMark.month == month,
                                            DutyMonthMark.version == seen_version)
                .values(filled_version=seen_version, filled_at=now)).rowcount == 1
            if not done:
                raise _Stale
    except (_Stale, IntegrityError):
        return False
    return True


class _Stale(Exception):
    pass


def refresh_all() -> int:
    """Forget every cached month (after a bulk change of duty logs): the dashboards count them
    again on their next view. Returns the number of marks dropped."""
    n = db.session.execute(delete(DutyMonthMark)).rowcount
    db.session.execute(delete(DutyMonth))
    return n


# -- figures -----------------------------------------------------------------------------------
@dataclass
class Figures:
    contacts: int = 0
    visits: int = 0
    collected: int = 0
    closed_at: list[int] = field(default_factory=lambda: [0] * (TOP + 1))
    disputes: int = 0
    overdue_requests: int = 0
    households: int = 0
    covered: int = 0
    overdue_households: int = 0
    chiefs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHIEF_ROLES, 0))

    @property
    def closed(self) -> int:
        return sum(self.closed_at)

    @property
    def services(self) -> int:
        """开展为民服务: requests closed in the period."""
        return self.closed

    def closed_share(self, level: int) -> int | None:
        return round(100 * self.closed_at[level] / self.closed) if self.closed else None

    def stayed_within(self, level: int) -> int | None:
        return round(100 * sum(self.closed_at[:level + 1]) / self.closed) if self.closed else None

    @property
    def covered_pct(self) -> int | None:
        return round(100 * self.covered / self.households) if self.households else None

    @property
    def on_time_pct(self) -> int | None:
        """As duties.services.Stats.on_time_pct."""
        if not self.households:
            return None
        return round(100 * (self.households - self.overdue_households) / self.households)


@dataclass
class Trend:
    months: list[date]
    contacts: list[int]
    visits: list[int]
    collected: list[int]
    closed_by_level: list[list[int]]
    #: Months counted from the cache (the rest live).
    cached: int = 0

    @property
    def closed(self) -> list[int]:
        return [sum(x) for x in self.closed_by_level]

    def within_pct(self, level: int) -> list[int | None]:
        return [round(100 * sum(x[:level + 1]) / sum(x)) if sum(x) else None
                for x in self.closed_by_level]


@dataclass
class Dashboard:
    region: Region
    total: Figures
    rows: list[tuple[Region, Figures]]
    trend: Trend
    #: Closed months counted into the cache by this call (the caller commits them).
    filled: int = 0


def _bucket(column, bounds: list[datetime] | list[date]):
    """SQL: the index i with bounds[i] <= column < bounds[i + 1], or -1."""
    whens = [(column < b, literal_column(str(i - 1))) for i, b in enumerate(bounds)]
    return case(*whens, else_=literal_column("-1"))


def _row(kind, path, *ns):
    cols = list(ns) + [literal_column("0")] * (6 - len(ns))
    return select(literal_column(f"'{kind}'").label("kind"), path.label("path"),
                  *(c.label(f"n{i}") for i, c in enumerate(cols)))


def _period_logs(prefix: str, in_period):
    """A select of (path, contacts, visits) per 邻 under ``prefix`` in the period: one index-only
    probe of (neighborhood_id, occurred_at) INCLUDE (method) per 邻 (a LATERAL subquery on
    PostgreSQL; two correlated counts elsewhere)."""
    counted = (DutyLog.neighborhood_id == Region.id, DutyLog.voided_at.is_(None),
               in_period(DutyLog.occurred_at))
    hood = (path_range(Region.path, prefix), Region.level == "neighborhood")
    if db.session.get_bind().dialect.name == "postgresql":
        lg = (select(func.count().label("c"),
                     func.coalesce(func.sum(case((DutyLog.method == "visit", 1), else_=0)), 0)
                     .label("v")).where(*counted).lateral("lg"))
        return _row("log", Region.path, lg.c.c, lg.c.v).select_from(Region) \
            .join(lg, true()).where(*hood)

    def count(*extra):
        return (select(func.count()).select_from(DutyLog).where(*counted, *extra)
                .correlate(Region).scalar_subquery())

    return _row("log", Region.path, count(), count(DutyLog.method == "visit")).where(*hood)


def _posts(prefix: str):
    """A select of (path, 片长, 组长, 邻长, 志愿者 in post) per node under ``prefix`` (a LATERAL
    probe of (region_id, role) per node on PostgreSQL, where a join read every post of the
    county)."""
    in_post = (Post.ended_at.is_(None), Post.role.in_(CHIEF_ROLES))
    per_role = [func.coalesce(func.sum(case((Post.role == r, 1), else_=0)), 0)
                for r in CHIEF_ROLES]
    if db.session.get_bind().dialect.name == "postgresql":
        pl = (select(*(c.label(f"r{i}") for i, c in enumerate(per_role)))
              .where(Post.region_id == Region.id, *in_post).lateral("pl"))
        return _row("post", Region.path, *(pl.c[f"r{i}"] for i in range(len(CHIEF_ROLES)))) \
            .select_from(Region).join(pl, true()).where(path_range(Region.path, prefix))
    return _row("post", Region.path, *per_role) \
        .select_from(Post).join(Region, Post.region_id == Region.id) \
        .where(path_range(Region.path, prefix), *in_post).group_by(Region.path)


def build(region: Region, children: list[Region], start: datetime, end: datetime,
          window: list[date], now: datetime) -> Dashboard:
    """The figures of ``region`` for [start, end) with a row per child, and the trend over the
    months ``window`` (first days of local months, oldest first). Two statements (three with
    the town's contact rules), plus a fill of each closed month of the window not cached yet."""
    prefix = region.path
    in_period = lambda col: and_(col >= start, col < end)  # noqa: E731
    windows = rule_windows(region.town_id, now)
    month_bounds = [local_midnight_utc(m) for m in window] + [
        local_midnight_utc(add_months(window[-1], 1))]
    one = lambda cond: func.coalesce(func.sum(case((cond, 1), else_=0)), 0)  # noqa: E731
    town_path = f"/{region.town_id}/"

    # the scope's requests that any figure needs, read once (a CTE used by three branches)
    lo = min(start, month_bounds[0])
    overdue_now = and_(Request.status != "closed", or_(*(missed_sql(k, now)
                                                         for k in range(TOP + 1))))
    rq = (select(Request.path, Request.created_at, Request.closed_at, Request.status,
                 Request.closed_level, case((overdue_now, 1), else_=0).label("overdue"))
          .where(path_range(Request.path, prefix),
                 or_(Request.created_at >= lo, Request.closed_at >= lo,
                     Request.status != "closed"))
          .cte("rq"))
    closed = and_(rq.c.status == "closed", in_period(rq.c.closed_at))
    created_b = _bucket(rq.c.created_at, month_bounds)
    closed_b = _bucket(rq.c.closed_at, month_bounds)

    # one statement: every count of the period per child (summed in SQL from per-node rows),
    # the requests per month, and the cache's marks
    has_chief = select(Post.id).where(Post.region_id == Region.id, Post.role == "neighbor_chief",
                                      Post.ended_at.is_(None)).exists()
    per_node = union_all(
        _row("hh", Region.path, func.count(), one(overdue_sql(windows)),
             case((has_chief, func.count()), else_=0))
        .select_from(Household).join(Region, Household.neighborhood_id == Region.id)
        .where(path_range(Region.path, prefix)).group_by(Region.path, Region.id),
        _period_logs(prefix, in_period),
        _posts(prefix),
        _row("req", rq.c.path, one(in_period(rq.c.created_at)),
             *(one(and_(closed, rq.c.closed_level == k)) for k in range(TOP + 1)),
             func.coalesce(func.sum(rq.c.overdue), 0))
        .select_from(rq)
        .where(or_(in_period(rq.c.created_at), closed, rq.c.status != "closed"))
        .group_by(rq.c.path),
        _row("med", Request.path, func.count())
        .select_from(Mediation).join(Request, Mediation.request_id == Request.id)
        .where(path_range(Request.path, prefix), in_period(Mediation.held_at))
        .group_by(Request.path),
    ).subquery("u")
    sums = [cast(func.sum(per_node.c[f"n{i}"]), Integer) for i in range(6)]
    depth = len(region.ancestor_ids)
    if db.session.get_bind().dialect.name == "postgresql":
        # the child's id is the path's next component ("/town/village/…/")
        child_id = cast(func.nullif(func.split_part(per_node.c.path, "/", depth + 2), ""),
                        Integer)
        by_child = select(per_node.c.kind, func.coalesce(child_id, 0).label("child"), *sums) \
            .select_from(per_node).group_by(per_node.c.kind, child_id)
    else:
        child = aliased(Region)
        child_end = func.substr(child.path, 1, func.length(child.path) - 1).concat("0")
        by_child = select(per_node.c.kind, func.coalesce(child.id, 0).label("child"), *sums) \
            .select_from(per_node) \
            .outerjoin(child, and_(child.parent_id == region.id, per_node.c.path >= child.path,
                                   per_node.c.path < child_end)) \
            .group_by(per_node.c.kind, child.id)
    parts = [
        by_child,
        _row("rc", literal_column("0"), created_b, func.count())
        .select_from(rq)
        .where(rq.c.created_at >= month_bounds[0], rq.c.created_at < month_bounds[-1])
        .group_by(created_b),
        _row("rx", literal_column("0"), closed_b, rq.c.closed_level, func.count())
        .select_from(rq)
        .where(rq.c.status == "closed", rq.c.closed_at >= month_bounds[0],
               rq.c.closed_at < month_bounds[-1])
        .group_by(closed_b, rq.c.closed_level),
        _row("mark", literal_column("0"),
             _bucket(DutyMonthMark.month, window + [add_months(window[-1], 1)]),
             DutyMonthMark.version, func.coalesce(DutyMonthMark.filled_version, -1))
        .where(DutyMonthMark.town_id == region.town_id,
               DutyMonthMark.month >= window[0], DutyMonthMark.month <= window[-1]),
    ]
    total = Figures()
    per_child = {c.id: Figures() for c in children}
    n = len(window)
    trend = Trend(window, [0] * n, [0] * n, [0] * n, [[0] * (TOP + 1) for _ in range(n)])
    marks: dict[int, tuple[int, int]] = {}
    for kind, child_id, n0, n1, n2, n3, n4, n5 in db.session.execute(union_all(*parts)).all():
        if kind == "mark":
            marks[n0] = (n1, n2)
        elif kind == "rc":
            if 0 <= n0 < n:
                trend.collected[n0] += n1
        elif kind == "rx":
            if 0 <= n0 < n:
                trend.closed_by_level[n0][n1] += n2
        else:
            fig_child = per_child.get(child_id)
            for fig in (total,) if fig_child is None else (total, fig_child):
                if kind == "hh":
                    fig.households += n0
                    fig.overdue_households += n1
                    fig.covered += n2
                elif kind == "log":
                    fig.contacts += n0
                    fig.visits += n1
                elif kind == "post":
                    for role, v in zip(CHIEF_ROLES, (n0, n1, n2, n3), strict=True):
                        fig.chiefs[role] += v
                elif kind == "req":
                    fig.collected += n0
                    for k, v in enumerate((n1, n2, n3, n4)):
                        fig.closed_at[k] += v
                    fig.overdue_requests += n5
                elif kind == "med":
                    fig.disputes += n0

    # the closed months of the window not cached yet: count them once
    trusted, filled_now = set(), 0
    for i, month in enumerate(window):
        if not cacheable(month, now):
            continue
        version, filled = marks.get(i, (None, -1))
        if version is not None and filled == version:
            trusted.add(i)
        elif fill_month(region.town_id, town_path, month, version, now):
            trusted.add(i)
            filled_now += 1
    trend.cached = len(trusted)
    live = [i for i in range(n) if i not in trusted]
    # the period itself when it is one live month: counted above already
    same = [i for i in live if (month_bounds[i], month_bounds[i + 1]) == (start, end)]
    to_count = [i for i in live if i not in same]
    for i in same:
        trend.contacts[i], trend.visits[i] = total.contacts, total.visits

    # one statement (none when the window is all cached but the period's month): the contacts
    # per month of the window, from the cache and, for the months not cached, from the logs
    tparts = []
    months_b = _bucket(DutyMonth.month, window + [add_months(window[-1], 1)])
    if trusted:
        cached = [window[i] for i in sorted(trusted)]
        q = _row("dm", literal_column("''"), months_b, func.sum(DutyMonth.contacts),
                 func.sum(DutyMonth.visits))
        if region.level == "town":
            q = q.where(DutyMonth.town_id == region.town_id)
        else:
            q = q.join(Region, DutyMonth.neighborhood_id == Region.id).where(
                DutyMonth.town_id == region.town_id, path_range(Region.path, prefix))
        tparts.append(q.where(DutyMonth.month.in_(cached)).group_by(DutyMonth.month))
    if to_count:
        lo, hi = month_bounds[to_count[0]], month_bounds[to_count[-1] + 1]
        bucket = _bucket(DutyLog.occurred_at, month_bounds)
        tparts.append(
            _row("lv", literal_column("''"), bucket, func.count(),
                 func.coalesce(func.sum(case((DutyLog.method == "visit", 1), else_=0)), 0))
            .select_from(DutyLog).join(Region, DutyLog.neighborhood_id == Region.id)
            .where(path_range(Region.path, prefix), Region.level == "neighborhood",
                   DutyLog.voided_at.is_(None), DutyLog.occurred_at >= lo,
                   DutyLog.occurred_at < hi)
            .group_by(bucket))
    if tparts:
        for kind, _path, n0, n1, n2, *_ in db.session.execute(union_all(*tparts)):
            if 0 <= n0 < n and (kind == "dm" and n0 in trusted or kind == "lv" and n0 in to_count):
                trend.contacts[n0] += n1
                trend.visits[n0] += n2
    rows = [(c, per_child[c.id]) for c in children]
    return Dashboard(region, total, rows, trend, filled_now)


def window_for(last: date, now: datetime) -> list[date]:
    """The :data:`MONTHS` months ending with the month of ``last`` (not after this month)."""
    end = min(last.replace(day=1), local_today(now).replace(day=1))
    return [add_months(end, k - MONTHS + 1) for k in range(MONTHS)]
