"""六不得 breaches (recorded by a supervisor, answered by the 邻长, withdrawn by staff) and the
rewards store (redeem, voucher, mark used), including the last-ticket race on PostgreSQL."""

from datetime import date, datetime, timedelta
from unittest import mock

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import Breach, PointsEntry, Redemption, Reward
from portal.errors import ServiceError
from portal.extensions import db
from tests.conftest import TEST_DB_URL, load_user, run_at_once
from tests.points.conftest import count, deltas, entries, item, post_of, rule_of

TODAY = date(2026, 11, 16)
NOW = datetime(2026, 11, 16, 2, 0)
EVIDENCE = "11月10日收受联系户礼品，有照片和两位村民证言。"


# -- breaches -----------------------------------------------------------------------------------
def breach(world, actor, scope_of, k=0, on=date(2026, 11, 10), evidence=EVIDENCE, post=None):
    b = svc.record_breach(actor, scope_of(actor), post or post_of(world.neighbor_chief),
                          item(world.town, "negative", k).id, on, evidence, today=TODAY)
    db.session.commit()
    return b


@pytest.mark.parametrize("who", ["group_chief", "area_chief", "village_staff", "town_staff"])
def test_a_supervisor_records_a_breach_and_points_are_deducted(world, scope_of, who):
    actor = getattr(world, who)
    b = breach(world, actor, scope_of, k=1)
    assert (b.user_id, b.path, b.recorded_by_id, b.occurred_on) == (
        world.neighbor_chief.id, world.hood1.path, actor.id, date(2026, 11, 10))
    paid = entries(world.neighbor_chief)
    assert [(e.kind, e.delta, e.source_type, e.source_id) for e in paid] == [
        ("award", -10, "breach", b.id)]
    rule = rule_of(paid[0])
    assert (rule.event, rule.item_id) == ("breach", item(world.town, "negative", 1).id)
    # dated on the day it happened (local noon)
    assert paid[0].at == datetime(2026, 11, 10, 4, 0)
    assert svc.balance(world.neighbor_chief.id) == -10
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "breach.create"))
    assert audit.object_id == b.id and audit.user_id == actor.id


def test_a_breach_by_the_rule_in_force_on_its_date(world, scope_of):
    negative = item(world.town, "negative", 0)
    svc.change_rule(world.town_staff, world.town, "breach", negative.id, points=-30,
                    daily_cap=None, monthly_cap=None, effective_from=date(2026, 11, 12),
                    today=date(2026, 11, 1))
    db.session.commit()
    breach(world, world.group_chief, scope_of, on=date(2026, 11, 11))
    breach(world, world.group_chief, scope_of, on=date(2026, 11, 12))
    assert deltas(world.neighbor_chief) == [-10, -30]


@pytest.mark.parametrize("who", ["neighbor_chief", "neighbor_chief2", "volunteer", "nobody"])
def test_chiefs_and_volunteers_may_not_record_a_breach(world, scope_of, who):
    with pytest.raises(PermissionError):
        breach(world, getattr(world, who), scope_of)
    db.session.rollback()
    assert count(Breach) == 0 and count(PointsEntry) == 0


def test_a_group_chief_of_another_group_may_not_record(world, scope_of, make_user):
    other = make_user("组长二", "13800000210", role="group_chief", region=world.group2)
    with pytest.raises(PermissionError):
        breach(world, other, scope_of)
    with pytest.raises(PermissionError):  # and village 1's staff not in village 2
        breach(world, world.village_staff, scope_of, post=post_of(world.neighbor_chief2))


def test_breach_refusals(world, scope_of, make_user):
    ended = make_user("卸任邻长", "13800000211", role="neighbor_chief", region=world.hood1b)
    post_of(ended).ended_at = NOW - timedelta(days=3)
    db.session.commit()
    cases = [
        (dict(on=TODAY + timedelta(days=1)), "occurred_on"),
        (dict(evidence=""), "evidence"),
        (dict(evidence="   收礼 "), "evidence"),
        (dict(post=post_of(world.group_chief)), None),
        (dict(post=post_of(world.volunteer)), None),
        (dict(post=post_of(ended)), None),
    ]
    for kw, field in cases:
        with pytest.raises(ServiceError) as refused:
            breach(world, world.village_staff, scope_of, **kw)
        assert refused.value.field == field, kw
        db.session.rollback()
    for wrong in (item(world.town, "duty", 0).id, 999_999):
        with pytest.raises(ServiceError) as refused:
            svc.record_breach(world.village_staff, scope_of(world.village_staff),
                              post_of(world.neighbor_chief), wrong, TODAY, EVIDENCE, today=TODAY)
        assert refused.value.field == "item_id"
        db.session.rollback()
    # today is allowed
    breach(world, world.village_staff, scope_of, on=TODAY)
    assert count(Breach) == 1 and count(PointsEntry) == 1


def test_only_the_chief_answers_a_breach(world, scope_of):
    b = breach(world, world.group_chief, scope_of)
    for who in ("group_chief", "village_staff", "neighbor_chief2"):
        with pytest.raises(PermissionError):
            svc.answer_breach(getattr(world, who), b, "我有话说", now=NOW)
    with pytest.raises(ServiceError):
        svc.answer_breach(world.neighbor_chief, b, " ", now=NOW)
    svc.answer_breach(world.neighbor_chief, b, "  礼品已当场退回，有退还记录。 ", now=NOW)
    db.session.commit()
    b = db.session.get(Breach, b.id)
    assert (b.response, b.responded_at) == ("礼品已当场退回，有退还记录。", NOW)
    assert count(AuditEntry, AuditEntry.action == "breach.answer") == 1
    assert svc.balance(world.neighbor_chief.id) == -10  # answering changes no points


def test_staff_withdraw_a_breach_once(world, scope_of):
    b = breach(world, world.group_chief, scope_of)
    with pytest.raises(PermissionError):
        svc.withdraw_breach(world.group_chief, scope_of(world.group_chief), b, "查无实据", NOW)
    with pytest.raises(ServiceError):
        svc.withdraw_breach(world.village_staff, scope_of(world.village_staff), b, "", NOW)
    db.session.rollback()
    svc.withdraw_breach(world.village_staff, scope_of(world.village_staff), b, "查无实据", NOW)
    db.session.commit()
    b = db.session.get(Breach, b.id)
    assert (b.withdrawn_at, b.withdrawn_reason) == (NOW, "查无实据")
    paid = entries(world.neighbor_chief)
    assert [(e.kind, e.delta) for e in paid] == [("award", -10), ("reversal", 10)]
    assert paid[1].operator_id == world.village_staff.id and "查无实据" in paid[1].reason
    assert paid[1].at == paid[0].at
    assert svc.balance(world.neighbor_chief.id) == 0
    with pytest.raises(ServiceError):
        svc.withdraw_breach(world.village_staff, scope_of(world.village_staff), b, "再撤一次",
                            NOW)
    db.session.rollback()
    assert count(PointsEntry) == 2
    assert count(AuditEntry, AuditEntry.action == "breach.withdraw") == 1


# -- rewards ------------------------------------------------------------------------------------
def reward(town, cost=30, stock=5, valid_from=date(2026, 10, 1),
           valid_until=date(2026, 12, 31), name="村BA观赛门票", active=True) -> Reward:
    r = Reward(town_id=town.id, name=name, cost=cost, stock=stock, valid_from=valid_from,
               valid_until=valid_until, active=active)
    db.session.add(r)
    db.session.commit()
    return r


def stock(reward_id) -> int:
    db.session.expire_all()
    return db.session.get(Reward, reward_id).stock


def written() -> tuple:
    return (count(Redemption), count(PointsEntry, PointsEntry.kind == "spend"),
            count(AuditEntry, AuditEntry.action == "reward.redeem"))


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(svc, "utcnow", lambda: NOW)
    return NOW


def redeem(world, reward_id, user=None, today=TODAY):
    user = user or world.neighbor_chief
    return svc.redeem(user, reward_id, world.hood1.path, today=today)


def test_redeeming_spends_points_and_issues_a_voucher(world, give, frozen):
    give(world.neighbor_chief, world.hood1, NOW - timedelta(days=3), n=2)  # 40
    r = reward(world.town, cost=30, stock=5)
    red = redeem(world, r.id)
    db.session.commit()
    red = db.session.get(Redemption, red.id)
    assert (red.reward_id, red.user_id, red.cost, red.status, red.path) == (
        r.id, world.neighbor_chief.id, 30, "issued", world.hood1.path)
    assert len(red.code) == 10 and set(red.code) <= set(svc.CODE_ALPHABET)
    spend = entries(world.neighbor_chief, kind="spend")
    assert [(e.delta, e.source_type, e.source_id, e.operator_id, e.at) for e in spend] == [
        (-30, "redemption", red.id, world.neighbor_chief.id, NOW)]
    assert svc.balance(world.neighbor_chief.id) == 10
    assert stock(r.id) == 4
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "reward.redeem"))
    assert audit.object_id == red.id and audit.user_id == world.neighbor_chief.id
    # the code differs from one voucher to the next
    give(world.neighbor_chief, world.hood1, NOW - timedelta(days=2))
    other = redeem(world, r.id)
    db.session.commit()
    assert other.code != red.code and stock(r.id) == 3


def test_not_enough_points_says_how_many_and_writes_nothing(world, give, frozen):
    give(world.neighbor_chief, world.hood1, NOW - timedelta(days=3))  # 20
    r = reward(world.town, cost=30)
    before = written()
    with pytest.raises(ServiceError) as refused:
        redeem(world, r.id)
    assert "积分不足" in refused.value.message
    assert "30" in refused.value.message and "20" in refused.value.message
    db.session.rollback()
    assert written() == before and stock(r.id) == 5
    assert svc.balance(world.neighbor_chief.id) == 20
    # exactly enough is enough
    give(world.neighbor_chief, world.hood1, NOW - timedelta(days=2))
    r2 = reward(world.town, cost=40, name="红色电影观影券")
    redeem(world, r2.id)
    db.session.commit()
    assert svc.balance(world.neighbor_chief.id) == 0


def test_refused_rewards(world, give, frozen, make_region):
    give(world.neighbor_chief, world.hood1, NOW - timedelta(days=3), n=5)  # 100
    other_town = make_region("另一镇")
    cases = [
        (reward(world.town, stock=0), "兑完"),
        (reward(world.town, valid_from=TODAY + timedelta(days=1)), "兑换期"),
        (reward(world.town, valid_until=TODAY - timedelta(days=1)), "兑换期"),
        (reward(world.town, active=False), "没有这项奖励"),
        (reward(other_town), "没有这项奖励"),
    ]
    before = written()
    for r, message in cases:
        with pytest.raises(ServiceError) as refused:
            redeem(world, r.id)
        assert message in refused.value.message, r.name
        db.session.rollback()
    with pytest.raises(ServiceError):
        redeem(world, 999_999)
    db.session.rollback()
    assert written() == before and svc.balance(world.neighbor_chief.id) == 100
    assert stock(cases[0][0].id) == 0
    # the first and last day of validity are inside it
    edge = reward(world.town, valid_from=TODAY, valid_until=TODAY)
    redeem(world, edge.id)
    db.session.commit()
    assert svc.balance(world.neighbor_chief.id) == 70


def test_staff_mark_a_voucher_used_once(world, give, frozen, scope_of):
    give(world.neighbor_chief, world.hood1, NOW - timedelta(days=3), n=2)
    red = redeem(world, reward(world.town).id)
    db.session.commit()
    for who in ("neighbor_chief", "group_chief", "volunteer", "neighbor_chief2"):
        with pytest.raises(PermissionError):
            svc.mark_used(getattr(world, who), scope_of(getattr(world, who)), red, NOW)
    svc.mark_used(world.village_staff, scope_of(world.village_staff), red, NOW + timedelta(hours=1))
    db.session.commit()
    red = db.session.get(Redemption, red.id)
    assert (red.status, red.used_at, red.used_by_id) == (
        "used", NOW + timedelta(hours=1), world.village_staff.id)
    with pytest.raises(ServiceError):
        svc.mark_used(world.town_staff, scope_of(world.town_staff), red, NOW)
    db.session.rollback()
    assert count(AuditEntry, AuditEntry.action == "reward.use") == 1
    assert svc.balance(world.neighbor_chief.id) == 10  # using a voucher costs nothing more


# -- races (PostgreSQL) -------------------------------------------------------------------------
def _at_once(app, jobs):
    """Run ``jobs`` [(key, user_id, reward_id, path)] in threads, each with its own app context and
    session, all redeeming at the same moment; returns {key: "won" | message}."""
    def job(user_id, reward_id, path):
        def redeem(user):
            with mock.patch.object(svc, "utcnow", lambda: NOW):
                svc.redeem(user, reward_id, path, today=TODAY)
            return "won"

        return (lambda: load_user(user_id)), redeem

    results = run_at_once(app, [job(*rest) for _key, *rest in jobs])
    return {key: r if r == "won" else r[1] for (key, *_), r in zip(jobs, results, strict=True)}


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
@pytest.mark.parametrize("people", [2, 8])
def test_the_last_ticket_goes_to_one_person(app, world, give, make_user, people):
    users = [make_user(f"邻长{k}", f"1380000040{k}", role="neighbor_chief", region=world.hood1)
             for k in range(people)]
    for u in users:
        give(u, world.hood1, NOW - timedelta(days=3), n=2)  # 40 each
    r = reward(world.town, cost=30, stock=1)
    rid = r.id
    db.session.commit()
    db.session.rollback()
    results = _at_once(app, [(u.id, u.id, rid, world.hood1.path) for u in users])

    assert sorted(results.values()) == ["won"] + ["这项奖励已经兑完了。"] * (people - 1), results
    winner = next(k for k, v in results.items() if v == "won")
    db.session.rollback()
    assert stock(rid) == 0
    reds = list(db.session.scalars(select(Redemption)))
    assert [(x.user_id, x.reward_id) for x in reds] == [(winner, rid)]
    assert count(PointsEntry, PointsEntry.kind == "spend") == 1
    for u in users:
        assert svc.balance(u.id) == (10 if u.id == winner else 40)


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DB_URL, reason="needs PostgreSQL: set PORTAL_TEST_DATABASE_URL")
@pytest.mark.parametrize("round_", range(3))
def test_one_person_redeeming_twice_at_once_never_goes_below_zero(app, world, give, round_):
    chief = world.neighbor_chief
    give(chief, world.hood1, NOW - timedelta(days=3))  # 20: exactly one redemption
    first = reward(world.town, cost=20, stock=5, name="印山红游船票").id
    second = reward(world.town, cost=20, stock=5, name="环湖巴士票").id
    db.session.rollback()
    results = _at_once(app, [(first, chief.id, first, world.hood1.path),
                             (second, chief.id, second, world.hood1.path)])

    assert sorted(results.values(), key=lambda v: v != "won")[0] == "won", results
    lost = [v for v in results.values() if v != "won"]
    assert len(lost) == 1 and "积分不足" in lost[0], results
    db.session.rollback()
    assert count(Redemption) == 1
    assert svc.balance(chief.id) == 0
    assert sorted([stock(first), stock(second)]) == [4, 5]
