"""The rules of 民情诉求 at the service level, on a controlled clock (no sleeping): deadlines and
escalation 邻 → 组 → 村 → 镇 in Python and in SQL, tick, every change and its refusals, scope,
the overdue lists and the figures.

Conventions: ``ok(change, …)`` runs a service change and commits, as a view does on success;
``refused(change, …)`` expects a ServiceError and rolls back, as a view does on refusal.
"""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from portal.audit import AuditEntry
from portal.blueprints.regions.models import Post
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.models import (
    Department,
    Mediation,
    Request,
    RequestCategory,
    RequestEvent,
)
from portal.errors import ServiceError
from portal.extensions import db
from tests.requests.conftest import HOUR, NOW

SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)
#: The default response hours per level and their chain from a request made at NOW at 邻.
DEFAULT_CHAIN = (NOW + 4 * HOUR, NOW + 28 * HOUR, NOW + 76 * HOUR, NOW + 148 * HOUR)


# -- helpers --------------------------------------------------------------------------------------
def ok(change, *args, **kwargs):
    """Run a change and commit it, as a view does when the service accepts."""
    result = change(*args, **kwargs)
    db.session.commit()
    return result


def refused(change, *args, match: str | None = None, field: str | None | bool = False,
            **kwargs) -> ServiceError:
    """The change is refused with a ServiceError (message containing ``match``, on ``field``);
    the transaction is rolled back, as the view does."""
    with pytest.raises(ServiceError) as info:
        change(*args, **kwargs)
    db.session.rollback()
    if match is not None:
        assert match in info.value.message, info.value.message
    if field is not False:
        assert info.value.field == field, (info.value.field, info.value.message)
    return info.value


def fresh(req) -> Request:
    """The request as stored (nothing from this session's memory)."""
    rid = req if isinstance(req, int) else req.id
    db.session.expire_all()
    return db.session.get(Request, rid)


def events(req) -> list[tuple]:
    rid = req if isinstance(req, int) else req.id
    return [(e.kind, e.at, e.from_level, e.to_level) for e in db.session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == rid)
        .order_by(RequestEvent.at, RequestEvent.id))]


def kinds(req) -> list[str]:
    return [e[0] for e in events(req)]


def audits(req, action: str) -> int:
    rid = req if isinstance(req, int) else req.id
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == action, AuditEntry.object_type == "request",
        AuditEntry.object_id == rid))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def sql_state(ids, now: datetime) -> dict[int, tuple]:
    """(level, deadline, missed levels) of each request as the SQL mirrors compute them."""
    rows = db.session.execute(select(
        Request.id, svc.effective_level_sql(now), svc.effective_deadline_sql(now),
        *(svc.missed_sql(k, now) for k in range(4))).where(Request.id.in_(list(ids))))
    return {r[0]: (r[1], r[2], frozenset(k for k in range(4) if r[3 + k])) for r in rows}


def py_state(req, now: datetime) -> tuple:
    eff = svc.effective(req, now)
    return (eff.level, eff.deadline, eff.missed)


def expected_level(dues, start: int, now: datetime) -> tuple[int, datetime]:
    """Independent statement of the rule: the first level from ``start`` whose deadline has not
    passed (deadlines are exclusive), 镇 if none."""
    for k in range(start, 4):
        if now < dues[k]:
            return k, dues[k]
    return 3, dues[3]


@pytest.fixture
def new(make_request, load_household):
    """new(household, at=…, category=…) → a request submitted by the resident at ``at``."""
    def make(household, at=NOW, **kwargs):
        return make_request(load_household(household.id), at=at, **kwargs)

    return make


@pytest.fixture
def sc(scope_of):
    """sc(user) → the user's scope (shorter to read in the tables below)."""
    return scope_of


def end_post(user, role):
    post = db.session.scalar(select(Post).where(Post.user_id == user.id, Post.role == role))
    post.ended_at = NOW - DAY
    db.session.commit()


# -- deadlines: Python and SQL agree --------------------------------------------------------------
@pytest.fixture
def states(world, new, sc):
    """One request in each kind of stored state, all last written at or before NOW."""
    w = world
    s = {}
    s["new0"] = new(w.hh1)  # new at 邻, chain from NOW
    s["new1"] = new(w.hh1b)  # hood1b has no 邻长: starts at 组
    s["new3"] = new(w.hh2b)  # village 2: nobody above its 邻长 → starts at 镇
    r = new(w.hh1x, at=NOW - 3 * HOUR)
    ok(svc.escalate, w.neighbor_chief, sc(w.neighbor_chief), r, NOW - 2 * HOUR, "邻里解决不了")
    ok(svc.escalate, w.group_chief, sc(w.group_chief), r, NOW - HOUR, "组里也解决不了")
    s["new2"] = r  # escalated to 村 at NOW-1h
    r = new(w.hh1, at=NOW - 2 * HOUR)
    ok(svc.acknowledge, w.neighbor_chief, sc(w.neighbor_chief), r, NOW - HOUR)
    s["working"] = r
    r = new(w.hh1x, at=NOW - 2 * HOUR)
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW - HOUR, "灯已经换好了。")
    s["closed"] = r
    r = new(w.hh2, at=NOW - 30 * HOUR)
    ok(svc.close, w.neighbor_chief2, sc(w.neighbor_chief2), r, NOW - 29 * HOUR, "已经处理好了。")
    ok(svc.reopen, r, "还是没有解决", NOW - HOUR)
    s["reopened"] = r  # back at 邻 from NOW-1h
    r = new(w.hh1, at=NOW - 5 * HOUR)
    s["ticked"] = r  # its 邻 deadline passed at NOW-1h; tick records it
    assert svc.tick(NOW) == 1
    db.session.expire_all()
    return s


#: (stored level to count from, deadlines) of each request in ``states``; None: not waiting.
CHAINS = {
    "new0": (0, DEFAULT_CHAIN),
    "new1": (1, (NOW, NOW + 24 * HOUR, NOW + 72 * HOUR, NOW + 144 * HOUR)),
    "new3": (3, (NOW, NOW, NOW, NOW + 72 * HOUR)),
    "new2": (2, (NOW - HOUR, NOW - HOUR, NOW + 47 * HOUR, NOW + 119 * HOUR)),
    # village 2 has nobody at 组 or 村: its chain passes them with no time
    "reopened": (0, (NOW + 3 * HOUR, NOW + 3 * HOUR, NOW + 3 * HOUR, NOW + 75 * HOUR)),
    "ticked": (1, (NOW - HOUR, NOW + 23 * HOUR, NOW + 71 * HOUR, NOW + 143 * HOUR)),
    "working": None,
    "closed": None,
}

INSTANTS = [NOW, NOW + SEC, NOW + 3 * HOUR - SEC, NOW + 3 * HOUR, NOW + 4 * HOUR - MIN,
            NOW + 4 * HOUR - timedelta(microseconds=1), NOW + 4 * HOUR, NOW + 4 * HOUR + SEC,
            NOW + 24 * HOUR, NOW + 28 * HOUR, NOW + 47 * HOUR, NOW + 72 * HOUR,
            NOW + 76 * HOUR - SEC, NOW + 76 * HOUR, NOW + 119 * HOUR, NOW + 147 * HOUR,
            NOW + 148 * HOUR, NOW + 1000 * HOUR]


@pytest.mark.parametrize("now", INSTANTS, ids=lambda t: f"NOW+{t - NOW}")
def test_python_and_sql_agree_on_level_deadline_and_missed(states, world, sc, now):
    ids = {name: r.id for name, r in states.items()}
    sql = sql_state(ids.values(), now)
    for name, rid in ids.items():
        req = db.session.get(Request, rid)
        py = py_state(req, now)
        assert sql[rid] == py, (name, sql[rid], py)
        chain = CHAINS[name]
        if chain is None:
            assert py[:2] == (0, None), name
        else:
            assert py[:2] == expected_level(chain[1], chain[0], now), name
            assert svc.effective(req, now).overdue == (now >= chain[1][3]), name
    # the queues and the badge are built on the SQL mirror: they hold exactly the requests the
    # Python rule puts at each user's level
    w = world
    reqs = [db.session.get(Request, rid) for rid in ids.values()]
    for user in (w.neighbor_chief, w.neighbor_chief2, w.group_chief, w.area_chief,
                 w.village_staff, w.town_staff, w.admin, w.volunteer, w.nobody):
        scope = sc(user)
        expect = {r.id for r in reqs if r.status != "closed" and any(
            r.path.startswith(gr.path) and gr.role in svc.QUEUE_LEVEL
            and svc.effective(r, now).level == svc.QUEUE_LEVEL[gr.role] for gr in scope.grants)}
        q = svc.queue(scope, now)
        got = {r.id for r, _ in q.waiting + q.working}
        assert got == expect, user.name
        waiting = {r.id for r in reqs if r.id in expect and r.status == "new"}
        assert {r.id for r, _ in q.waiting} == waiting, user.name
        assert svc.pending_count(scope, now) == len(waiting), user.name
        # soonest deadline first
        deadlines = [e.deadline for _, e in q.waiting]
        assert deadlines == sorted(deadlines)


def test_four_hour_rule_at_the_edge(world, new, sc):
    w = world
    r = new(w.hh1)
    assert r.level == 0 and r.dues == DEFAULT_CHAIN
    just_before = svc.effective(r, NOW + 3 * HOUR + 59 * MIN)
    assert (just_before.level, just_before.level_name) == (0, "邻")
    assert just_before.time_left(NOW + 3 * HOUR + 59 * MIN) == MIN
    assert just_before.missed == frozenset() and not just_before.overdue
    at = svc.effective(r, NOW + 4 * HOUR)  # the deadline is exclusive
    assert (at.level, at.deadline, at.missed) == (1, NOW + 28 * HOUR, frozenset({0}))
    for t, level in ((NOW + 3 * HOUR + 59 * MIN, 0), (NOW + 4 * HOUR, 1)):
        assert sql_state([r.id], t)[r.id][0] == level
    chief, group = sc(w.neighbor_chief), sc(w.group_chief)
    assert svc.pending_count(chief, NOW + 3 * HOUR + 59 * MIN) == 1
    assert svc.pending_count(group, NOW + 3 * HOUR + 59 * MIN) == 0
    assert svc.pending_count(chief, NOW + 4 * HOUR) == 0
    assert svc.pending_count(group, NOW + 4 * HOUR) == 1
    assert [q.id for q, _ in svc.queue(group, NOW + 4 * HOUR).waiting] == [r.id]
    # reading changed nothing: the row still says 邻 until a change or tick records it
    assert fresh(r).level == 0 and fresh(r).missed == 0


# -- chained escalation ---------------------------------------------------------------------------
def test_chained_escalation_to_town_with_default_hours(world, new):
    r = new(world.hh1)
    assert r.dues == DEFAULT_CHAIN
    steps = [(NOW, 0), (DEFAULT_CHAIN[0] - SEC, 0), (DEFAULT_CHAIN[0], 1),
             (DEFAULT_CHAIN[1] - SEC, 1), (DEFAULT_CHAIN[1], 2), (DEFAULT_CHAIN[2] - SEC, 2),
             (DEFAULT_CHAIN[2], 3), (DEFAULT_CHAIN[3] - SEC, 3)]
    for t, level in steps:
        eff = svc.effective(r, t)
        assert (eff.level, eff.overdue) == (level, False), t
        assert eff.missed == frozenset(range(level))
        assert eff.deadline == DEFAULT_CHAIN[level]
    late = svc.effective(r, DEFAULT_CHAIN[3])
    assert (late.level, late.overdue, late.deadline) == (3, True, DEFAULT_CHAIN[3])
    assert late.missed == frozenset({0, 1, 2, 3})
    assert late.time_left(DEFAULT_CHAIN[3] + HOUR) == -HOUR


def test_chained_escalation_with_edited_hours(world, new):
    w = world
    before = new(w.hh1x)
    row = ok(svc.save_settings, w.town_staff, w.town, [2, 10, 20, 30], 3)
    assert row.hours == (2, 10, 20, 30) and row.reopen_days == 3
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "request_settings.update")) == 1
    r = new(w.hh1)
    chain = (NOW + 2 * HOUR, NOW + 12 * HOUR, NOW + 32 * HOUR, NOW + 62 * HOUR)
    assert r.dues == chain
    assert fresh(before).dues == DEFAULT_CHAIN  # requests already made keep their deadlines
    assert svc.effective(r, NOW + 2 * HOUR).level == 1
    assert svc.effective(r, NOW + 12 * HOUR - SEC).level == 1
    assert svc.effective(r, NOW + 12 * HOUR).level == 2
    assert svc.effective(r, NOW + 32 * HOUR).level == 3
    assert not svc.effective(r, NOW + 62 * HOUR - SEC).overdue
    late = svc.effective(r, NOW + 62 * HOUR)
    assert late.overdue and late.missed == frozenset(range(4))
    # a request starting at 组 chains from the 组 hours
    b = new(w.hh1b)
    assert b.dues == (NOW, NOW + 10 * HOUR, NOW + 30 * HOUR, NOW + 60 * HOUR)
    # saving the same values again writes no audit row
    ok(svc.save_settings, w.town_staff, w.town, [2, 10, 20, 30], 3)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "request_settings.update")) == 1


@pytest.mark.parametrize("hours, days, field", [
    ([0, 24, 48, 72], 7, None), ([4, 24, 48, 721], 7, None), ([4, 24, 48], 7, None),
    ([4, 24, 48, 72], -1, "reopen_days"), ([4, 24, 48, 72], 91, "reopen_days")])
def test_settings_out_of_range_are_refused(world, hours, days, field):
    refused(svc.save_settings, world.town_staff, world.town, hours, days, field=field)
    assert svc.town_settings(world.town.id).hours == (4, 24, 48, 72)
    assert svc.town_settings(world.town.id).reopen_days == 7


# -- a response stops the clock -------------------------------------------------------------------
def test_response_just_before_the_deadline_stops_the_clock(world, new, sc):
    w = world
    r = new(w.hh1)
    t = NOW + 3 * HOUR + 59 * MIN
    ok(svc.acknowledge, w.neighbor_chief, sc(w.neighbor_chief), r, t, "马上来看。")
    r = fresh(r)
    assert (r.status, r.level, r.handler_id, r.missed) == ("working", 0, w.neighbor_chief.id, 0)
    assert events(r)[-1] == ("acknowledged", t, 0, 0)
    assert audits(r, "request.acknowledged") == 1
    for later in (NOW + 4 * HOUR, NOW + 1000 * HOUR):
        eff = svc.effective(r, later)
        assert (eff.level, eff.deadline, eff.overdue, eff.missed) == (0, None, False, frozenset())
        assert sql_state([r.id], later)[r.id] == (0, None, frozenset())
        assert svc.overdue_counts(sc(w.town_staff), later) == [0, 0, 0, 0]
    assert svc.tick(NOW + 1000 * HOUR) == 0
    assert kinds(r) == ["created", "acknowledged"]
    # the 邻长 still works it: progress by closing at any later time
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + 100 * HOUR, "楼道灯已经换好。")
    assert fresh(r).closed_level == 0


def test_response_at_the_deadline_belongs_to_the_next_level(world, new, sc):
    w = world
    r = new(w.hh1)
    at = NOW + 4 * HOUR
    refused(svc.acknowledge, w.neighbor_chief, sc(w.neighbor_chief), r, at,
            match="现在由组级办理")
    r = fresh(r)  # nothing saved: not even the escalation the refused change recorded
    assert (r.status, r.level, r.missed, r.handler_id) == ("new", 0, 0, None)
    assert kinds(r) == ["created"]
    assert audits(r, "request.timeout") == 0 and audits(r, "request.acknowledged") == 0
    # the 组长 can
    ok(svc.acknowledge, w.group_chief, sc(w.group_chief), r, at)
    r = fresh(r)
    assert (r.status, r.level, r.missed, r.handler_id) == ("working", 1, 1, w.group_chief.id)
    assert events(r) == [("created", NOW, None, 0), ("timeout", at, 0, 1),
                         ("acknowledged", at, 1, 1)]
    assert audits(r, "request.timeout") == 1


def test_the_area_chief_answers_at_group_level(world, new, sc):
    w = world
    r = new(w.hh1)
    refused(svc.acknowledge, w.area_chief, sc(w.area_chief), r, NOW + HOUR,
            match="现在由邻级办理")
    ok(svc.acknowledge, w.area_chief, sc(w.area_chief), r, NOW + 5 * HOUR)
    assert fresh(r).handler_id == w.area_chief.id


# -- sync and tick --------------------------------------------------------------------------------
def test_tick_records_each_timeout_once_at_its_deadline(world, new, sc):
    w = world
    a = new(w.hh1)  # from 邻
    b = new(w.hh1x)
    ok(svc.acknowledge, w.neighbor_chief, sc(w.neighbor_chief), b, NOW + HOUR)
    c = new(w.hh2b)  # starts at 镇: due_3 = NOW+72h
    # a stale handler on a waiting request is cleared when it moves up
    db.session.execute(text("UPDATE requests SET handler_id = :u WHERE id = :id"),
                       {"u": w.neighbor_chief.id, "id": a.id})
    db.session.commit()

    assert svc.tick(NOW + 3 * HOUR) == 0
    assert svc.tick(NOW + 5 * HOUR) == 1
    a1 = fresh(a)
    assert (a1.level, a1.missed, a1.handler_id) == (1, 0b1, None)
    assert svc.tick(NOW + 5 * HOUR) == 0

    assert svc.tick(NOW + 150 * HOUR) == 3 + 1  # a: 组, 村, 镇; c: 镇
    assert svc.tick(NOW + 150 * HOUR) == 0
    assert svc.tick(NOW + 1000 * HOUR) == 0
    a1, b1, c1 = fresh(a), fresh(b), fresh(c)
    assert (a1.level, a1.missed, a1.status) == (3, 0b1111, "new")
    assert (c1.level, c1.missed) == (3, 0b1000)
    assert (b1.level, b1.missed, b1.status) == (0, 0, "working")
    assert events(a) == [("created", NOW, None, 0)] + [
        ("timeout", DEFAULT_CHAIN[k], k, min(k + 1, 3)) for k in range(4)]
    assert events(c) == [("created", NOW, None, 3), ("timeout", NOW + 72 * HOUR, 3, 3)]
    assert kinds(b) == ["created", "acknowledged"]
    assert audits(a, "request.timeout") == 4 and audits(c, "request.timeout") == 1
    notes = [e.note for e in db.session.scalars(select(RequestEvent).where(
        RequestEvent.request_id == a.id, RequestEvent.kind == "timeout")
        .order_by(RequestEvent.at))]
    assert notes[0] == "邻级 4 小时内未响应，自动上报到组级。"
    assert notes[3] == "镇级 72 小时内未响应，已逾期。"
    # recorded or not, every read is the same
    assert py_state(a1, NOW + 150 * HOUR) == sql_state([a.id], NOW + 150 * HOUR)[a.id]
    assert svc.effective(a1, NOW + 150 * HOUR).overdue


def test_timeout_notes_give_the_hours_the_request_had(world, new, sc):
    w = world
    r = new(w.hh1)  # under the default hours
    e = new(w.hh1x)
    ok(svc.escalate, w.neighbor_chief, sc(w.neighbor_chief), e, NOW + HOUR, "需要组里协调")
    ok(svc.save_settings, w.town_staff, w.town, [1, 2, 3, 5], 7)  # changed since
    assert svc.tick(NOW + 200 * HOUR) == 4 + 3

    def notes(req):
        return [n for n in db.session.scalars(select(RequestEvent.note).where(
            RequestEvent.request_id == req.id, RequestEvent.kind == "timeout")
            .order_by(RequestEvent.at))]

    assert notes(r) == ["邻级 4 小时内未响应，自动上报到组级。", "组级 24 小时内未响应，自动上报到村级。",
                        "村级 48 小时内未响应，自动上报到镇级。", "镇级 72 小时内未响应，已逾期。"]
    assert notes(e)[0] == "组级 24 小时内未响应，自动上报到村级。"


def test_a_change_records_the_escalations_before_it(world, new, sc):
    w = world
    r = new(w.hh1)
    ok(svc.acknowledge, w.village_staff, sc(w.village_staff), r, NOW + 30 * HOUR)
    assert events(r) == [("created", NOW, None, 0), ("timeout", DEFAULT_CHAIN[0], 0, 1),
                         ("timeout", DEFAULT_CHAIN[1], 1, 2),
                         ("acknowledged", NOW + 30 * HOUR, 2, 2)]
    assert fresh(r).missed == 0b11
    assert svc.tick(NOW + 1000 * HOUR) == 0  # the clock stopped at 村


def test_tick_survives_a_request_changed_meanwhile(app, world, new, monkeypatch):
    """While tick works, someone else saves request ``a`` (a version bump from another
    connection, each time tick loads it): tick neither crashes nor loses the other requests."""
    w = world
    a, b, c = new(w.hh1), new(w.hh1x), new(w.hh2)
    a_id, b_id, c_id = a.id, b.id, c.id
    real_sync = svc.sync
    bumps = []

    def sync_while_someone_saves_a(req, now):
        if req.id == a_id:
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE requests SET version = version + 1 WHERE id = :id"),
                             {"id": a_id})
            bumps.append(a_id)
        return real_sync(req, now)

    monkeypatch.setattr(svc, "sync", sync_while_someone_saves_a)
    written = svc.tick(NOW + 5 * HOUR)
    assert bumps
    # ``a`` is skipped (its next change or tick records it); the others are recorded
    assert written == 2
    assert [fresh(i).level for i in (a_id, b_id, c_id)] == [0, 1, 3]  # village 2: no 组长
    assert kinds(a_id) == ["created"]
    assert kinds(b_id) == kinds(c_id) == ["created", "timeout"]
    monkeypatch.setattr(svc, "sync", real_sync)
    assert svc.tick(NOW + 5 * HOUR) == 1
    assert kinds(a_id) == ["created", "timeout"] and fresh(a_id).level == 1
    assert svc.tick(NOW + 5 * HOUR) == 0


def test_tick_in_batches(world, new):
    w = world
    made = [new(hh, at=NOW + k * SEC) for k, hh in enumerate([w.hh1, w.hh1x, w.hh2, w.hh1, w.hh2])]
    assert svc.tick(NOW + 5 * HOUR, batch=2) == 5
    # village 2 has nobody at 组 or 村: its requests pass straight to 镇
    assert [fresh(r).level for r in made] == [1, 1, 3, 1, 3]
    assert svc.tick(NOW + 5 * HOUR, batch=2) == 0


# -- escalate -------------------------------------------------------------------------------------
def test_escalate(world, new, sc):
    w = world
    r = new(w.hh1)
    chief = sc(w.neighbor_chief)
    refused(svc.escalate, w.neighbor_chief, chief, r, NOW + HOUR, "太难", field="reason")
    refused(svc.escalate, w.neighbor_chief, chief, r, NOW + HOUR, "   ", field="reason")
    refused(svc.escalate, w.neighbor_chief2, sc(w.neighbor_chief2), r, NOW + HOUR, "不归我管的",
            match="现在由邻级办理")
    refused(svc.escalate, w.group_chief, sc(w.group_chief), r, NOW + HOUR, "组长越级上报",
            match="现在由邻级办理")
    ok(svc.escalate, w.neighbor_chief, chief, r, NOW + 3 * HOUR, "需要组里协调")
    r = fresh(r)
    at = NOW + 3 * HOUR  # the next level's chain starts now, not at the old 4-hour mark
    assert (r.level, r.status, r.handler_id, r.missed) == (1, "new", None, 0)
    assert r.dues == (at, at + 24 * HOUR, at + 72 * HOUR, at + 144 * HOUR)
    assert events(r)[-1] == ("escalated", at, 0, 1)
    assert audits(r, "request.escalated") == 1
    assert svc.effective(r, at + 24 * HOUR - SEC).level == 1
    assert svc.effective(r, at + 24 * HOUR).level == 2
    # a request being worked on can be escalated too: it waits again at the next level
    ok(svc.acknowledge, w.group_chief, sc(w.group_chief), r, NOW + 4 * HOUR)
    ok(svc.escalate, w.group_chief, sc(w.group_chief), r, NOW + 5 * HOUR, "需要村里出面")
    r = fresh(r)
    at = NOW + 5 * HOUR
    assert (r.level, r.status, r.handler_id) == (2, "new", None)
    assert r.dues == (at, at, at + 48 * HOUR, at + 120 * HOUR)
    ok(svc.escalate, w.village_staff, sc(w.village_staff), r, NOW + 6 * HOUR, "需要镇里协调")
    refused(svc.escalate, w.town_staff, sc(w.town_staff), r, NOW + 7 * HOUR, "还想再上报",
            match="已经在镇级")
    assert kinds(r) == ["created", "escalated", "acknowledged", "escalated", "escalated"]


def test_escalate_a_closed_request_is_refused(world, new, sc):
    w = world
    r = new(w.hh1)
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR, "已经处理好。")
    error = refused(svc.escalate, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + 2 * HOUR,
                    "再上报一次")
    assert error.message == "这条诉求已经办结。"
    r = fresh(r)
    assert (r.status, r.level, r.closed_level, r.answer) == ("closed", 0, 0, "已经处理好。")
    assert kinds(r) == ["created", "closed"]


# -- route ----------------------------------------------------------------------------------------
def test_route(world, new, sc, make_region):
    w = world
    other_town = make_region("别的镇")
    foreign = db.session.scalar(select(Department.id).where(Department.town_id == other_town.id))
    depts = {d.name: d for d in svc.options(Department, w.town.id)}
    agri = depts["农业综合服务中心"].id
    r = new(w.hh1, category="安全隐患")
    staff = sc(w.village_staff)
    refused(svc.route, w.village_staff, staff, r, NOW + HOUR, agri, match="到村级或镇级后")
    refused(svc.route, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR, agri,
            match="到村级或镇级后")
    at = NOW + 28 * HOUR  # by now it waits at 村
    refused(svc.route, w.village_staff, staff, r, at, foreign, field="department_id")
    refused(svc.route, w.village_staff, staff, r, at, 0, field="department_id")
    refused(svc.route, w.village_staff, staff, r, at, None, field="department_id")
    refused(svc.route, w.group_chief, sc(w.group_chief), r, at, agri, match="现在由村级办理")
    closed_dept = depts["就业服务站"]
    ok(svc.save_option, w.town_staff, w.town, Department, closed_dept, closed_dept.name,
       active=False)
    refused(svc.route, w.village_staff, staff, r, at, closed_dept.id, field="department_id")
    assert kinds(r) == ["created"]
    ok(svc.route, w.village_staff, staff, r, at, agri, "请尽快疏通。")
    r = fresh(r)
    assert (r.status, r.level, r.department_id, r.handler_id) == (
        "working", 2, agri, w.village_staff.id)
    assert events(r)[1:] == [("timeout", DEFAULT_CHAIN[0], 0, 1),
                             ("timeout", DEFAULT_CHAIN[1], 1, 2), ("routed", at, 2, 2)]
    assert audits(r, "request.routed") == 1
    # routing again (to another department) keeps the handler
    ok(svc.route, w.town_staff, sc(w.town_staff), r, at + HOUR, depts["综治中心"].id)
    r = fresh(r)
    assert (r.department_id, r.handler_id) == (depts["综治中心"].id, w.village_staff.id)


def test_route_at_town_level(world, new, sc):
    w = world
    r = new(w.hh2b)  # starts at 镇
    dept = svc.options(Department, w.town.id)[0]
    refused(svc.route, w.village_staff, sc(w.village_staff), r, NOW, dept.id,
            match="现在由镇级办理")
    ok(svc.route, w.town_staff, sc(w.town_staff), r, NOW + HOUR, dept.id)
    assert fresh(r).status == "working"


# -- 接单 -----------------------------------------------------------------------------------------
def test_offer_claim_progress_done_close(world, new, sc):
    w = world
    r = new(w.hh1)
    vol = sc(w.volunteer)
    refused(svc.claim, w.volunteer, vol, r, NOW + HOUR, match="没有发布接单")
    ok(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR, "需要帮忙搬东西")
    r = fresh(r)
    assert (r.open_to_helpers, r.status, r.handler_id) == (True, "working", w.neighbor_chief.id)
    refused(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR,
            match="已经在接单栏")
    assert [q.id for q in svc.board(vol, w.volunteer.id, NOW + HOUR)[0]] == [r.id]
    # outside the subtree, or not a helper at all
    refused(svc.claim, w.neighbor_chief2, sc(w.neighbor_chief2), r, NOW + 2 * HOUR,
            match="不在您服务的范围内")
    refused(svc.claim, w.nobody, sc(w.nobody), r, NOW + 2 * HOUR, match="不在您服务的范围内")
    ok(svc.claim, w.volunteer, vol, r, NOW + 2 * HOUR)
    r = fresh(r)
    assert (r.helper_id, r.claimed_at, r.status) == (w.volunteer.id, NOW + 2 * HOUR, "working")
    assert audits(r, "request.claimed") == 1
    refused(svc.claim, w.volunteer, vol, r, NOW + 3 * HOUR, match="您已经接了这一单")
    refused(svc.claim, w.area_chief, sc(w.area_chief), r, NOW + 3 * HOUR, match="已经有人接单了")
    assert svc.board(vol, w.volunteer.id, NOW + 3 * HOUR)[0] == []
    assert [q.id for q in svc.board(vol, w.volunteer.id, NOW + 3 * HOUR)[1]] == [r.id]
    # only the helper reports
    refused(svc.helper_progress, w.area_chief, r, NOW + 3 * HOUR, "我来看看", match="只有接单人")
    refused(svc.helper_done, w.neighbor_chief, r, NOW + 3 * HOUR, "已经办完了", match="只有接单人")
    refused(svc.release, w.area_chief, r, NOW + 3 * HOUR, match="只有接单人")
    refused(svc.helper_progress, w.volunteer, r, NOW + 3 * HOUR, "好", field="note")
    ok(svc.helper_progress, w.volunteer, r, NOW + 3 * HOUR, "已联系住户，明天上门。")
    # the handler cannot close while the helper is still working
    refused(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + 4 * HOUR,
            "已经办好了。", match="接单人还没有报告办完")
    refused(svc.helper_done, w.volunteer, r, NOW + 4 * HOUR, "办完", field="note")
    ok(svc.helper_done, w.volunteer, r, NOW + 4 * HOUR, "东西已经搬好了。")
    refused(svc.helper_done, w.volunteer, r, NOW + 5 * HOUR, "又办了一遍。", match="已经报告办完")
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + 5 * HOUR, "志愿者已帮忙搬好。")
    r = fresh(r)
    assert (r.status, r.closed_level, r.closed_by_id, r.helper_done_at) == (
        "closed", 0, w.neighbor_chief.id, NOW + 4 * HOUR)
    assert kinds(r) == ["created", "helpers", "claimed", "progress", "helper_done", "closed"]
    assert svc.board(vol, w.volunteer.id, NOW + 6 * HOUR) == ([], [])
    refused(svc.helper_progress, w.volunteer, r, NOW + 6 * HOUR, "还有一点尾巴", match="已经办结")
    refused(svc.claim, w.area_chief, sc(w.area_chief), r, NOW + 6 * HOUR, match="已经办结")


def test_release_puts_it_back_on_the_board(world, new, sc):
    w = world
    r = new(w.hh1)
    ok(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR)
    ok(svc.claim, w.volunteer, sc(w.volunteer), r, NOW + 2 * HOUR)
    ok(svc.release, w.volunteer, r, NOW + 3 * HOUR, "临时有事")
    r = fresh(r)
    assert (r.helper_id, r.claimed_at, r.open_to_helpers) == (None, None, True)
    assert [q.id for q in svc.board(sc(w.area_chief), w.area_chief.id, NOW)[0]] == [r.id]
    ok(svc.claim, w.area_chief, sc(w.area_chief), r, NOW + 4 * HOUR)
    assert fresh(r).helper_id == w.area_chief.id
    refused(svc.release, w.volunteer, r, NOW + 5 * HOUR, match="只有接单人")


def test_exactly_one_of_two_claims_from_the_same_state_wins(app, world, new, sc):
    """Two helpers open the board at the same moment and both press 接单."""
    from portal.blueprints.auth.models import User

    w = world
    r = new(w.hh1)
    ok(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR)
    vol_scope, area_scope = sc(w.volunteer), sc(w.area_chief)
    mine = db.session.get(Request, r.id)  # the volunteer's page loads it …
    assert mine.helper_id is None
    with app.app_context():  # … and the 片长's, in another request with its own session
        theirs = db.session.get(Request, r.id)
        assert theirs is not mine
        svc.claim(db.session.get(User, w.area_chief.id), area_scope, theirs, NOW + 2 * HOUR)
        db.session.commit()
    assert mine.helper_id is None  # still the state both loaded
    refused(svc.claim, w.volunteer, vol_scope, mine, NOW + 2 * HOUR,
            match="刚刚已经有人接了这一单")
    r = fresh(r)
    assert r.helper_id == w.area_chief.id
    assert kinds(r).count("claimed") == 1
    assert audits(r, "request.claimed") == 1


def test_two_handlers_answering_at_once(app, world, new, sc):
    """The 邻长 and the 村 cadre both answer the same request from the same loaded state."""
    from portal.blueprints.auth.models import User

    w = world
    r = new(w.hh1)
    chief, staff = sc(w.neighbor_chief), sc(w.village_staff)
    mine = db.session.get(Request, r.id)
    assert mine.status == "new"
    with app.app_context():
        theirs = db.session.get(Request, r.id)
        svc.close(db.session.get(User, w.village_staff.id), staff, theirs, NOW + HOUR,
                  "村里已经处理好了。")
        db.session.commit()
    refused(svc.acknowledge, w.neighbor_chief, chief, mine, NOW + HOUR, match="刚被别人更新过")
    r = fresh(r)
    assert (r.status, r.closed_by_id) == ("closed", w.village_staff.id)
    assert kinds(r) == ["created", "closed"]


def test_a_stale_state_is_refused_also_when_a_timeout_is_recorded_first(app, world, new, sc):
    """The refused change's own escalation record (flushed before its save) hits the version
    check: still a ServiceError, never a crash."""
    from portal.blueprints.auth.models import User

    w = world
    r = new(w.hh1)
    mine = db.session.get(Request, r.id)
    assert mine.version == 1
    with app.app_context():
        theirs = db.session.get(Request, r.id)
        svc.offer_to_helpers(db.session.get(User, w.neighbor_chief.id), sc(w.neighbor_chief),
                             theirs, NOW + HOUR)
        db.session.commit()
    refused(svc.acknowledge, w.village_staff, sc(w.village_staff), mine, NOW + 30 * HOUR,
            match="刚被别人更新过")
    assert kinds(r) == ["created", "helpers"]


# -- close, rate, reopen --------------------------------------------------------------------------
def test_close(world, new, sc):
    w = world
    r = new(w.hh1)
    group = sc(w.group_chief)
    refused(svc.close, w.group_chief, group, r, NOW + HOUR, "好的。", match="现在由邻级办理")
    at = NOW + 5 * HOUR
    refused(svc.close, w.group_chief, group, r, at, "好", field="answer")
    refused(svc.close, w.group_chief, group, r, at, "   ", field="answer")
    refused(svc.close, w.group_chief, group, r, at, "长" * 1001, field="answer")
    refused(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, at, "已经解决了。",
            match="现在由组级办理")
    ok(svc.close, w.group_chief, group, r, at, "  组里已协调物业维修。\r\n明天完工。  ")
    r = fresh(r)
    assert (r.status, r.closed_level, r.closed_at, r.closed_by_id, r.handler_id) == (
        "closed", 1, at, w.group_chief.id, w.group_chief.id)
    assert r.answer == "组里已协调物业维修。\n明天完工。"
    assert events(r)[-1] == ("closed", at, 1, 1)
    assert audits(r, "request.closed") == 1
    eff = svc.effective(r, NOW + 1000 * HOUR)
    assert (eff.level, eff.deadline, eff.overdue, eff.missed) == (1, None, False, frozenset({0}))
    refused(svc.close, w.group_chief, group, r, at + HOUR, "再办结一次。", match="已经办结")
    refused(svc.acknowledge, w.group_chief, group, r, at + HOUR, match="已经办结")


def test_rate(world, new, sc):
    w = world
    r = new(w.hh1)
    refused(svc.rate, r, "satisfied", "", NOW + HOUR, match="办结后才能评价")
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR, "已经修好了。")
    refused(svc.rate, r, "great", "", NOW + 2 * HOUR, field="rating")
    refused(svc.rate, r, None, "", NOW + 2 * HOUR, field="rating")
    refused(svc.rate, r, "satisfied", "好" * 201, NOW + 2 * HOUR, field="note")
    ok(svc.rate, r, "basic", "修得有点慢", NOW + 2 * HOUR)
    r = fresh(r)
    assert (r.rating, r.rating_note, r.rated_at) == ("basic", "修得有点慢", NOW + 2 * HOUR)
    assert events(r)[-1] == ("rated", NOW + 2 * HOUR, 0, 0)
    assert audits(r, "request.rated") == 1
    refused(svc.rate, r, "satisfied", "", NOW + 3 * HOUR, match="已经评价过了")
    assert fresh(r).rating == "basic"


def test_reopen(world, new, sc):
    w = world
    r = new(w.hh1)
    refused(svc.reopen, r, "还没有解决", NOW + HOUR, match="只有已办结的诉求")
    closed_at = NOW + 5 * HOUR  # by the 组长: the 邻 deadline was missed
    ok(svc.close, w.group_chief, sc(w.group_chief), r, closed_at, "物业已经修好了。")
    ok(svc.rate, r, "unsatisfied", "根本没修", closed_at + HOUR)
    assert svc.reopen_until(fresh(r)) == closed_at + 7 * DAY
    refused(svc.reopen, r, "没修", closed_at + DAY, field="reason")
    limit = closed_at + 7 * DAY  # exactly at the limit: allowed
    ok(svc.reopen, r, "灯还是不亮，根本没修好", limit)
    r = fresh(r)
    assert (r.status, r.level, r.reopen_count) == ("new", 1, 1)
    assert r.dues == (limit, limit + 24 * HOUR, limit + 72 * HOUR, limit + 144 * HOUR)
    assert (r.answer, r.closed_at, r.closed_level, r.closed_by_id, r.handler_id) == (
        None, None, None, None, None)
    assert (r.rating, r.rating_note, r.rated_at) == (None, "", None)
    assert r.missed == 0b1  # the first round's missed 邻 deadline stays on record
    assert events(r)[-1] == ("reopened", limit, 1, 1)
    assert audits(r, "request.reopened") == 1
    assert svc.reopen_until(r) is None
    # back at 组 with a fresh deadline: the 组长 answers again
    assert svc.effective(r, limit + 24 * HOUR - SEC).level == 1
    assert [q.id for q, _ in svc.queue(sc(w.group_chief), limit).waiting] == [r.id]
    ok(svc.close, w.group_chief, sc(w.group_chief), r, limit + HOUR, "已经换了新灯。")
    assert fresh(r).closed_level == 1
    ok(svc.reopen, r, "第二次还是不亮", limit + 2 * HOUR)
    assert fresh(r).reopen_count == 2


def test_reopen_one_second_late_is_refused(world, new, sc):
    w = world
    r = new(w.hh1)
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), r, NOW + HOUR, "已经修好了。")
    refused(svc.reopen, r, "灯还是不亮", NOW + HOUR + 7 * DAY + SEC, match="7 天")
    r = fresh(r)
    assert (r.status, r.reopen_count) == ("closed", 0)
    assert kinds(r) == ["created", "closed"]


def test_reopen_window_follows_the_settings(world, new, sc):
    w = world
    ok(svc.save_settings, w.town_staff, w.town, [4, 24, 48, 72], 0)
    r, s = new(w.hh1), new(w.hh1x)
    for req in (r, s):
        ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), req, NOW + HOUR, "已经修好了。")
    refused(svc.reopen, s, "灯还是不亮", NOW + HOUR + SEC, match="0 天")
    ok(svc.reopen, r, "灯还是不亮", NOW + HOUR)
    assert fresh(r).status == "new"


# -- mediation ------------------------------------------------------------------------------------
AGREEMENT = {"outcome": "agreed", "parties": "周奶奶及六名子女", "mediators": "邻长、组长",
             "agreement_title": "赡养协议", "agreement_terms": "六名子女每月轮流照顾母亲。",
             "signed_on": date(2026, 11, 16), "note": "在议事亭调解。"}


@pytest.mark.parametrize("change, field", [
    ({"outcome": "maybe"}, "outcome"),
    ({"outcome": None}, "outcome"),
    ({"parties": "周"}, "parties"),
    ({"agreement_title": ""}, "agreement_title"),
    ({"agreement_terms": "照顾"}, "agreement_terms"),
    ({"signed_on": None}, "signed_on"),
    ({"signed_on": date(2026, 11, 17)}, "signed_on"),  # tomorrow in 湖南 (NOW is 10:00 there)
    ({"held_at": NOW + 6 * MIN}, "held_at"),
])
def test_mediation_refusals(world, new, sc, change, field):
    w = world
    r = new(w.hh1, category="邻里纠纷")
    refused(svc.record_mediation, w.neighbor_chief, sc(w.neighbor_chief), r,
            {**AGREEMENT, **change}, NOW, field=field)
    assert count(Mediation) == 0
    assert kinds(r) == ["created"]


def test_mediation(world, new, sc):
    w = world
    r = new(w.hh1, category="邻里纠纷")
    m = ok(svc.record_mediation, w.neighbor_chief, sc(w.neighbor_chief), r,
           {**AGREEMENT, "held_at": NOW - HOUR}, NOW)
    m = db.session.get(Mediation, m.id)
    assert (m.outcome, m.agreement_title, m.signed_on, m.held_at, m.recorded_by_id) == (
        "agreed", "赡养协议", date(2026, 11, 16), NOW - HOUR, w.neighbor_chief.id)
    assert events(r)[-1][0] == "mediation" and audits(r, "request.mediation") == 1
    # without an agreement the agreement fields are not needed
    ok(svc.record_mediation, w.group_chief, sc(w.group_chief), r,
       {"outcome": "not_agreed", "parties": "两户邻居", "signed_on": None}, NOW)
    # a little clock skew is tolerated; the local date decides "today"
    late = datetime(2026, 11, 16, 17, 0)  # 01:00 on the 17th in Asia/Shanghai
    ok(svc.record_mediation, w.neighbor_chief, sc(w.neighbor_chief), r,
       {**AGREEMENT, "signed_on": date(2026, 11, 17), "held_at": late + 4 * MIN}, late)
    assert count(Mediation) == 3
    # who may record one
    for user in (w.volunteer, w.nobody, w.neighbor_chief2):
        refused(svc.record_mediation, user, sc(user), r, AGREEMENT, late, match="只有负责的")
    # by now (NOW+15h) it waits at 组: the 组长 offers it, the volunteer who takes it may record
    ok(svc.offer_to_helpers, w.group_chief, sc(w.group_chief), r, late + HOUR)
    ok(svc.claim, w.volunteer, sc(w.volunteer), r, late + HOUR)
    ok(svc.record_mediation, w.volunteer, sc(w.volunteer), r,
       {**AGREEMENT, "signed_on": date(2026, 11, 17)}, late + 2 * HOUR)
    assert count(Mediation) == 4


# -- entry level ----------------------------------------------------------------------------------
def test_entry_level_follows_who_is_in_post(world, new):
    w = world
    assert new(w.hh1).level == 0
    first = new(w.hh1b)  # hood1b has no 邻长
    assert first.level == 1
    assert db.session.scalar(select(RequestEvent.note).where(
        RequestEvent.request_id == first.id)) == "该邻暂无邻长，直接由组级响应。"
    end_post(w.group_chief, "group_chief")
    assert new(w.hh1b).level == 1  # the 片长 answers at 组 for the groups of their 片
    end_post(w.area_chief, "area_chief")
    assert new(w.hh1b).level == 2
    end_post(w.village_staff, "village_staff")
    top = new(w.hh1b)
    assert top.level == 3 and top.dues == (NOW, NOW, NOW, NOW + 72 * HOUR)
    end_post(w.neighbor_chief, "neighbor_chief")
    assert new(w.hh1).level == 3
    # village 2: a 邻长 in hood2 only
    assert new(w.hh2).level == 0
    assert new(w.hh2b).level == 3


# -- figures --------------------------------------------------------------------------------------
def test_figures_on_a_small_set(world, new, sc, make_region):
    w = world
    chief, group, staff = sc(w.neighbor_chief), sc(w.group_chief), sc(w.village_staff)
    start, end, now = NOW - DAY, NOW + 9 * HOUR, NOW + 10 * HOUR
    # a: closed at 邻 in time, 满意
    a = new(w.hh1, category="安全隐患")
    ok(svc.acknowledge, w.neighbor_chief, chief, a, NOW + HOUR)
    ok(svc.close, w.neighbor_chief, chief, a, NOW + 2 * HOUR, "已经修好了。")
    ok(svc.rate, a, "satisfied", "", NOW + 3 * HOUR)
    # b: a dispute closed at 邻 with a signed agreement (two sessions, one request), 基本满意
    b = new(w.hh1x, category="邻里纠纷")
    for _ in range(2):
        ok(svc.record_mediation, w.neighbor_chief, chief, b, AGREEMENT, NOW + HOUR)
    ok(svc.close, w.neighbor_chief, chief, b, NOW + 3 * HOUR, "双方签了协议。")
    ok(svc.rate, b, "basic", "", NOW + 4 * HOUR)
    # c: nobody answered: the 邻 deadline passed (not recorded)
    new(w.hh1, category="环境卫生")
    # d: a dispute that started at 组 (no 邻长), no agreement, closed at 组, 不满意
    d = new(w.hh1b, category="邻里纠纷")
    ok(svc.record_mediation, w.group_chief, group, d,
       {"outcome": "not_agreed", "parties": "两户邻居"}, NOW + HOUR)
    ok(svc.close, w.group_chief, group, d, NOW + HOUR, "调解未成，已告知法律途径。")
    ok(svc.rate, d, "unsatisfied", "", NOW + 2 * HOUR)
    # e: escalated in time 邻 → 组 → 村, closed at 村, not rated
    e = new(w.hh1x, category="安全隐患", at=NOW + HOUR)
    ok(svc.escalate, w.neighbor_chief, chief, e, NOW + 2 * HOUR, "需要组里协调")
    ok(svc.escalate, w.group_chief, group, e, NOW + 3 * HOUR, "需要村里协调")
    ok(svc.close, w.village_staff, staff, e, NOW + 4 * HOUR, "村里安排了维修。")
    # f: made at NOW+8h, still within its 4 hours at ``now``
    new(w.hh1, category="政策咨询", at=NOW + 8 * HOUR)
    # outside the period or the region
    old = new(w.hh1, at=NOW - 2 * DAY)
    ok(svc.close, w.neighbor_chief, chief, old, NOW - 2 * DAY + HOUR, "已经处理。")
    new(w.hh1, at=end)  # the period's end is exclusive
    new(w.hh2, category="其他")  # village 2: missed its 邻 deadline too

    f = svc.figures(w.village1, start, end, now)
    assert (f.total, f.open, f.closed) == (6, 2, 4)
    assert f.closed_at == [2, 1, 1, 0]
    assert [f.closed_share(k) for k in range(4)] == [50, 25, 25, 0]
    assert [f.stayed_within(k) for k in range(4)] == [50, 75, 100, 100]
    assert f.ratings == {"satisfied": 1, "basic": 1, "unsatisfied": 1}
    assert f.missed_neighborhood == 1  # c only: e escalated in time, d never had a 邻 deadline
    # of the six, only c missed the 邻 deadline (f, still within it, counts as on time)
    assert f.on_time_pct == 83
    assert f.by_category == [("安全隐患", 2, 2), ("邻里纠纷", 2, 2), ("政策咨询", 1, 0),
                             ("环境卫生", 1, 0)]
    assert (f.disputes, f.agreements) == (2, 1)

    t = svc.figures(w.town, start, end, now)
    assert (t.total, t.open, t.closed_at, t.missed_neighborhood) == (7, 3, [2, 1, 1, 0], 2)
    assert t.on_time_pct == 71  # 5 of 7
    assert t.by_category == [("安全隐患", 2, 2), ("邻里纠纷", 2, 2), ("其他", 1, 0),
                             ("政策咨询", 1, 0), ("环境卫生", 1, 0)]
    # recording the escalations changes no figure
    svc.tick(now)
    assert svc.figures(w.village1, start, end, now) == f
    # an empty period, and a period where nothing has reached its deadline yet
    empty = svc.figures(w.village1, NOW + 100 * DAY, NOW + 101 * DAY, now)
    assert (empty.total, empty.closed, empty.on_time_pct, empty.closed_share(0),
            empty.stayed_within(3)) == (0, 0, None, None, None)
    fresh_only = svc.figures(w.village1, NOW + 8 * HOUR, end, now)
    assert (fresh_only.total, fresh_only.missed_neighborhood, fresh_only.on_time_pct) == (1, 0, 100)
    # a category switched off still counts under its name
    cat = db.session.scalar(select(RequestCategory).where(
        RequestCategory.town_id == w.town.id, RequestCategory.name == "政策咨询"))
    ok(svc.save_option, w.town_staff, w.town, RequestCategory, cat, cat.name, active=False)
    assert ("政策咨询", 1, 0) in svc.figures(w.village1, start, end, now).by_category


# -- overdue lists --------------------------------------------------------------------------------
def test_overdue_per_level_in_scope(world, new, sc):
    w = world
    r1 = new(w.hh1)  # 邻 from NOW
    r1x = new(w.hh1x)
    ok(svc.acknowledge, w.neighbor_chief, sc(w.neighbor_chief), r1x, NOW + HOUR)
    r1b = new(w.hh1b)  # 组 from NOW: due_1 = NOW+24h
    r2 = new(w.hh2)
    r2b = new(w.hh2b)  # 镇 from NOW: due_3 = NOW+72h
    done = new(w.hh1, at=NOW - DAY)  # missed its 邻 deadline, then closed: not listed
    ok(svc.close, w.group_chief, sc(w.group_chief), done, NOW - 10 * HOUR, "已经处理好了。")

    at = NOW + 30 * HOUR
    cases = {  # user → counts per level, ids per level
        "village_staff": ([1, 2, 0, 0], [[r1.id], [r1b.id, r1.id], [], []]),
        # r2 passed 组 at once (nobody in post there): not missed at 组
        "town_staff": ([2, 2, 0, 0], [[r1.id, r2.id], [r1b.id, r1.id], [], []]),
        "neighbor_chief": ([1, 1, 0, 0], [[r1.id], [r1.id], [], []]),
        "neighbor_chief2": ([1, 0, 0, 0], [[r2.id], [], [], []]),
        "group_chief": ([1, 2, 0, 0], [[r1.id], [r1b.id, r1.id], [], []]),
        "volunteer": ([0, 0, 0, 0], [[], [], [], []]),
        "nobody": ([0, 0, 0, 0], [[], [], [], []]),
    }

    def check(now, cases):
        for name, (counts, lists) in cases.items():
            scope = sc(getattr(w, name))
            assert svc.overdue_counts(scope, now) == counts, name
            for level in range(4):
                rows, more = svc.overdue(scope, level, now)
                ids = [r.id for r, _ in rows]
                assert len(ids) == counts[level], (name, level)
                assert ids == lists[level], (name, level)  # longest overdue first
                assert not more

    check(at, cases)
    # recorded by tick or not, the lists are the same
    svc.tick(at)
    check(at, cases)
    # much later everything waiting has missed every deadline
    late = NOW + 200 * HOUR
    counts = svc.overdue_counts(sc(w.town_staff), late)
    assert counts == [2, 2, 2, 4]  # r1, r2 | r1, r1b | r1, r1b | all four
    assert svc.overdue_counts(sc(w.village_staff), late) == [1, 2, 2, 2]
    rows, more = svc.overdue(sc(w.town_staff), 3, late, limit=3)
    assert [r.id for r, _ in rows] == [r2b.id, r2.id, r1b.id] and more  # by due_3
    assert all(e.overdue for _, e in rows)


# -- who sees and handles what --------------------------------------------------------------------
def test_visible_clause_and_can_see_agree(world, new, sc):
    w = world
    r1, r1x, r1b, r2 = new(w.hh1), new(w.hh1x), new(w.hh1b), new(w.hh2)
    board = new(w.hh1x)
    ok(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), board, NOW + HOUR)
    taken = new(w.hh1)
    ok(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), taken, NOW + HOUR)
    ok(svc.claim, w.volunteer, sc(w.volunteer), taken, NOW + HOUR)
    taken_by_other = new(w.hh1b)
    ok(svc.offer_to_helpers, w.group_chief, sc(w.group_chief), taken_by_other, NOW + HOUR)
    ok(svc.claim, w.area_chief, sc(w.area_chief), taken_by_other, NOW + HOUR)
    closed_board = new(w.hh1x)
    ok(svc.offer_to_helpers, w.neighbor_chief, sc(w.neighbor_chief), closed_board, NOW + HOUR)
    ok(svc.close, w.neighbor_chief, sc(w.neighbor_chief), closed_board, NOW + HOUR, "已经办好。")
    v1 = {r.id for r in (r1, r1x, r1b, board, taken, taken_by_other, closed_board)}
    everything = v1 | {r2.id}
    expect = {
        "neighbor_chief": {r1.id, r1x.id, board.id, taken.id, closed_board.id},  # hood1 only
        "neighbor_chief2": {r2.id},
        "group_chief": v1, "area_chief": v1, "village_staff": v1,
        "town_staff": everything, "admin": everything,
        # a volunteer: what is on the board of their subtree, and what they took
        "volunteer": {board.id, taken.id},
        "nobody": set(),
    }
    for name, ids in expect.items():
        user = getattr(w, name)
        scope = sc(user)
        listed = set(db.session.scalars(select(Request.id).where(
            svc.visible_clause(scope, user.id))))
        one_by_one = {rid for rid in everything
                      if svc.can_see(scope, db.session.get(Request, rid), user.id)}
        assert one_by_one == ids, name
        assert listed == ids, name


@pytest.mark.parametrize("user, in_village1, in_village2", [
    ("neighbor_chief", [True, False, False, False], [False] * 4),
    ("neighbor_chief2", [False] * 4, [True, False, False, False]),
    ("group_chief", [False, True, False, False], [False] * 4),
    ("area_chief", [False, True, False, False], [False] * 4),
    ("village_staff", [True, True, True, False], [False] * 4),
    ("town_staff", [True] * 4, [True] * 4),
    ("admin", [True] * 4, [True] * 4),
    ("volunteer", [False] * 4, [False] * 4),
    ("nobody", [False] * 4, [False] * 4),
])
def test_can_handle(world, new, sc, user, in_village1, in_village2):
    w = world
    scope = sc(getattr(w, user))
    r1, r2 = new(w.hh1), new(w.hh2)
    assert [svc.can_handle(scope, r1, k) for k in range(4)] == in_village1
    assert [svc.can_handle(scope, r2, k) for k in range(4)] == in_village2
    # the 邻长 of hood1 does not answer for hood1b, its sibling
    r1b = new(w.hh1b)
    assert svc.can_handle(scope, r1b, 0) == (user in ("village_staff", "town_staff", "admin"))


# -- submit ---------------------------------------------------------------------------------------
@pytest.fixture
def form(world):
    cat = db.session.scalar(select(RequestCategory.id).where(
        RequestCategory.town_id == world.town.id, RequestCategory.name == "物业管理"))
    return {"category_id": cat, "description": "小区门口的路灯坏了三盏。", "contact_name": "王阿姨",
            "contact_phone": "13912345678", "contact_note": "晚上在家"}


def _submit(load_household, household, data, token="tok-1", at=NOW):
    return svc.submit(load_household(household.id), data, source="resident", actor=None,
                      photo=None, token=token, now=at)


@pytest.mark.parametrize("change, field", [
    ({"category_id": None}, "category_id"),
    ({"category_id": 999_999}, "category_id"),
    ({"description": "灯坏"}, "description"),
    ({"description": "   灯坏了   "}, "description"),
    ({"description": "灯" * 1001}, "description"),
    ({"description": None}, "description"),
    ({"contact_phone": "12345"}, "contact_phone"),
    ({"contact_phone": "23912345678"}, "contact_phone"),
    ({"contact_phone": "1391234567a"}, "contact_phone"),
    ({"contact_name": "王" * 41}, "contact_name"),
    ({"contact_note": "晚" * 101}, "contact_note"),
])
def test_submit_refuses_bad_input_and_saves_nothing(world, form, load_household, change, field):
    before = (count(Request), count(RequestEvent), count(AuditEntry))
    with pytest.raises(ServiceError) as info:
        _submit(load_household, world.hh1, {**form, **change})
    assert info.value.field == field
    # refused before anything reached the session: even a commit now saves nothing
    db.session.commit()
    assert (count(Request), count(RequestEvent), count(AuditEntry)) == before


def test_submit_refuses_a_category_of_another_town_or_switched_off(world, form, load_household,
                                                                  make_region):
    other = make_region("别的镇")
    foreign = db.session.scalar(select(RequestCategory.id).where(
        RequestCategory.town_id == other.id))
    refused(_submit, load_household, world.hh1, {**form, "category_id": foreign},
            field="category_id")
    cat = db.session.get(RequestCategory, form["category_id"])
    ok(svc.save_option, world.town_staff, world.town, RequestCategory, cat, cat.name,
       active=False)
    refused(_submit, load_household, world.hh1, form, field="category_id")
    assert count(Request) == 0


def test_submit_accepts_the_limits_and_cleans_the_text(world, form, load_household):
    req, created = _submit(load_household, world.hh1,
                           {**form, "description": "  灯坏了啊\r\n快来  ", "contact_phone": " ",
                            "contact_name": "王" * 40}, token="a")
    assert created and req.description == "灯坏了啊\n快来" and req.contact_phone is None
    req, created = _submit(load_household, world.hh1, {**form, "description": "灯" * 1000},
                           token="b")
    assert created
    db.session.commit()
    assert count(Request) == 2
    r = fresh(req)
    assert (r.status, r.level, r.source, r.created_at, r.form_token) == (
        "new", 0, "resident", NOW, "b")
    assert audits(r, "request.create") == 1
    detail = db.session.scalar(select(AuditEntry.detail).where(
        AuditEntry.action == "request.create", AuditEntry.object_id == r.id))
    assert "13912345678" not in detail and "139****5678" in detail


def test_the_same_form_twice_makes_one_request(world, form, load_household):
    first, created = _submit(load_household, world.hh1, form, token="same")
    db.session.commit()
    assert created
    again, created = _submit(load_household, world.hh1, {**form, "description": "改了内容再交一次"},
                             token="same", at=NOW + MIN)
    assert not created and again.id == first.id
    db.session.commit()
    assert count(Request) == 1 and kinds(first) == ["created"]
    # the token of another household's form is not a way in
    refused(_submit, load_household, world.hh2, form, token="same", match="表单已失效")
    # nor a missing or overlong one (it would not fit the column: a 500 on PostgreSQL)
    for token in ("", None, "x" * 37):
        refused(_submit, load_household, world.hh1, form, token=token, match="表单已失效")
    assert count(Request) == 1


def test_chief_records_for_a_household(world, form, load_household):
    req, created = svc.submit(load_household(world.hh1.id), form, source="chief",
                              actor=world.neighbor_chief, photo=None, token="c", now=NOW)
    db.session.commit()
    r = fresh(req)
    assert (r.source, r.created_by_id) == ("chief", world.neighbor_chief.id)
    assert db.session.scalar(select(RequestEvent.user_id).where(
        RequestEvent.request_id == r.id)) == world.neighbor_chief.id


def test_a_level_with_nobody_in_post_is_passed_not_missed(world, new, sc):
    """Village 2 has a 邻长 but nobody at 组 or 村: a request escalated by hand, or past its 邻
    deadline, goes straight to 镇 instead of waiting a day in nobody's queue."""
    w = world
    by_hand = new(w.hh2)
    ok(svc.escalate, w.neighbor_chief2, sc(w.neighbor_chief2), by_hand, NOW + HOUR, "需要镇里协调")
    by_hand = fresh(by_hand)
    assert by_hand.level == 3 and by_hand.due_3 == NOW + HOUR + 72 * HOUR
    assert events(by_hand)[-1] == ("escalated", NOW + HOUR, 0, 3)

    late = new(w.hh2)
    at = NOW + 5 * HOUR
    assert svc.effective(late, at).level == 3
    assert svc.effective(late, at).missed == frozenset({0})
    assert late.id in [r.id for r, _ in svc.queue(sc(w.town_staff), at).waiting]
    assert svc.tick(at) == 1
    [timeout] = [e for e in events(late) if e[0] == "timeout"]
    assert timeout == ("timeout", NOW + 4 * HOUR, 0, 3)
    assert "中间层级暂无人在岗" in db.session.scalar(
        select(RequestEvent.note).where(RequestEvent.request_id == late.id,
                                        RequestEvent.kind == "timeout"))
    assert fresh(late).missed == 1  # 邻 missed; 组 and 村 passed, not missed
