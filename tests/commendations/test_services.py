"""好邻 commendation rules: nominate with a statistics snapshot, 公示 with objections, and the
decision only after the notice period and with every objection resolved."""

import uuid
from datetime import date, datetime

import pytest
from sqlalchemy import select

from portal.blueprints.commendations import services as svc
from portal.blueprints.commendations.models import Nomination
from portal.blueprints.duties.models import ChecklistItem, DutyLog
from portal.blueprints.regions.models import Post
from portal.errors import ServiceError
from portal.extensions import db
from portal.scope import Scope
from tests.conftest import load_user

#: Friday 2026-11-20 10:00 in Asia/Shanghai.
NOW = datetime(2026, 11, 20, 2, 0)
DEEDS = "常年义务照看独居老人，组织邻里清理山塘，三年走访不断。"


def scope(user):
    return Scope.for_user(load_user(user.id))


@pytest.fixture
def campaign(world):
    c = svc.create_campaign(world.town_staff, scope(world.town_staff), world.town, {
        "title": "2026 年度测试镇好邻", "honour": "测试好邻", "quota": 1,
        "period_start": date(2026, 1, 1), "period_end": date(2027, 1, 1),
        "notice_start": date(2026, 11, 21), "notice_end": date(2026, 11, 27)}, now=NOW)
    db.session.commit()
    return c


def chief_post(user):
    return db.session.scalar(select(Post).where(Post.user_id == user.id,
                                                Post.role == "neighbor_chief"))


def nominate(world, campaign, user=None):
    n = svc.nominate(world.village_staff, scope(world.village_staff), campaign,
                     chief_post(user or world.neighbor_chief), DEEDS, now=NOW)
    db.session.commit()
    return n


def test_the_snapshot_counts_the_records(world, campaign):
    item = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == world.town.id, ChecklistItem.kind == "duty"))
    for k, voided in ((1, None), (2, None), (3, NOW)):
        db.session.add(DutyLog(household_id=world.hh1.id, neighborhood_id=world.hood1.id,
                               user_id=world.neighbor_chief.id, duty_item_id=item,
                               method="visit", occurred_at=datetime(2026, 3, k, 2),
                               form_token=str(uuid.uuid4()), voided_at=voided))
    db.session.add(DutyLog(household_id=world.hh1.id, neighborhood_id=world.hood1.id,
                           user_id=world.neighbor_chief.id, duty_item_id=item, method="visit",
                           occurred_at=datetime(2025, 12, 31, 2), form_token=str(uuid.uuid4())))
    db.session.commit()
    n = nominate(world, campaign)
    assert n.stats == {"households": 2, "visits": 2, "requests": 0, "disputes": 0,
                       "points": 0}
    assert n.path == world.hood1.path


def test_nomination_rules(world, campaign):
    with pytest.raises(PermissionError):  # a 组长 does not nominate
        svc.nominate(world.group_chief, scope(world.group_chief), campaign,
                     chief_post(world.neighbor_chief), DEEDS, now=NOW)
    with pytest.raises(ServiceError, match="主要事迹"):
        svc.nominate(world.village_staff, scope(world.village_staff), campaign,
                     chief_post(world.neighbor_chief), "很好", now=NOW)
    with pytest.raises(PermissionError):  # village 1's cadre, village 2's 邻长
        svc.nominate(world.village_staff, scope(world.village_staff), campaign,
                     chief_post(world.neighbor_chief2), DEEDS, now=NOW)
    nominate(world, campaign)
    with pytest.raises(ServiceError, match="推荐过"):
        nominate(world, campaign)


def test_objections_block_the_decision_until_resolved(world, campaign):
    n = nominate(world, campaign)
    staff = scope(world.village_staff)
    with pytest.raises(ServiceError, match="不在公示期"):  # not yet published
        svc.lodge_objection(n, campaign, "入户走访的次数是补记的，不属实。", now=NOW)
    svc.open_notice(world.town_staff, scope(world.town_staff), campaign, now=NOW)
    db.session.commit()
    during = datetime(2026, 11, 22, 2)
    with pytest.raises(ServiceError, match="不在公示期"):  # published, the period not begun
        svc.lodge_objection(n, campaign, "入户走访的次数是补记的，不属实。", now=NOW)
    objection = svc.lodge_objection(n, campaign, "入户走访的次数是补记的，不属实。",
                                    now=during)
    db.session.commit()
    town = scope(world.town_staff)
    with pytest.raises(ServiceError, match="结束后才能审定"):  # on the last day of the 公示
        svc.decide(world.town_staff, town, campaign, n, True, now=datetime(2026, 11, 27, 15))
    after = datetime(2026, 11, 28, 2)
    with pytest.raises(ServiceError, match="异议没有核实"):
        svc.decide(world.town_staff, town, campaign, n, True, now=after)
    with pytest.raises(PermissionError):  # village staff do not approve
        svc.decide(world.village_staff, staff, campaign, n, True, now=after)
    svc.resolve_objection(world.village_staff, staff, objection, n, False,
                          "核对走访记录和住户，属实。", now=after)
    db.session.commit()
    svc.decide(world.town_staff, town, campaign, n, True, "经公示无异议", now=after)
    db.session.commit()
    assert db.session.get(Nomination, n.id).status == "approved"
    with pytest.raises(ServiceError, match="已经审定"):
        svc.decide(world.town_staff, town, campaign, n, False, now=after)


def test_an_upheld_objection_rules_out_approval_and_the_quota_holds(world, campaign,
                                                                    make_user):
    first = nominate(world, campaign)
    second = nominate(world, campaign, user=make_user("邻长三", role="neighbor_chief",
                                                      region=world.hood1b))
    svc.open_notice(world.town_staff, scope(world.town_staff), campaign, now=NOW)
    objection = svc.lodge_objection(first, campaign, "他家的垃圾一直乱堆，邻里有意见。",
                                    now=datetime(2026, 11, 23, 2))
    svc.resolve_objection(world.village_staff, scope(world.village_staff), objection, first,
                          True, "核实属实。", now=datetime(2026, 11, 24, 2))
    db.session.commit()
    after = datetime(2026, 11, 28, 2)
    town = scope(world.town_staff)
    with pytest.raises(ServiceError, match="异议经核实成立"):
        svc.decide(world.town_staff, town, campaign, first, True, now=after)
    svc.decide(world.town_staff, town, campaign, first, False, "异议成立", now=after)
    svc.decide(world.town_staff, town, campaign, second, True, now=after)
    db.session.commit()
    assert [n.status for n in db.session.scalars(
        select(Nomination).order_by(Nomination.id))] == ["rejected", "approved"]


def test_campaign_validation(world):
    base = {"title": "2026 年度测试镇好邻", "honour": "测试好邻", "quota": 3,
            "period_start": date(2026, 1, 1), "period_end": date(2027, 1, 1),
            "notice_start": date(2026, 11, 21), "notice_end": date(2026, 11, 27)}
    town = scope(world.town_staff)
    for change, field in (({"quota": 0}, "quota"), ({"notice_end": date(2026, 11, 20)},
                                                     "notice_end"),
                          ({"notice_start": date(2026, 11, 1)}, "notice_start"),
                          ({"title": "好"}, "title")):
        with pytest.raises(ServiceError) as e:
            svc.create_campaign(world.town_staff, town, world.town, {**base, **change},
                                now=NOW)
        assert e.value.field == field
    with pytest.raises(ServiceError):  # a group is not a campaign's region
        svc.create_campaign(world.town_staff, town, world.group1, base, now=NOW)
    with pytest.raises(PermissionError):
        svc.create_campaign(world.group_chief, scope(world.group_chief), world.village1, base,
                            now=NOW)


def test_withdraw_keeps_the_record_and_allows_a_new_nomination(world, campaign):
    from portal.audit import AuditEntry

    n = nominate(world, campaign)
    with pytest.raises(ServiceError, match="撤回原因"):
        svc.withdraw(world.village_staff, scope(world.village_staff), campaign, n, "错")
    with pytest.raises(PermissionError):
        svc.withdraw(world.group_chief, scope(world.group_chief), campaign, n, "推荐错了人")
    svc.withdraw(world.village_staff, scope(world.village_staff), campaign, n, "事迹要重写")
    db.session.commit()
    assert n.status == "withdrawn" and n.decision_note == "事迹要重写"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "nomination.withdraw"))
    with pytest.raises(ServiceError, match="不能再撤回"):
        svc.withdraw(world.village_staff, scope(world.village_staff), campaign, n, "再撤一次")
    again = nominate(world, campaign)  # the same row, nominated afresh
    assert again.id == n.id and again.status == "nominated" and again.decision_note == ""


def test_withdrawing_the_last_nominee_of_a_notice_closes_the_campaign(world, campaign):
    n = nominate(world, campaign)
    svc.open_notice(world.town_staff, scope(world.town_staff), campaign, now=NOW)
    svc.withdraw(world.village_staff, scope(world.village_staff), campaign, n,
                 "核实后发现有违规")
    db.session.commit()
    assert campaign.status == "closed"
    with pytest.raises(ServiceError, match="已经审定过了"):
        svc.decide(world.town_staff, scope(world.town_staff), campaign, n, True,
                   now=datetime(2026, 11, 28, 2))
