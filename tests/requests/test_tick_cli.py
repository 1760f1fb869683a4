"""`flask requests tick` (for cron) records the escalations whose deadlines passed."""

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.models import Request, RequestEvent
from portal.extensions import db
from tests.requests.conftest import HOUR, NOW


@pytest.fixture
def clock(monkeypatch):
    """The clock tick() reads when the command gives it none."""
    box = {"now": NOW}
    monkeypatch.setattr(svc, "utcnow", lambda: box["now"])
    return box


def timeouts() -> list[tuple]:
    return list(db.session.execute(
        select(RequestEvent.request_id, RequestEvent.from_level, RequestEvent.to_level,
               RequestEvent.at)
        .where(RequestEvent.kind == "timeout").order_by(RequestEvent.request_id,
                                                        RequestEvent.at)))


def test_tick_records_escalations_once(world, make_request, load_household, runner, clock,
                                       scope_of):
    in_time = make_request(load_household(world.hh1.id), at=NOW - HOUR)
    one = make_request(load_household(world.hh1x.id), at=NOW - 5 * HOUR)  # 邻 missed
    # village 2 has nobody at 组 or 村: past its 邻 deadline it goes straight to 镇
    two = make_request(load_household(world.hh2.id), at=NOW - 30 * HOUR)
    answered = make_request(load_household(world.hh1.id), at=NOW - 10 * HOUR)
    svc.acknowledge(world.neighbor_chief, scope_of(world.neighbor_chief),
                    db.session.get(Request, answered.id), NOW - 9 * HOUR)
    db.session.commit()

    r = runner.invoke(args=["requests", "tick"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "已记录 2 次超时自动上报。"
    assert timeouts() == [(one.id, 0, 1, NOW - HOUR), (two.id, 0, 3, NOW - 26 * HOUR)]
    levels = dict(db.session.execute(select(Request.id, Request.level)).all())
    assert levels == {in_time.id: 0, one.id: 1, two.id: 3, answered.id: 0}
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "request.timeout")) == 2

    # run again at once: nothing new
    r = runner.invoke(args=["requests", "tick"])
    assert r.exit_code == 0 and r.output.strip() == "已记录 0 次超时自动上报。"
    assert len(timeouts()) == 2

    # a day later: the in-time one missed 邻, the first one 组 as well
    clock["now"] = NOW + 24 * HOUR
    r = runner.invoke(args=["requests", "tick"])
    assert r.output.strip() == "已记录 2 次超时自动上报。"
    assert (in_time.id, 0, 1, NOW + 3 * HOUR) in timeouts()
    assert (one.id, 1, 2, NOW + 23 * HOUR) in timeouts()


def test_tick_records_the_town_deadline_once(world, make_request, load_household, runner,
                                             clock):
    make_request(load_household(world.hh1.id), at=NOW - 200 * HOUR)  # past every deadline
    r = runner.invoke(args=["requests", "tick"])
    assert r.output.strip() == "已记录 4 次超时自动上报。"
    assert [(f, t) for _, f, t, _ in timeouts()] == [(0, 1), (1, 2), (2, 3), (3, 3)]
    r = runner.invoke(args=["requests", "tick"])
    assert r.output.strip() == "已记录 0 次超时自动上报。"


def test_tick_with_nothing_to_do(app, runner):
    r = runner.invoke(args=["requests", "tick"])
    assert r.exit_code == 0 and r.output.strip() == "已记录 0 次超时自动上报。"


def test_demo_requests_tell_consistent_stories(app, runner):
    """`flask seed demo` loads requests in every state through the services; their timelines
    run forward and end before now; `requests tick` then records what the clock escalated."""
    from portal.blueprints.auth.models import User
    from portal.blueprints.regions.models import Household, Region
    from portal.blueprints.requests.models import Department, Mediation
    from portal.clock import utcnow
    from portal.scope import Scope

    r = runner.invoke(args=["seed", "demo"])
    assert r.exit_code == 0, r.output
    assert "民情诉求 40" in r.output
    now = utcnow()
    reqs = list(db.session.scalars(select(Request).order_by(Request.id)))
    assert len(reqs) == 40
    assert {q.status for q in reqs} == {"new", "working", "closed"}
    assert {q.closed_level for q in reqs if q.status == "closed"} == {0, 1, 2, 3}
    assert all(q.answer and q.closed_at <= now for q in reqs if q.status == "closed")
    events = list(db.session.scalars(select(RequestEvent).order_by(RequestEvent.id)))
    last: dict[int, object] = {}
    for ev in events:
        assert ev.at <= now
        assert ev.at >= last.get(ev.request_id, ev.at), ev.request_id  # forward in time
        last[ev.request_id] = ev.at

    def user(phone):
        return db.session.scalar(select(User).where(User.phone == phone))

    def kinds(req):
        return [e.kind for e in events if e.request_id == req.id]

    # the seeds' irrigation outlet: told to 胡新林, up to 村, fixed by the town's centre
    pond = next(q for q in reqs if q.description.startswith("山塘输水洞堵塞"))
    hood = db.session.scalar(select(Region.name).join(Household, Household.neighborhood_id
                                                      == Region.id)
                             .where(Household.id == pond.household_id))
    assert hood == "杨家井一邻"
    assert (pond.source, pond.created_by_id) == ("chief", user("13800000005").id)
    assert (pond.status, pond.closed_level, pond.rating) == ("closed", 2, "satisfied")
    assert db.session.get(Department, pond.department_id).name == "农业综合服务中心"
    assert kinds(pond) == ["created", "escalated", "escalated", "routed", "closed", "rated"]
    # the 赡养协议
    agreement = db.session.scalar(select(Mediation).where(Mediation.outcome == "agreed"))
    assert agreement.agreement_title == "赡养协议" and agreement.signed_on is not None
    family = db.session.get(Request, agreement.request_id)
    assert (family.status, family.rating) == ("closed", "satisfied")
    assert kinds(family).count("mediation") == 2
    # 接单: one taken by the demo volunteer, one waiting on the board
    volunteer = user("13800000006")
    taken = [q for q in reqs if q.helper_id == volunteer.id]
    assert len(taken) == 1 and taken[0].status == "working"
    assert [q for q in reqs if q.open_to_helpers and q.helper_id is None and q.status != "closed"]

    def scope(phone):
        from sqlalchemy.orm import selectinload

        from portal.blueprints.regions.models import Post

        u = db.session.execute(select(User).options(selectinload(User.posts).joinedload(
            Post.region)).where(User.phone == phone)).scalar_one()
        return Scope.for_user(u)

    assert svc.pending_count(scope("13800000005"), now) == 2  # 胡新林: two waiting
    assert svc.pending_count(scope("13800000004"), now) >= 1  # 杨国平: one past the 邻
    assert svc.pending_count(scope("13800000002"), now) >= 1  # 周丽
    assert svc.pending_count(scope("13800000001"), now) >= 2  # 刘建国, one of them overdue
    assert svc.overdue_counts(scope("13800000001"), now)[3] >= 1

    # the cron job records the escalations the clock made; a second run finds none
    r = runner.invoke(args=["requests", "tick"])
    assert r.exit_code == 0 and r.output.startswith("已记录 ") and r.output.strip() != \
        "已记录 0 次超时自动上报。"
    for q in db.session.scalars(select(Request).where(Request.status == "new")
                                .execution_options(populate_existing=True)):
        assert svc.effective(q, utcnow()).level == q.level
    r = runner.invoke(args=["requests", "tick"])
    assert r.output.strip() == "已记录 0 次超时自动上报。"
