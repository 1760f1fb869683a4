"""接单 race: two helpers claim the same request at the same moment; exactly one wins, the other
is told "刚刚已经有人接了这一单" — by the service (ServiceError) and by the page (4xx, not a 500)."""


import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.blueprints.requests import services as svc
from portal.blueprints.requests.models import Request, RequestEvent
from portal.errors import ServiceError
from portal.extensions import db
from portal.scope import Scope
from tests.conftest import PASSWORD, TEST_DB_URL, csrf_from, load_user, run_at_once
from tests.requests.conftest import HOUR, NOW

LOST = "刚刚已经有人接了这一单。"


@pytest.fixture
def offered(world, make_request, load_household, scope_of):
    """offered() → the id of a new request of 甲1家 that its 邻长 put on the board."""

    def make():
        req = make_request(load_household(world.hh1.id))
        svc.offer_to_helpers(world.neighbor_chief, scope_of(world.neighbor_chief),
                             svc.load(req.id), NOW)
        db.session.commit()
        return req.id

    return make


@pytest.fixture
def volunteer2(world, make_user):
    return make_user("志愿者二", "13800000199", role="volunteer", region=world.village1)


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
@pytest.mark.parametrize("round_", range(5))
def test_two_threads_claim_at_once(app, world, volunteer2, offered, round_):
    """Each thread has its own app context and session; both have read the request (no helper)
    before either claims it."""
    rid = offered()
    db.session.rollback()
    users = [world.volunteer.id, volunteer2.id]

    def job(user_id):
        def prepare():
            user = load_user(user_id)
            req = svc.load(rid)
            assert req.helper_id is None
            return user, req

        def claim(state):
            user, req = state
            svc.claim(user, Scope.for_user(user), req, NOW + HOUR)
            return "won"

        return prepare, claim

    outcomes = run_at_once(app, [job(u) for u in users])
    results = {u: r if r == "won" else r[1] for u, r in zip(users, outcomes, strict=True)}

    assert sorted(results.values()) == sorted(["won", LOST]), results
    winner = next(u for u, v in results.items() if v == "won")
    req = db.session.get(Request, rid)
    assert req.helper_id == winner
    assert db.session.scalar(select(func.count()).select_from(RequestEvent).where(
        RequestEvent.request_id == rid, RequestEvent.kind == "claimed")) == 1


def test_claim_from_a_stale_read_is_refused(app, world, volunteer2, offered, login_as):
    """The loser read the request before the winner saved: the version check refuses it with the
    message, on any database (the same as the thread race, made deterministic)."""
    rid = offered()
    loser = load_user(volunteer2.id)
    scope = Scope.for_user(loser)
    stale = svc.load(rid)
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()  # end the read, keep the (soon stale) objects
    finally:
        session.expire_on_commit = True
    assert stale.helper_id is None

    c = login_as(world.volunteer)
    r = c.post(f"/requests/{rid}/claim", data={"csrf_token": csrf_from(c.get("/requests/board"))})
    assert r.status_code == 303

    with pytest.raises(ServiceError) as refused:
        svc.claim(loser, scope, stale, NOW + HOUR)
    assert refused.value.message == LOST
    db.session.rollback()
    assert db.session.get(Request, rid).helper_id == world.volunteer.id
    assert stale.helper_id == world.volunteer.id  # read again after the rollback


def test_second_claim_through_the_page(app, world, volunteer2, offered, login_as):
    rid = offered()
    first, second = login_as(world.volunteer), login_as(volunteer2, PASSWORD)
    t1 = csrf_from(first.get("/requests/board"))
    t2 = csrf_from(second.get("/requests/board"))
    assert first.post(f"/requests/{rid}/claim", data={"csrf_token": t1}).status_code == 303
    r = second.post(f"/requests/{rid}/claim", data={"csrf_token": t2})
    assert 400 <= r.status_code < 500
    assert "已经有人接" in r.get_data(as_text=True)
    # and the same helper twice: told so, still theirs
    r = first.post(f"/requests/{rid}/claim", data={"csrf_token": t1})
    assert r.status_code == 422 and "您已经接了这一单" in r.get_data(as_text=True)
    db.session.rollback()
    req = db.session.execute(select(Request).options(joinedload(Request.helper))
                             .where(Request.id == rid)).scalar_one()
    assert req.helper.name == "志愿者"
    assert db.session.scalar(select(func.count()).select_from(RequestEvent).where(
        RequestEvent.request_id == rid, RequestEvent.kind == "claimed")) == 1
