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

The monthly cache: :class:`DutyMonth` rows hold the non-voided logs per 邻 and local month that
occurred before the town's :class:`DutyMonthMark` ``filled_until``: the month's end once it
closed, or, for the running month, its last local midnight (so that a view counts only today's
logs live). The rows are trusted while the mark's ``filled_version == version``. A fill counts
up to :func:`cached_until`: a month's end, or a midnight, that passed more than :data:`GRACE`
ago (no transaction that began before it is still open); the trend takes a month from the cache
only once it closed and was filled whole, the period's figures of one month take its rows plus
the logs from ``filled_until`` on. :func:`logs_changed` (called by duties.services.log_duty and
void_log in their transaction, one statement, none for a log of today) bumps the version of the
month of a log whose local day has ended. So a cached figure is stale only if a duty log of a
past day is inserted, voided, deleted or moved to another 邻 by something other than those two
functions (bulk loads, hand-made SQL): run ``flask ledgers refresh-figures`` after such a change.
A fill reads the version before it counts and marks the month filled only if the version is still
the one it read, so a log back-dated while the count runs leaves the month unfilled (the page
that read it counts live meanwhile). The running month is filled again on the first view after
each midnight (+ GRACE) and after each back-dated log or void: one count of the town's month so
far, as the live count it replaces.

Cost (PostgreSQL, county scale, a town of 1,750 nodes): the figures are one statement over one
scan of the town's regions with LATERAL probes per node (households with their contact rules,
today's logs, posts in post), this month's cached rows (one index-only scan), the town's
requests read once from a covering index (per node, and per month with width_bucket), and the
marks with the cached months' sums; a second statement runs only when a month was just filled
or is counted live."""

from __future__ import annotations

import calendar
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
    """Whether the whole of ``month`` may be cached (it ended more than :data:`GRACE` ago)."""
    return local_midnight_utc(add_months(month, 1)) + GRACE <= now


def cached_until(month: date, now: datetime) -> datetime:
    """The instant up to which ``month``'s logs may be cached: its end once it closed, else the
    latest local midnight of it that passed more than :data:`GRACE` ago (the month's start when
    none did: nothing to cache)."""
    day = local_today(now - GRACE)
    return max(local_midnight_utc(month), min(local_midnight_utc(day),
                                              local_midnight_utc(add_months(month, 1))))


# -- the monthly cache -------------------------------------------------------------------------
def _upsert(model):
    name = db.session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model)


def logs_changed(town_id: int, occurred_at: datetime, now: datetime | None = None) -> None:
    """A duty log of the town at ``occurred_at`` was added or voided: if its local day has
    ended, the month's cached counts of the town are no longer trusted (one statement; none
    for a log of today)."""
    now = now or utcnow()
    if occurred_at >= local_midnight_utc(local_today(now)):
        return
    table = DutyMonthMark.__table__
    db.session.execute(
        _upsert(DutyMonthMark).values(town_id=town_id, month=month_of(occurred_at), version=1)
        .on_conflict_do_update(index_elements=["town_id", "month"],
                               set_={"version": table.c.version + 1}))


def fill_month(town_id: int, town_path: str, month: date, seen_version: int | None,
               now: datetime) -> bool:
    """Count the town's non-voided logs of ``month`` before :func:`cached_until` per 邻 into
    :class:`DutyMonth` and mark the month filled at ``seen_version`` (the mark's version read
    before this call; None: no mark yet). In a savepoint: returns False (and changes nothing)
    when another fill got there first or a log changed meanwhile."""
    start, until = local_midnight_utc(month), cached_until(month, now)
    if until <= start:
        return False
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
                       DutyLog.occurred_at >= start, DutyLog.occurred_at < until)
                .group_by(DutyLog.neighborhood_id)))
            done = db.session.execute(
                update(DutyMonthMark).where(DutyMonthMark.town_id == town_id,
                                            DutyMonthMark.month == month,
                                            DutyMonthMark.version == seen_version)
                .values(filled_version=seen_version, filled_at=now,
                        filled_until=until)).rowcount == 1
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


#: Numbers in a row of the figures' statement.
WIDTH = 9


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _bucket(column, bounds: list[datetime] | list[date]):
    """SQL: the index i with bounds[i] <= column < bounds[i + 1]; -1 (or len(bounds) - 1 on
    PostgreSQL) outside (width_bucket's binary search there, a chain of CASEs elsewhere)."""
    if _postgres():
        from sqlalchemy.dialects.postgresql import array

        return func.width_bucket(column, array(bounds)) - 1
    whens = [(column < b, literal_column(str(i - 1))) for i, b in enumerate(bounds)]
    return case(*whens, else_=literal_column("-1"))


def _epoch(column):
    """SQL: a stored (naive UTC) instant in whole seconds since 1970."""
    if _postgres():
        return cast(func.extract("epoch", column), Integer)
    return cast(func.strftime("%s", column), Integer)


def _seconds(at: datetime) -> int:
    return calendar.timegm(at.timetuple())


def _row(kind, path, *ns):
    cols = list(ns) + [literal_column("0")] * (WIDTH - len(ns))
    return select(literal_column(f"'{kind}'").label("kind"), path.label("path"),
                  *(c.label(f"n{i}") for i, c in enumerate(cols)))


def _nodes(region: Region, windows, start: datetime, end: datetime, month: date | None):
    """Selects of rows (kind 'node') per node under ``region``: (path, households, overdue
    households, covered households, contacts, 上门, 片长, 组长, 邻长, 志愿者 in post), summed per
    child by the caller.

    The period's logs: when the period is one ``month`` whose cache is trusted, its cached
    counts (:class:`DutyMonth` rows, logs before the mark's ``filled_until``, as rows of their
    own) plus the logs from then on (today's, for the running month), else every log of the
    period, by one index-only probe of (neighborhood_id, occurred_at) INCLUDE (method) per 邻.
    On PostgreSQL the node's households, logs and posts are LATERAL subqueries of one scan of
    the regions; elsewhere correlated subqueries."""
    one = lambda cond: func.coalesce(func.sum(case((cond, 1), else_=0)), 0)  # noqa: E731
    # only a 邻 has households and logs (on PostgreSQL a gate: other nodes skip the probe)
    hood = Region.level == "neighborhood"
    cut, dm = start, None
    if month is not None:
        until = (select(DutyMonthMark.filled_until)
                 .where(DutyMonthMark.town_id == region.town_id, DutyMonthMark.month == month,
                        DutyMonthMark.filled_version == DutyMonthMark.version)
                 .scalar_subquery())
        cut = func.coalesce(until, start)
        # rows of their own (one index-only scan of the town's month, joined to the regions):
        # a probe of the primary key per node cost three times as much
        zero = literal_column("0")
        dm = select(literal_column("'node'").label("kind"), Region.path.label("path"),
                    *(x.label(f"n{i}") for i, x in enumerate(
                        [zero, zero, zero, DutyMonth.contacts, DutyMonth.visits,
                         *([zero] * len(CHIEF_ROLES))]))) \
            .select_from(DutyMonth).join(Region, DutyMonth.neighborhood_id == Region.id) \
            .where(DutyMonth.town_id == region.town_id, DutyMonth.month == month,
                   until.is_not(None), path_range(Region.path, region.path))
    logged = (hood, DutyLog.neighborhood_id == Region.id, DutyLog.voided_at.is_(None),
              DutyLog.occurred_at >= cut, DutyLog.occurred_at < end)
    in_post = (Post.region_id == Region.id, Post.ended_at.is_(None), Post.role.in_(CHIEF_ROLES))
    households = (select(func.count().label("n"), one(overdue_sql(windows)).label("o"))
                  .where(hood, Household.neighborhood_id == Region.id))
    logs = select(func.count().label("c"), one(DutyLog.method == "visit").label("v")).where(*logged)
    posts = select(*(one(Post.role == r).label(f"r{i}") for i, r in enumerate(CHIEF_ROLES))) \
        .where(*in_post)
    if _postgres():
        hh, lg, pl = households.lateral("hh"), logs.lateral("lg"), posts.lateral("pl")
        n, o, c, v = hh.c.n, hh.c.o, lg.c.c, lg.c.v
        roles = [pl.c[f"r{i}"] for i in range(len(CHIEF_ROLES))]
        q = select(Region.path).select_from(Region).join(hh, true()).join(lg, true()) \
            .join(pl, true())
    else:
        def scalar(sel, col):
            return sel.with_only_columns(col).correlate(Region).scalar_subquery()

        n = scalar(households, func.count())
        o = scalar(households, one(overdue_sql(windows)))
        c = scalar(logs, func.count())
        v = scalar(logs, one(DutyLog.method == "visit"))
        roles = [scalar(posts, one(Post.role == r)) for r in CHIEF_ROLES]
        q = select(Region.path).select_from(Region)
    covered = case((roles[CHIEF_ROLES.index("neighbor_chief")] > 0, n), else_=0)
    return ([] if dm is None else [dm]) + [q.with_only_columns(
        literal_column("'node'").label("kind"), Region.path.label("path"),
        *(x.label(f"n{i}") for i, x in enumerate([n, o, covered, c, v, *roles]))) \
        .where(path_range(Region.path, region.path))]


def build(region: Region, children: list[Region], start: datetime, end: datetime,
          window: list[date], now: datetime) -> Dashboard:
    """The figures of ``region`` for [start, end) with a row per child, and the trend over the
    months ``window`` (first days of local months, oldest first). Two statements (three with
    the town's contact rules), plus a fill of each month of the window whose cache is not
    trusted or, for the running month, not up to its last closed day."""
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
    one_month = next((m for m, lo_, hi_ in zip(window, month_bounds, month_bounds[1:],
                                               strict=False) if (lo_, hi_) == (start, end)), None)
    per_node = union_all(
        *_nodes(region, windows, start, end, one_month),
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
    sums = [cast(func.sum(per_node.c[f"n{i}"]), Integer) for i in range(WIDTH)]
    depth = len(region.ancestor_ids)
    if _postgres():
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
    in_window = lambda col: and_(col >= month_bounds[0], col < month_bounds[-1])  # noqa: E731
    closed_b = case((rq.c.status == "closed", closed_b), else_=literal_column("-1"))
    until = {i: cached_until(m, now) for i, m in enumerate(window)}
    mark_rows = and_(DutyMonthMark.town_id == region.town_id,
                     DutyMonthMark.month >= window[0], DutyMonthMark.month <= window[-1])
    months_b = _bucket(DutyMonthMark.month, window + [add_months(window[-1], 1)])
    dm = (_row("dm", literal_column("0"), months_b, func.sum(DutyMonth.contacts),
               func.sum(DutyMonth.visits))
          .select_from(DutyMonth)
          .join(DutyMonthMark, and_(DutyMonthMark.town_id == DutyMonth.town_id,
                                    DutyMonthMark.month == DutyMonth.month))
          .where(DutyMonth.town_id == region.town_id, mark_rows,
                 DutyMonthMark.filled_version == DutyMonthMark.version,
                 DutyMonth.month.in_([m for m in window if cacheable(m, now)] or [window[0]]))
          .group_by(months_b))
    if region.level != "town":
        dm = dm.join(Region, DutyMonth.neighborhood_id == Region.id) \
            .where(path_range(Region.path, prefix))
    parts = [
        by_child,
        # requests per month created (n0) and closed (n1) at each level (n2), in one pass
        _row("rm", literal_column("0"), created_b, closed_b, rq.c.closed_level, func.count())
        .select_from(rq)
        .where(or_(in_window(rq.c.created_at),
                   and_(rq.c.status == "closed", in_window(rq.c.closed_at))))
        .group_by(created_b, closed_b, rq.c.closed_level),
        # a month's cache is trusted when n1 = n2, up to the instant n3 (seconds)
        _row("mark", literal_column("0"), months_b, DutyMonthMark.version,
             func.coalesce(DutyMonthMark.filled_version, -1),
             func.coalesce(_epoch(DutyMonthMark.filled_until), -1)).where(mark_rows),
        # the cached months' contacts, when their marks say they can be trusted (and read
        # below only for the months that were complete)
        dm,
    ]
    total = Figures()
    per_child = {c.id: Figures() for c in children}
    n = len(window)
    trend = Trend(window, [0] * n, [0] * n, [0] * n, [[0] * (TOP + 1) for _ in range(n)])
    marks: dict[int, tuple[int, int, int]] = {}
    cached: dict[int, tuple[int, int]] = {}
    for kind, child_id, n0, n1, n2, n3, n4, n5, n6, n7, n8 in \
            db.session.execute(union_all(*parts)).all():
        if kind == "mark":
            marks[n0] = (n1, n2, n3)
        elif kind == "dm":
            cached[n0] = (n1, n2)
        elif kind == "rm":
            if 0 <= n0 < n:
                trend.collected[n0] += n3
            if 0 <= n1 < n:
                trend.closed_by_level[n1][n2] += n3
        else:
            fig_child = per_child.get(child_id)
            for fig in (total,) if fig_child is None else (total, fig_child):
                if kind == "node":
                    fig.households += n0
                    fig.overdue_households += n1
                    fig.covered += n2
                    fig.contacts += n3
                    fig.visits += n4
                    for role, v in zip(CHIEF_ROLES, (n5, n6, n7, n8), strict=True):
                        fig.chiefs[role] += v
                elif kind == "req":
                    fig.collected += n0
                    for k, v in enumerate((n1, n2, n3, n4)):
                        fig.closed_at[k] += v
                    fig.overdue_requests += n5
                elif kind == "med":
                    fig.disputes += n0

    # the months of the window not cached (up to cached_until) yet: count them once; the
    # running month's cache serves the period's figures (above) from the next view on
    read, fresh, filled_now = set(), set(), 0
    for i, month in enumerate(window):
        whole = cacheable(month, now)
        if until[i] <= month_bounds[i]:
            continue
        version, filled, filled_until = marks.get(i, (None, -1, -1))
        if version is not None and filled == version and filled_until >= _seconds(until[i]):
            if whole:
                read.add(i)   # its contacts came with the statement above
        elif fill_month(region.town_id, town_path, month, version, now):
            filled_now += 1
            if whole:
                fresh.add(i)
    for i in read:
        trend.contacts[i], trend.visits[i] = cached.get(i, (0, 0))
    trend.cached = len(read | fresh)
    live = [i for i in range(n) if i not in read | fresh]
    # the period itself when it is one live month: counted above already
    same = [i for i in live if (month_bounds[i], month_bounds[i + 1]) == (start, end)]
    to_count = [i for i in live if i not in same]
    for i in same:
        trend.contacts[i], trend.visits[i] = total.contacts, total.visits

    # one more statement only when the cache was just filled or a month is counted live (not
    # the period's): the contacts per month from the new cache rows and from the logs
    tparts = []
    if fresh:
        months_b = _bucket(DutyMonth.month, window + [add_months(window[-1], 1)])
        q = _row("dm", literal_column("''"), months_b, func.sum(DutyMonth.contacts),
                 func.sum(DutyMonth.visits))
        if region.level == "town":
            q = q.where(DutyMonth.town_id == region.town_id)
        else:
            q = q.join(Region, DutyMonth.neighborhood_id == Region.id).where(
                DutyMonth.town_id == region.town_id, path_range(Region.path, prefix))
        tparts.append(q.where(DutyMonth.month.in_([window[i] for i in sorted(fresh)]))
                      .group_by(DutyMonth.month))
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
            if 0 <= n0 < n and (kind == "dm" and n0 in fresh or kind == "lv" and n0 in to_count):
                trend.contacts[n0] += n1
                trend.visits[n0] += n2
    rows = [(c, per_child[c.id]) for c in children]
    return Dashboard(region, total, rows, trend, filled_now)


def window_for(last: date, now: datetime) -> list[date]:
    """The :data:`MONTHS` months ending with the month of ``last`` (not after this month)."""
    end = min(last.replace(day=1), local_today(now).replace(day=1))
    return [add_months(end, k - MONTHS + 1) for k in range(MONTHS)]
