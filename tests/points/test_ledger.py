"""The 积分 ledger through its services: default rules, versioned rules priced by the event's
local (Asia/Shanghai) date, daily and monthly caps at the local day and month edges, a record
paid once, reversals, and the public ranking with ties.

A local day runs 16:00 UTC to 16:00 UTC; every datetime here is naive UTC."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import PointsEntry, PointsRule
from portal.errors import ServiceError
from portal.extensions import db
from tests.points.conftest import count, deltas, entries, item

#: 2026-11-16 10:00 in Asia/Shanghai.
NOW = datetime(2026, 11, 16, 2, 0)
TODAY = date(2026, 11, 16)


def pay(user, region, at, source_id, event="duty_log", item_id=None, source_type=None):
    return svc.award(user.id, event, source_type or event, source_id, at=at, path=region.path,
                     item_id=item_id)


def set_rule(world, points=3, daily=5, monthly=None, effective=TODAY, event="duty_log", k=0,
             active=True):
    it = item(world.town, "negative" if event == "breach" else "duty", k) \
        if event in ("duty_log", "breach") else None
    rule = svc.change_rule(world.town_staff, world.town, event, it.id if it else None,
                           points=points, daily_cap=daily, monthly_cap=monthly,
                           effective_from=effective, active=active,
                           today=min(TODAY, effective))
    db.session.commit()
    return rule, it


# -- default rules ----------------------------------------------------------------------------
def test_default_rules_of_a_new_town(world):
    rules = list(db.session.scalars(select(PointsRule).where(
        PointsRule.town_id == world.town.id)))
    duty_ids = {item(world.town, "duty", k).id for k in range(7)}
    negative_ids = {item(world.town, "negative", k).id for k in range(6)}
    by_event = {}
    for r in rules:
        by_event.setdefault(r.event, []).append(r)
    assert {e: len(rs) for e, rs in by_event.items()} == {
        "duty_log": 7, "breach": 6, "request_on_time": 1, "request_at_neighborhood": 1,
        "agenda_raise": 1, "agenda_attend": 1, "commendation": 1}
    assert {r.item_id for r in by_event["duty_log"]} == duty_ids
    assert {r.item_id for r in by_event["breach"]} == negative_ids
    for event, points, daily, monthly in svc.DEFAULT_RULES:
        for r in by_event[event]:
            assert (r.points, r.daily_cap, r.monthly_cap, r.active, r.effective_from) == (
                points, daily, monthly, True, svc.DEFAULT_EFFECTIVE)
            if event not in ("duty_log", "breach"):
                assert r.item_id is None
    assert all(r.points < 0 for r in by_event["breach"])

    # another town gets its own set, on its own items
    from portal.blueprints.regions.services import create_region

    other = create_region(None, None, "另一镇")
    db.session.commit()
    assert count(PointsRule, PointsRule.town_id == other.id) == 18
    assert item(other, "duty", 0).id not in duty_ids


def test_current_rules_show_the_version_in_force(world):
    assert len(svc.current_rules(world.town.id, TODAY)) == 18
    new, it = set_rule(world, points=4, daily=8, effective=TODAY + timedelta(days=4))
    now_rules = {(r.event, r.item_id): r for r in svc.current_rules(world.town.id, TODAY)}
    later = {(r.event, r.item_id): r for r in
             svc.current_rules(world.town.id, TODAY + timedelta(days=4))}
    assert len(now_rules) == len(later) == 18
    assert now_rules[("duty_log", it.id)].points == 1
    assert later[("duty_log", it.id)].id == new.id and later[("duty_log", it.id)].points == 4
    # switched off: still listed (to show it), and pays nothing
    off, _ = set_rule(world, points=4, effective=TODAY + timedelta(days=6), active=False)
    latest = {(r.event, r.item_id): r for r in
              svc.current_rules(world.town.id, TODAY + timedelta(days=6))}
    assert latest[("duty_log", it.id)].id == off.id and not off.active
    assert svc.rule_for(world.town.id, "duty_log", it.id, TODAY + timedelta(days=6)) is None
    assert pay(world.neighbor_chief, world.hood1, datetime(2026, 11, 23, 2), 1,
               item_id=it.id) is None


# -- rule changes ---------------------------------------------------------------------------
def test_rule_change_applies_from_its_local_effective_date_only(world):
    it = item(world.town, "duty", 0)
    effective = date(2026, 11, 20)
    rule, _ = set_rule(world, points=4, daily=10, effective=effective)
    audit = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "points_rule.change"))
    assert audit is not None and audit.object_id == rule.id and audit.user_id == \
        world.town_staff.id

    chief, hood = world.neighbor_chief, world.hood1
    # an event before the change, paid after it was decided: the old price
    assert pay(chief, hood, datetime(2026, 11, 18, 2), 1, item_id=it.id)
    # 2026-11-19 15:59 UTC is 23:59 on the 19th in Shanghai: still the old version
    assert pay(chief, hood, datetime(2026, 11, 19, 15, 59), 2, item_id=it.id)
    # 2026-11-19 16:00 UTC is midnight of the 20th: the new version
    assert pay(chief, hood, datetime(2026, 11, 19, 16, 0), 3, item_id=it.id)
    assert pay(chief, hood, datetime(2026, 11, 25, 2), 4, item_id=it.id)
    # an event of before the date, recorded late (after the change took effect): old price
    assert pay(chief, hood, datetime(2026, 11, 17, 2), 5, item_id=it.id)
    db.session.commit()
    got = [(e.source_id, e.delta, e.rule_id == rule.id) for e in entries(chief)]
    assert got == [(1, 1, False), (2, 1, False), (3, 4, True), (4, 4, True), (5, 1, False)]
    # the other items keep their price
    assert pay(chief, hood, datetime(2026, 11, 25, 2), 6, item_id=item(world.town, "duty", 1).id)
    assert deltas(chief)[-1] == 1


def test_rule_change_refusals(world):
    duty, negative = item(world.town, "duty", 0), item(world.town, "negative", 0)
    staff, town = world.town_staff, world.town

    def change(event, item_id, points, effective=TODAY, **caps):
        return svc.change_rule(staff, town, event, item_id, points=points,
                               daily_cap=caps.get("daily"), monthly_cap=caps.get("monthly"),
                               effective_from=effective, today=TODAY)

    refusals = [
        (lambda: change("duty_log", duty.id, 2, TODAY - timedelta(days=1)), "effective_from"),
        (lambda: change("breach", negative.id, 5), "points"),
        (lambda: change("duty_log", duty.id, -2), "points"),
        (lambda: change("request_on_time", None, -2), "points"),
        (lambda: change("breach", None, -5), "item_id"),
        (lambda: change("breach", duty.id, -5), "item_id"),
        (lambda: change("duty_log", negative.id, 2), "item_id"),
        (lambda: change("duty_log", None, 2), "item_id"),
        (lambda: change("request_on_time", duty.id, 2), "item_id"),
        (lambda: change("duty_log", duty.id, 0), "points"),
        (lambda: change("duty_log", duty.id, 2, daily=0), "daily_cap"),
        (lambda: change("nonsense", None, 2), "event"),
    ]
    before = count(PointsRule)
    for attempt, field in refusals:
        with pytest.raises(ServiceError) as refused:
            attempt()
        assert refused.value.field == field, (field, refused.value.message)
    assert count(PointsRule) == before
    # today itself is allowed, and a breach with a 六不得 item and a negative value
    change("duty_log", duty.id, 2, TODAY)
    change("breach", negative.id, -20, TODAY + timedelta(days=1))
    db.session.commit()
    assert count(PointsRule) == before + 2

    # another town's item is refused
    from portal.blueprints.regions.services import create_region

    other = create_region(None, None, "另一镇")
    db.session.commit()
    with pytest.raises(ServiceError):
        change("duty_log", item(other, "duty", 0).id, 2)


# -- caps ---------------------------------------------------------------------------------------
def test_daily_cap_at_the_local_day_edge(world):
    _, it = set_rule(world, points=3, daily=5, effective=date(2026, 11, 1))
    chief, hood = world.neighbor_chief, world.hood1
    late = datetime(2026, 11, 20, 15, 59)  # 23:59 on the 20th in Shanghai
    assert pay(chief, hood, late - timedelta(hours=3), 1, item_id=it.id)
    trimmed = pay(chief, hood, late, 2, item_id=it.id)
    assert trimmed is not None
    assert pay(chief, hood, late, 3, item_id=it.id) is None  # cap reached: nothing
    # the same UTC date, one minute later: a new local day
    assert pay(chief, hood, datetime(2026, 11, 20, 16, 0), 4, item_id=it.id)
    assert pay(chief, hood, datetime(2026, 11, 20, 0, 0), 5, item_id=it.id) is None  # 08:00 20th
    db.session.commit()
    got = entries(chief)
    assert [(e.source_id, e.delta) for e in got] == [(1, 3), (2, 2), (4, 3)]
    assert "上限" in got[1].reason and "上限" not in got[0].reason
    assert svc.balance(chief.id) == 8
    # the cap is per person: another 邻长 the same evening is paid in full
    assert pay(world.neighbor_chief2, world.hood2, late, 6, item_id=it.id)
    assert deltas(world.neighbor_chief2) == [3]
    # and per rule: another item is not capped by this one
    assert pay(chief, hood, late, 7, item_id=item(world.town, "duty", 1).id)


def test_monthly_cap_at_the_local_month_edge(world):
    _, it = set_rule(world, points=4, daily=None, monthly=10, effective=date(2026, 11, 1))
    chief, hood = world.neighbor_chief, world.hood1
    # 2026-10-31 16:00 UTC is the first minute of November in Shanghai
    assert pay(chief, hood, datetime(2026, 10, 31, 16, 0), 1, item_id=it.id)
    assert pay(chief, hood, datetime(2026, 11, 10, 2), 2, item_id=it.id)
    assert pay(chief, hood, datetime(2026, 11, 30, 15, 59), 3, item_id=it.id)  # 2 left of 10
    assert pay(chief, hood, datetime(2026, 11, 30, 15, 59), 4, item_id=it.id) is None
    assert pay(chief, hood, datetime(2026, 11, 30, 16, 0), 5, item_id=it.id)  # 1 Dec local
    # 2026-10-31 15:59 UTC is still October (the old version: 1 point, monthly cap 60)
    assert pay(chief, hood, datetime(2026, 10, 31, 15, 59), 6, item_id=it.id)
    db.session.commit()
    got = entries(chief)
    assert [(e.source_id, e.delta) for e in got] == [(1, 4), (2, 4), (3, 2), (5, 4), (6, 1)]
    assert "上限" in got[2].reason


def test_caps_count_across_rule_versions(world):
    chief, hood = world.neighbor_chief, world.hood1
    old, it = set_rule(world, points=3, daily=None, monthly=10, effective=date(2026, 11, 16))
    new, _ = set_rule(world, points=4, daily=None, monthly=10, effective=date(2026, 11, 20))
    assert pay(chief, hood, datetime(2026, 11, 17, 2), 1, item_id=it.id)  # 3
    assert pay(chief, hood, datetime(2026, 11, 18, 2), 2, item_id=it.id)  # 3
    assert pay(chief, hood, datetime(2026, 11, 21, 2), 3, item_id=it.id)  # 4 of 4 left
    assert pay(chief, hood, datetime(2026, 11, 22, 2), 4, item_id=it.id) is None
    db.session.commit()
    assert [(e.delta, e.rule_id) for e in entries(chief)] == [
        (3, old.id), (3, old.id), (4, new.id)]

    # the same on a day: a second version from the same date replaces the first, and the
    # day's cap counts what the first paid
    same_day, _ = set_rule(world, points=2, daily=3, monthly=None, effective=date(2026, 12, 1))
    assert pay(chief, hood, datetime(2026, 12, 1, 2), 5, item_id=it.id)  # 2
    replaced, _ = set_rule(world, points=2, daily=3, monthly=None, effective=date(2026, 12, 1))
    assert pay(chief, hood, datetime(2026, 12, 1, 3), 6, item_id=it.id)  # 1 left
    db.session.commit()
    assert [(e.delta, e.rule_id) for e in entries(chief)][-2:] == [
        (2, same_day.id), (1, replaced.id)]


def test_a_reversed_award_frees_its_room_under_the_cap(world):
    _, it = set_rule(world, points=3, daily=5, effective=date(2026, 11, 1))
    chief, hood = world.neighbor_chief, world.hood1
    at = datetime(2026, 11, 20, 2)
    first = pay(chief, hood, at, 1, item_id=it.id)
    pay(chief, hood, at, 2, item_id=it.id)  # 2
    assert pay(chief, hood, at, 3, item_id=it.id) is None
    svc.reverse(db.session.get(PointsEntry, first), "记错了户", world.village_staff)
    assert pay(chief, hood, at, 3, item_id=it.id)  # 3 of 3 left
    assert pay(chief, hood, at, 4, item_id=it.id) is None
    db.session.commit()
    assert deltas(chief) == [3, 2, -3, 3]
    assert svc.balance(chief.id) == 5


def test_a_record_paid_twice_pays_once(world):
    it = item(world.town, "duty", 0)
    chief, hood = world.neighbor_chief, world.hood1
    at = datetime(2026, 11, 20, 2)
    assert pay(chief, hood, at, 1, item_id=it.id) is not None
    assert pay(chief, hood, at, 1, item_id=it.id) is None
    assert pay(chief, hood, at + timedelta(hours=1), 1, item_id=it.id) is None
    db.session.commit()
    assert deltas(chief) == [1]
    # another record, another person or another event is another award
    assert pay(chief, hood, at, 2, item_id=it.id)
    assert pay(world.neighbor_chief2, world.hood2, at, 1, item_id=it.id)
    assert pay(chief, hood, at, 1, event="request_on_time", source_type="duty_log")
    db.session.commit()
    assert count(PointsEntry) == 4


def test_no_rule_pays_nothing(world):
    from portal.blueprints.regions.services import create_region

    chief, hood = world.neighbor_chief, world.hood1
    assert pay(chief, hood, datetime(2019, 12, 31, 2), 1, item_id=item(world.town).id) is None
    other = create_region(None, None, "另一镇")
    db.session.commit()
    # an item of another town has no rule in this town
    assert pay(chief, hood, datetime(2026, 11, 20, 2), 2, item_id=item(other).id) is None
    assert count(PointsEntry) == 0


# -- reversals ------------------------------------------------------------------------------
def test_reverse_writes_an_opposite_entry_dated_like_the_original(world):
    chief, hood = world.neighbor_chief, world.hood1
    it = item(world.town)
    at = datetime(2026, 10, 5, 2)
    eid = pay(chief, hood, at, 1, item_id=it.id)
    pay(chief, hood, at, 2, item_id=it.id)
    db.session.commit()
    original = db.session.get(PointsEntry, eid)
    later = datetime(2026, 11, 16, 2)
    back = svc.reverse(original, "  重复记录  ", world.village_staff, now=later)
    db.session.commit()
    assert (back.kind, back.delta, back.reverses_id, back.user_id, back.rule_id) == (
        "reversal", -1, eid, chief.id, original.rule_id)
    assert (back.at, back.created_at, back.operator_id, back.reason) == (
        at, later, world.village_staff.id, "重复记录")
    assert back.path == original.path
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "points.reverse"))
    assert audit.object_id == back.id and audit.user_id == world.village_staff.id
    assert svc.balance(chief.id) == sum(deltas(chief)) == 1

    with pytest.raises(ServiceError) as twice:
        svc.reverse(original, "再冲一次", world.village_staff, now=later)
    assert "冲正过" in twice.value.message
    with pytest.raises(ServiceError) as of_reversal:
        svc.reverse(back, "冲正的冲正", world.village_staff, now=later)
    assert "不能再冲正" in of_reversal.value.message
    db.session.commit()  # the refused attempts left the transaction usable
    assert count(PointsEntry) == 3
    assert count(AuditEntry, AuditEntry.action == "points.reverse") == 1

    other = db.session.get(PointsEntry, eid + 1)
    for reason in ("", "  ", "错"):
        with pytest.raises(ServiceError) as no_reason:
            svc.reverse(other, reason, world.village_staff)
        assert no_reason.value.field == "reason"
    assert count(PointsEntry) == 3
    assert svc.balance(chief.id) == 1


def test_reverse_source_with_and_without_an_event(world):
    chief, hood = world.neighbor_chief, world.hood1
    at = datetime(2026, 11, 16, 2)
    pay(chief, hood, at, 7, event="request_on_time", source_type="request")
    pay(chief, hood, at, 7, event="request_at_neighborhood", source_type="request")
    pay(chief, hood, at, 8, event="request_on_time", source_type="request")
    db.session.commit()
    assert svc.balance(chief.id) == 2 + 3 + 2

    assert svc.reverse_source("request", 7, "居民重新打开了诉求",
                              event="request_at_neighborhood") == 1
    assert svc.reverse_source("request", 7, "居民重新打开了诉求",
                              event="request_at_neighborhood") == 0
    db.session.commit()
    assert svc.balance(chief.id) == 4
    assert svc.reverse_source("request", 7, "记录作废", world.village_staff) == 1
    assert svc.reverse_source("request", 7, "记录作废", world.village_staff) == 0
    db.session.commit()
    assert svc.balance(chief.id) == 2  # request 8 untouched
    assert deltas(chief, kind="reversal") == [-3, -2]
    assert svc.reverse_source("request", 99, "没有这条") == 0


# -- ranking -------------------------------------------------------------------------------
@pytest.fixture
def chiefs(world, make_user):
    """Four more 邻长 in village 1 (on hood1 and hood1b)."""
    return [make_user(name, f"1380000020{k}", role="neighbor_chief",
                      region=world.hood1 if k % 2 else world.hood1b)
            for k, name in enumerate(("丁", "戊", "己", "庚"))]


def test_ranking_per_village_and_town(world, chiefs, give):
    from portal.blueprints.points.models import Reward

    a, b, c, d = chiefs
    start, end = datetime(2026, 10, 31, 16), datetime(2026, 11, 30, 16)  # November, local
    it = item(world.town)
    hood, hoodb = world.hood1, world.hood1b

    def duty(user, region, n, at=datetime(2026, 11, 10, 2)):
        for _ in range(n):
            pay(user, region, at, duty.counter, item_id=it.id)
            duty.counter += 1
    duty.counter = 1

    # 邻长: 3 duty logs + 1 on-time request = 5
    duty(world.neighbor_chief, hood, 3)
    pay(world.neighbor_chief, hood, datetime(2026, 11, 12, 2), 1, event="request_on_time",
        source_type="request")
    # 丁 and 戊: 4 each (tie); 丁 also had an award reversed inside the period
    duty(a, hood, 4)
    extra = pay(a, hood, datetime(2026, 11, 11, 2), 2, event="request_at_neighborhood",
                source_type="request")
    svc.reverse(db.session.get(PointsEntry, extra), "居民重新打开了诉求")
    duty(b, hoodb, 2)
    pay(b, hoodb, datetime(2026, 11, 13, 2), 3, event="request_on_time", source_type="request")
    # 己: 3, and a large award just outside the period on each side
    duty(c, hood, 3)
    give(c, hood, datetime(2026, 10, 31, 15, 59))
    give(c, hood, datetime(2026, 11, 30, 16, 0))
    # 庚: an award in the period reversed (a month later): nets out to 0
    late = pay(d, hoodb, datetime(2026, 11, 29, 2), 4, event="request_on_time",
               source_type="request")
    svc.reverse(db.session.get(PointsEntry, late), "记录作废", world.village_staff,
                now=datetime(2026, 12, 20, 2))
    # 邻长二 in village 2: 5 duty logs (the top of the town, outside village 1)
    duty(world.neighbor_chief2, world.hood2, 5)
    # spending does not count: the 邻长 spends 20 of a commendation earned in October
    give(world.neighbor_chief, hood, datetime(2026, 10, 10, 2))
    reward = Reward(town_id=world.town.id, name="红色电影观影券", cost=20, stock=5,
                    valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31))
    db.session.add(reward)
    db.session.commit()
    from unittest import mock

    with mock.patch.object(svc, "utcnow", lambda: datetime(2026, 11, 20, 2)):
        svc.redeem(world.neighbor_chief, reward.id, hood.path, today=date(2026, 11, 20))
    db.session.commit()
    assert deltas(world.neighbor_chief, kind="spend") == [-20]

    village = svc.ranking(world.village1.path, start, end)
    assert [(r.rank, r.name, r.total) for r in village] == [
        (1, "邻长", 5), (2, "丁", 4), (2, "戊", 4), (4, "己", 3), (5, "庚", 0)]
    by = {r.name: r for r in village}
    assert by["邻长"].by_event == {"duty_log": 3, "request_on_time": 2}
    assert by["丁"].by_event == {"duty_log": 4, "request_at_neighborhood": 0}
    assert by["戊"].by_event == {"duty_log": 2, "request_on_time": 2}
    assert by["己"].by_event == {"duty_log": 3}
    assert by["庚"].by_event == {"request_on_time": 0}
    assert [r.user_id for r in village if r.total == 4] == sorted(
        [a.id, b.id], key=lambda uid: {a.id: "丁", b.id: "戊"}[uid])
    assert "邻长二" not in by

    town = svc.ranking(world.town.path, start, end)
    assert [(r.rank, r.name, r.total) for r in town] == [
        (1, "邻长", 5), (1, "邻长二", 5), (3, "丁", 4), (3, "戊", 4), (5, "己", 3),
        (6, "庚", 0)]
    # a stable order: the same call gives the same list
    assert [r.user_id for r in svc.ranking(world.town.path, start, end)] == [
        r.user_id for r in town]
    # village 2 sees only its own; an empty period is empty
    assert [(r.rank, r.name) for r in svc.ranking(world.village2.path, start, end)] == [
        (1, "邻长二")]
    assert svc.ranking(world.town.path, datetime(2027, 1, 1), datetime(2027, 2, 1)) == []
    # October: the commendation (20) and 己's (20) count; spending in November does not
    october = svc.ranking(world.village1.path, datetime(2026, 9, 30, 16), start)
    assert [(r.rank, r.name, r.total) for r in october] == [(1, "己", 20), (1, "邻长", 20)]


def test_ranking_ties_share_a_rank_with_a_stable_order(world, make_user):
    users = [make_user(f"邻{n}", f"1380000030{k}", role="neighbor_chief", region=world.hood1)
             for k, n in enumerate(("甲", "乙", "丙", "丁"))]
    it = item(world.town)
    at = datetime(2026, 11, 10, 2)
    n = iter(range(1, 100))
    # totals: 乙 3, 甲 2, 丁 2, 丙 1
    for user, times in zip(users, (2, 3, 1, 2), strict=True):
        for _ in range(times):
            pay(user, world.hood1, at, next(n), item_id=it.id)
    db.session.commit()
    rows = svc.ranking(world.village1.path, datetime(2026, 11, 1), datetime(2026, 12, 1))
    assert [r.rank for r in rows] == [1, 2, 2, 4]
    # equal totals in name order (then id): the same list on every call
    assert [r.name for r in rows] == ["邻乙", *sorted(["邻甲", "邻丁"]), "邻丙"]
    again = svc.ranking(world.village1.path, datetime(2026, 11, 1), datetime(2026, 12, 1))
    assert [r.user_id for r in again] == [r.user_id for r in rows]
