"""积分 from 议事, in the same transaction as the record: raising an item from the 议事清单 pays
its raiser (3 points, at most 9 a month by the default rule); a matter outside the list is paid
when staff accept it, and nothing when they decline; ending a meeting that households attended
pays its convener and everyone who checked households in, once each."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from portal.blueprints.agenda import services as svc
from portal.blueprints.points import services as points
from portal.blueprints.points.models import PointsEntry, PointsRule
from portal.errors import ServiceError
from portal.extensions import db
from tests.agenda.conftest import NOW
from tests.points.conftest import entries as ledger

LATER = NOW + timedelta(hours=2)


def entries(user=None, **where) -> list[PointsEntry]:
    db.session.expire_all()  # see what the services committed
    return ledger(user, **where)


def event_of(entry) -> str:
    return db.session.get(PointsRule, entry.rule_id).event


def raise_item(world, scope_of, category, actor=None, region=None, off_list=False,
               now=NOW, title="小区停车位划线"):
    actor = actor or world.neighbor_chief
    item = svc.raise_item(actor, scope_of(actor), region or world.hood1, {
        "title": title, "background": "车辆乱停占用消防通道。",
        "proposal": "统一划线，收费用于维护。",
        "category_id": "off" if off_list else str(category(world.town))}, now=now)
    db.session.commit()
    return item


# -- raising ----------------------------------------------------------------------------------
def test_raising_an_item_pays_its_raiser(world, scope_of, category):
    item = raise_item(world, scope_of, category)
    (paid,) = entries(world.neighbor_chief)
    assert (paid.kind, paid.delta, paid.source_type, paid.source_id, paid.at, paid.path) == (
        "award", 3, "agenda_item", item.id, NOW, world.hood1.path)
    assert event_of(paid) == "agenda_raise" and paid.operator_id is None
    assert points.balance(world.neighbor_chief.id) == 3


def test_raising_pays_in_the_same_transaction(world, scope_of, category):
    from portal.blueprints.agenda.models import AgendaItem

    svc.raise_item(world.neighbor_chief, scope_of(world.neighbor_chief), world.hood1, {
        "title": "小区停车位划线", "background": "车辆乱停占用消防通道。",
        "proposal": "统一划线。", "category_id": str(category(world.town))}, now=NOW)
    db.session.rollback()
    assert db.session.scalar(select(AgendaItem.id)) is None and entries() == []


def test_the_monthly_cap_stops_the_fourth_raise(world, scope_of, category):
    for k in range(4):
        raise_item(world, scope_of, category, now=NOW + k * timedelta(days=1), title=f"议题{k}号")
    assert [e.delta for e in entries(world.neighbor_chief)] == [3, 3, 3]
    # December (local) is a new month
    raise_item(world, scope_of, category, now=datetime(2026, 11, 30, 17, 0), title="十二月议题")
    assert [e.delta for e in entries(world.neighbor_chief)] == [3, 3, 3, 3]
    assert points.balance(world.neighbor_chief.id) == 12


def test_a_staff_raiser_is_paid_too(world, scope_of, category):
    item = raise_item(world, scope_of, category, actor=world.village_staff,
                      region=world.village1)
    assert [(e.delta, e.source_id, e.path) for e in entries(world.village_staff)] == [
        (3, item.id, world.village1.path)]


# -- off-list matters -------------------------------------------------------------------------
def test_an_off_list_item_is_paid_when_staff_accept_it(world, scope_of, category):
    item = raise_item(world, scope_of, category, off_list=True)
    assert entries() == []
    staff = world.village_staff
    svc.decide_off_list(staff, scope_of(staff), item, True, category(world.town, 1), "属于公益事业",
                        now=LATER)
    db.session.commit()
    (paid,) = entries()
    assert (paid.user_id, paid.delta, paid.source_type, paid.source_id, paid.at) == (
        world.neighbor_chief.id, 3, "agenda_item", item.id, LATER)


def test_declining_an_off_list_item_pays_nothing(world, scope_of, category):
    item = raise_item(world, scope_of, category, off_list=True)
    staff = world.village_staff
    svc.decide_off_list(staff, scope_of(staff), item, False, None, "属于个人纠纷，转民情诉求办理",
                        now=LATER)
    db.session.commit()
    assert entries() == []
    assert points.balance(world.neighbor_chief.id) == 0


def test_the_decline_hook_takes_back_what_an_item_earned(world, scope_of, category):
    item = raise_item(world, scope_of, category)
    assert points.on_agenda_declined(world.village_staff, item, LATER) == 1
    db.session.commit()
    award, back = entries(world.neighbor_chief)
    assert (back.kind, back.delta, back.reverses_id, back.reason, back.operator_id) == (
        "reversal", -3, award.id, "议题不予上会", world.village_staff.id)
    assert points.balance(world.neighbor_chief.id) == 0
    # nothing left to take back
    assert points.on_agenda_declined(world.village_staff, item, LATER) == 0


# -- meetings ---------------------------------------------------------------------------------
@pytest.fixture
def meeting(world, make_meeting):
    """An open 恳谈会 of 组1 convened by the village cadre."""
    return make_meeting(world.group1, world.village_staff, open=True)


def check_in(world, scope_of, meeting, actor, household):
    svc.check_in(actor, scope_of(actor), meeting, household, now=NOW)
    db.session.commit()


def end(world, scope_of, meeting, actor=None, now=LATER):
    actor = actor or world.village_staff
    svc.end_meeting(actor, scope_of(actor), meeting, now=now)
    db.session.commit()


def test_ending_pays_the_convener_and_the_check_in_people_once_each(world, scope_of, meeting):
    check_in(world, scope_of, meeting, world.village_staff, world.hh1)
    check_in(world, scope_of, meeting, world.village_staff, world.hh1x)
    check_in(world, scope_of, meeting, world.group_chief, world.hh1b)
    assert entries() == []
    end(world, scope_of, meeting, actor=world.group_chief)
    paid = entries()
    assert sorted((e.user_id, e.delta) for e in paid) == sorted(
        [(world.village_staff.id, 2), (world.group_chief.id, 2)])
    for e in paid:
        assert (e.source_type, e.source_id, e.at, e.path, event_of(e)) == (
            "meeting", meeting.id, LATER, world.group1.path, "agenda_attend")


def test_a_convener_who_checked_nobody_in_is_paid(world, scope_of, meeting):
    check_in(world, scope_of, meeting, world.group_chief, world.hh1)
    end(world, scope_of, meeting)
    assert sorted(e.user_id for e in entries()) == sorted(
        [world.village_staff.id, world.group_chief.id])


def test_a_meeting_nobody_came_to_pays_nothing(world, scope_of, meeting):
    end(world, scope_of, meeting)
    assert entries() == []


def test_ending_twice_does_not_pay_twice(world, scope_of, meeting):
    check_in(world, scope_of, meeting, world.group_chief, world.hh1)
    end(world, scope_of, meeting)
    before = [(e.user_id, e.delta) for e in entries()]
    assert len(before) == 2
    with pytest.raises(ServiceError):
        end(world, scope_of, meeting, now=LATER + timedelta(hours=1))
    db.session.rollback()
    # the hook itself, run again, pays nobody twice either
    from portal.blueprints.agenda.models import Meeting

    assert points.on_meeting_end(db.session.get(Meeting, meeting.id), LATER) == []
    db.session.commit()
    assert [(e.user_id, e.delta) for e in entries()] == before
