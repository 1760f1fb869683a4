"""One household, one vote — even when requests arrive at the same moment.

On PostgreSQL, threads (each with its own app context and database session, as gunicorn workers
would have) cast the same household's vote at once: exactly one Vote row, the others are told so
with a ServiceError (never an IntegrityError, which a view would turn into a 500). The same for
two check-ins of one household, and for a vote cast while the chair closes the vote: the locked
result counts exactly the Vote rows. On any engine the unique constraint itself refuses a
duplicate inserted around the service's checks.
"""

import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.models import AgendaItem, Attendance, Meeting, Vote
from portal.blueprints.regions.models import Household
from portal.errors import ServiceError
from portal.extensions import db
from portal.scope import Scope
from tests.agenda.conftest import NOW
from tests.conftest import TEST_DB_URL, load_user, run_at_once

THREADS = 8


@pytest.fixture
def open_item(world, make_item, make_meeting, scope_of):
    """open_item(check_in=(households…)) → (item id, meeting id): a household vote open at a
    village-1 meeting, with those households checked in."""

    def make(check_in=()):
        actor = world.village_staff
        item = make_item(world.hood1, world.neighbor_chief)
        meeting = make_meeting(world.village1, actor, open=True,
                               items=[(item, "present_majority", "household")])
        scope = scope_of(actor)
        for hh in check_in:
            svc.check_in(actor, scope, meeting, hh, now=NOW)
        svc.open_vote(actor, scope, item, now=NOW)
        db.session.commit()
        ids = item.id, meeting.id
        db.session.rollback()  # no transaction left open while the threads run
        return ids

    return make


def _votes(item_id):
    return list(db.session.scalars(select(Vote).where(Vote.item_id == item_id)))


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
@pytest.mark.parametrize("round_", range(3))
def test_same_household_votes_from_many_threads(app, world, open_item, round_):
    item_id, _ = open_item(check_in=[world.hh1])
    hh = world.hh1.id
    choices = ["yes", "no", "abstain"]

    def job(k):
        return (lambda: db.session.get(AgendaItem, item_id),
                lambda item: ("cast", svc.cast_vote(item, hh, choices[k % 3]).choice))

    results = run_at_once(app, [job(k) for k in range(THREADS)])
    cast = [r for r in results if r[0] == "cast"]
    refused = [r for r in results if r[0] == "refused"]
    assert len(cast) == 1 and len(refused) == THREADS - 1, results
    (vote,) = _votes(item_id)
    assert vote.household_id == hh and vote.choice == cast[0][1]
    label = {"yes": "赞成", "no": "反对", "abstain": "弃权"}[vote.choice]
    assert {m for _, m in refused} == {f"这户已经投过票（{label}），每户只能投一次。"}


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
def test_two_households_voting_at_once_both_count(app, world, open_item):
    households = [world.hh1.id, world.hh1x.id, world.hh1b.id]
    item_id, _ = open_item(check_in=[world.hh1, world.hh1x, world.hh1b])

    def job(hh):
        return (lambda: db.session.get(AgendaItem, item_id),
                lambda item: ("cast", svc.cast_vote(item, hh, "yes").id))

    results = run_at_once(app, [job(hh) for hh in households])
    assert all(r[0] == "cast" for r in results), results
    assert sorted(v.household_id for v in _votes(item_id)) == sorted(households)
    assert svc.tally(db.session.get(AgendaItem, item_id)).yes == 3


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
def test_same_household_checked_in_from_two_phones(app, world, open_item):
    _, meeting_id = open_item()
    chairs = [world.village_staff.id, world.town_staff.id] * (THREADS // 2)

    def job(user_id):
        def prepare():
            user = load_user(user_id)
            return (user, Scope.for_user(user), db.session.get(Meeting, meeting_id),
                    db.session.get(Household, world.hh1x.id))

        def act(state):
            att, created = svc.check_in(*state, now=NOW)
            return ("created" if created else "existing", att.id)

        return prepare, act

    results = run_at_once(app, [job(u) for u in chairs])
    assert sorted(r[0] for r in results) == ["created"] + ["existing"] * (THREADS - 1), results
    assert len({r[1] for r in results}) == 1
    assert db.session.scalar(select(func.count(Attendance.id)).where(
        Attendance.meeting_id == meeting_id)) == 1


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
def test_vote_in_flight_while_the_chair_closes(app, world, open_item):
    """A vote inserted but not yet committed when the chair closes: the close waits for it, so
    the locked result counts exactly the Vote rows."""
    item_id, _ = open_item(check_in=[world.hh1, world.hh1x])
    staff_id = world.village_staff.id
    inserted, release = threading.Event(), threading.Event()
    results = {}

    def cast():
        with app.app_context():
            try:
                svc.cast_vote(db.session.get(AgendaItem, item_id), world.hh1.id, "yes")
                db.session.flush()
                inserted.set()
                release.wait(20)
                db.session.commit()
                results["cast"] = "ok"
            except Exception as e:  # noqa: BLE001
                results["cast"] = repr(e)
                db.session.rollback()
            finally:
                db.session.remove()

    def close():
        with app.app_context():
            try:
                user = load_user(staff_id)
                results["close"] = svc.close_vote(user, Scope.for_user(user),
                                                  db.session.get(AgendaItem, item_id))
                db.session.commit()
            except Exception as e:  # noqa: BLE001
                results["close"] = repr(e)
                db.session.rollback()
            finally:
                db.session.remove()

    t1 = threading.Thread(target=cast)
    t1.start()
    assert inserted.wait(20)
    t2 = threading.Thread(target=close)
    t2.start()
    time.sleep(0.5)  # the close is now waiting for the vote's transaction
    release.set()
    for t in (t1, t2):
        t.join(30)
    assert not t1.is_alive() and not t2.is_alive()
    item = db.session.get(AgendaItem, item_id)
    assert results == {"cast": "ok", "close": "rejected"}  # 1 yes of 2 present: not over half
    assert item.result_yes == len(_votes(item_id)) == 1


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
def test_vote_arriving_while_the_close_is_saving_is_refused(app, world, open_item):
    """The chair's close is not yet committed when a vote arrives: the vote waits, then is
    refused as too late — no Vote row that the locked result does not count."""
    item_id, _ = open_item(check_in=[world.hh1, world.hh1x])
    staff_id = world.village_staff.id
    closed, release = threading.Event(), threading.Event()
    results = {}

    def close():
        with app.app_context():
            try:
                user = load_user(staff_id)
                results["close"] = svc.close_vote(user, Scope.for_user(user),
                                                  db.session.get(AgendaItem, item_id))
                closed.set()
                release.wait(20)
                db.session.commit()
            except Exception as e:  # noqa: BLE001
                results["close"] = repr(e)
                db.session.rollback()
            finally:
                db.session.remove()

    def cast():
        with app.app_context():
            try:
                svc.cast_vote(db.session.get(AgendaItem, item_id), world.hh1.id, "yes")
                db.session.commit()
                results["cast"] = "ok"
            except ServiceError as e:
                results["cast"] = e.message
                db.session.rollback()
            except Exception as e:  # noqa: BLE001
                results["cast"] = repr(e)
                db.session.rollback()
            finally:
                db.session.remove()

    t1 = threading.Thread(target=close)
    t1.start()
    assert closed.wait(20)
    t2 = threading.Thread(target=cast)
    t2.start()
    time.sleep(0.5)
    release.set()
    for t in (t1, t2):
        t.join(30)
    assert not t1.is_alive() and not t2.is_alive()
    assert results == {"close": "rejected", "cast": "表决已结束。"}
    assert _votes(item_id) == []
    assert db.session.get(AgendaItem, item_id).result_yes == 0


# -- any engine: the database holds the rule ------------------------------------------------------
def test_duplicate_vote_inserted_around_the_service_is_refused_by_the_database(app, world,
                                                                                 open_item):
    item_id, _ = open_item(check_in=[world.hh1])
    svc.cast_vote(db.session.get(AgendaItem, item_id), world.hh1.id, "yes")
    db.session.commit()
    db.session.add(Vote(item_id=item_id, household_id=world.hh1.id, choice="no"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert [v.choice for v in _votes(item_id)] == ["yes"]


def test_duplicate_attendance_and_code_are_refused_by_the_database(app, world, open_item):
    _, meeting_id = open_item(check_in=[world.hh1])
    att = db.session.scalar(select(Attendance).where(Attendance.meeting_id == meeting_id))
    db.session.add(Attendance(meeting_id=meeting_id, household_id=world.hh1.id,
                              checked_in_by_id=world.village_staff.id))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add(Attendance(meeting_id=meeting_id, household_id=world.hh1x.id,
                              checked_in_by_id=world.village_staff.id, code=att.code))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert svc.present_count(meeting_id) == 1
