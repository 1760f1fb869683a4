"""Points earned by the other domains' records, in the same transaction: a duty log pays its
邻长 by the item's rule; a request answered within its level's deadline pays 按时响应 to whoever
answered it; a request closed at 邻 pays 微事不出邻 to the closer, taken back when the resident
reopens it."""

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.blueprints.duties import services as duties
from portal.blueprints.duties.models import DutyLog
from portal.blueprints.points import services as points
from portal.blueprints.points.models import PointsEntry
from portal.blueprints.regions.models import Household
from portal.blueprints.requests import services as requests
from portal.errors import ServiceError
from portal.extensions import db
from tests.points.conftest import count, deltas, entries, item, rule_of
from tests.requests.conftest import HOUR, NOW

MINUTE = timedelta(minutes=1)
ANSWER = "已经换好了楼道灯，晚上可以正常照明。"


def loaded(household):
    db.session.expire_all()
    return db.session.scalar(select(Household).options(joinedload(Household.neighborhood))
                             .where(Household.id == household.id))


def log(world, at, token=None, k=1, household=None, now=None):
    return duties.log_duty(world.neighbor_chief, loaded(household or world.hh1),
                           duty_item_id=item(world.town, "duty", k).id, method="phone",
                           occurred_at=at, note="电话问候", photo=None,
                           token=token or str(uuid.uuid4()), now=now or at + MINUTE)


def events(user) -> list[str]:
    return [rule_of(e).event for e in entries(user)]


# -- duty logs --------------------------------------------------------------------------------
def test_a_duty_log_pays_its_chief_in_the_same_transaction(world):
    entry, created = log(world, NOW)
    assert created
    paid = entries(world.neighbor_chief)
    assert [(e.delta, e.source_type, e.source_id, e.at, e.path) for e in paid] == [
        (1, "duty_log", entry.id, NOW, world.hood1.path)]
    assert rule_of(paid[0]).item_id == item(world.town, "duty", 1).id
    assert paid[0].operator_id is None
    # not committed: rolling back takes both away
    db.session.rollback()
    assert count(DutyLog) == 0 and count(PointsEntry) == 0

    entry, _ = log(world, NOW)
    db.session.commit()
    assert count(DutyLog) == 1 and points.balance(world.neighbor_chief.id) == 1


def test_twenty_logs_in_an_evening_pay_at_most_the_daily_cap(world):
    evening = datetime(2026, 11, 16, 11, 0)  # 19:00 in Shanghai
    households = [world.hh1, world.hh1x]
    for n in range(20):
        _, created = log(world, evening + n * 5 * MINUTE, household=households[n % 2],
                         now=evening + 3 * HOUR)
        assert created
        db.session.commit()
    assert count(DutyLog) == 20
    assert deltas(world.neighbor_chief) == [1] * 5  # the default rule: 1 a log, 5 a day
    # the next local day pays again
    log(world, datetime(2026, 11, 16, 16, 30), now=datetime(2026, 11, 16, 17))
    db.session.commit()
    assert points.balance(world.neighbor_chief.id) == 6


def test_the_same_form_sent_twice_pays_once(world):
    token = str(uuid.uuid4())
    first, created = log(world, NOW, token=token)
    db.session.commit()
    again, created_again = log(world, NOW, token=token)
    db.session.commit()
    assert created and not created_again and again.id == first.id
    assert count(DutyLog) == 1
    assert deltas(world.neighbor_chief) == [1]


# -- requests ---------------------------------------------------------------------------------
@pytest.fixture
def new_request(world, make_request, load_household):
    """new_request() → the id of a new request of 甲1家 (邻 hood1) made at NOW."""

    def make(**kw):
        return make_request(load_household(world.hh1.id), **kw).id

    return make


def act(fn, user, rid, now, *args, scope_of):
    fn(user, scope_of(user), requests.load(rid), now, *args)
    db.session.commit()


def test_chief_answering_within_four_hours_is_paid_on_time(world, new_request, scope_of):
    rid = new_request()
    act(requests.acknowledge, world.neighbor_chief, rid, NOW + 4 * HOUR - MINUTE,
        scope_of=scope_of)
    paid = entries(world.neighbor_chief)
    assert [(e.delta, e.source_type, e.source_id) for e in paid] == [(2, "request", rid)]
    assert events(world.neighbor_chief) == ["request_on_time"]
    assert paid[0].at == NOW + 4 * HOUR - MINUTE and paid[0].path == world.hood1.path


def test_after_the_neighborhood_deadline_only_the_group_chief_is_paid(world, new_request,
                                                                      scope_of):
    rid = new_request()
    late = NOW + 4 * HOUR + MINUTE  # escalated to 组 by the deadline
    with pytest.raises(ServiceError):
        act(requests.acknowledge, world.neighbor_chief, rid, late, scope_of=scope_of)
    db.session.rollback()
    with pytest.raises(ServiceError):
        act(requests.close, world.neighbor_chief, rid, late, ANSWER, scope_of=scope_of)
    db.session.rollback()
    assert entries(world.neighbor_chief) == []

    act(requests.acknowledge, world.group_chief, rid, late + HOUR, scope_of=scope_of)
    req = requests.load(rid)
    assert (req.level, req.missed) == (1, 1)
    assert events(world.group_chief) == ["request_on_time"]
    assert deltas(world.group_chief) == [2]
    assert entries(world.neighbor_chief) == []


def test_group_chief_answering_after_the_group_deadline_is_not_paid(world, new_request,
                                                                   scope_of):
    rid = new_request()
    # 4 h at 邻, then 24 h at 组: both passed; at 村 now, answered in time there
    act(requests.acknowledge, world.village_staff, rid, NOW + 29 * HOUR, scope_of=scope_of)
    assert requests.load(rid).missed == 0b11
    assert events(world.village_staff) == ["request_on_time"]
    assert entries(world.group_chief) == [] and entries(world.neighbor_chief) == []


def test_closing_at_the_neighborhood_pays_the_closer(world, new_request, scope_of):
    rid = new_request()
    act(requests.acknowledge, world.neighbor_chief, rid, NOW + HOUR, scope_of=scope_of)
    act(requests.close, world.neighbor_chief, rid, NOW + 2 * HOUR, ANSWER, scope_of=scope_of)
    assert events(world.neighbor_chief) == ["request_on_time", "request_at_neighborhood"]
    assert deltas(world.neighbor_chief) == [2, 3]
    # closing again is refused and pays nothing more
    with pytest.raises(ServiceError):
        act(requests.close, world.neighbor_chief, rid, NOW + 3 * HOUR, ANSWER,
            scope_of=scope_of)
    db.session.rollback()
    assert points.balance(world.neighbor_chief.id) == 5


def test_closing_straight_from_new_pays_on_time_too(world, new_request, scope_of):
    rid = new_request()
    act(requests.close, world.neighbor_chief, rid, NOW + 3 * HOUR, ANSWER, scope_of=scope_of)
    assert events(world.neighbor_chief) == ["request_on_time", "request_at_neighborhood"]
    assert points.balance(world.neighbor_chief.id) == 5


def test_putting_it_on_the_board_in_time_is_a_response_too(world, new_request, scope_of):
    rid = new_request()
    act(requests.offer_to_helpers, world.neighbor_chief, rid, NOW + HOUR, "请志愿者帮忙",
        scope_of=scope_of)
    assert events(world.neighbor_chief) == ["request_on_time"]


def test_a_reopen_takes_back_the_neighborhood_award_only(world, new_request, scope_of):
    rid = new_request()
    act(requests.acknowledge, world.neighbor_chief, rid, NOW + HOUR, scope_of=scope_of)
    act(requests.close, world.neighbor_chief, rid, NOW + 2 * HOUR, ANSWER, scope_of=scope_of)
    requests.reopen(requests.load(rid), "灯还是不亮，请再来看看。", NOW + 2 * 24 * HOUR)
    db.session.commit()
    paid = entries(world.neighbor_chief)
    assert [(e.kind, e.delta) for e in paid] == [("award", 2), ("award", 3), ("reversal", -3)]
    assert paid[2].reverses_id == paid[1].id and paid[2].at == paid[1].at
    assert paid[2].operator_id is None and "重新打开" in paid[2].reason
    assert points.balance(world.neighbor_chief.id) == 2


def test_closing_at_the_group_pays_no_neighborhood_points(world, new_request, scope_of):
    rid = new_request()
    act(requests.acknowledge, world.neighbor_chief, rid, NOW + HOUR, scope_of=scope_of)
    act(requests.escalate, world.neighbor_chief, rid, NOW + 2 * HOUR, "需要组里协调。",
        scope_of=scope_of)
    act(requests.close, world.group_chief, rid, NOW + 3 * HOUR, ANSWER, scope_of=scope_of)
    req = requests.load(rid)
    assert (req.status, req.closed_level) == ("closed", 1)
    assert events(world.neighbor_chief) == ["request_on_time"]
    # the group chief closed it straight from new at 组, in time: on time only
    assert events(world.group_chief) == ["request_on_time"]
    assert [e for e in entries() if rule_of(e).event == "request_at_neighborhood"] == []
