"""议事 through its services on the shared ``world``: the item lifecycle and its audit trail, off-list
matters, check-in and votes (refused before open / after close, not entitled, twice), show of
hands, corrections, ending a meeting, who may chair what, the agenda's bounds and the answers."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.audit import AuditEntry
from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.models import (
    AgendaItem,
    Attendance,
    Meeting,
    ResultCorrection,
    Vote,
)
from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.regions.models import Post
from portal.errors import ServiceError
from portal.extensions import db
from portal.scope import Scope
from tests.agenda.conftest import NOW

TODAY = date(2026, 11, 16)
LATER = NOW + timedelta(minutes=30)


# -- helpers -------------------------------------------------------------------------------------
def audit_actions(obj) -> list[str]:
    return list(db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == type(obj).__name__.lower(),
                                        AuditEntry.object_id == obj.id)
        .order_by(AuditEntry.id)))


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def fresh(model, obj_id):
    db.session.expire_all()
    return db.session.get(model, obj_id)


def check_in_all(actor, scope, meeting, households):
    codes = {}
    for hh in households:
        att, created = svc.check_in(actor, scope, meeting, hh, now=NOW)
        assert created
        codes[hh.id] = att.code
    db.session.commit()
    return codes


def village1_households(world):
    return [world.hh1, world.hh1x, world.hh1b]


def _scope(user):
    """The user's Scope, as a request builds it (the scope_of fixture, usable in helpers)."""
    fresh_user = db.session.execute(select(User).options(
        selectinload(User.posts).joinedload(Post.region)).where(User.id == user.id)
        .execution_options(populate_existing=True)).scalar_one()
    return Scope.for_user(fresh_user)


@pytest.fixture
def staff(world, scope_of):
    """(village staff, their scope): chairs anything in village 1."""
    return world.village_staff, scope_of(world.village_staff)


@pytest.fixture
def voting(world, staff, make_item, make_meeting):
    """voting(rule="present_majority", mode="household", kind="kentan", region=village1) →
    (item, meeting): an item open for a vote at an open meeting, nobody checked in yet."""

    def make(rule="present_majority", mode="household", kind="kentan", region=None):
        actor, scope = staff
        item = make_item(world.hood1, world.neighbor_chief)
        meeting = make_meeting(region or world.village1, actor, kind=kind,
                               items=[(item, rule, mode)], open=True)
        svc.open_vote(actor, scope, item, now=NOW)
        db.session.commit()
        return item, meeting

    return make


# -- lifecycle -----------------------------------------------------------------------------------
def test_lifecycle_passed_to_answered_with_audit(world, staff, make_item, make_meeting):
    actor, scope = staff
    item = make_item(world.hood1, world.neighbor_chief)
    assert item.status == "proposed" and item.raised_by_id == world.neighbor_chief.id
    meeting = make_meeting(world.village1, actor, items=[(item, "present_majority", "household")])
    assert fresh(AgendaItem, item.id).status == "scheduled"
    assert (item.meeting_id, item.position, item.rule) == (meeting.id, 1, "present_majority")

    svc.open_meeting(actor, scope, meeting, now=NOW)
    db.session.commit()
    assert meeting.status == "open" and meeting.entitled_count == 3

    svc.open_vote(actor, scope, item, now=NOW)
    db.session.commit()
    assert fresh(AgendaItem, item.id).status == "voting"

    check_in_all(actor, scope, meeting, village1_households(world))
    for hh, choice in zip(village1_households(world), ("yes", "yes", "no"), strict=True):
        svc.cast_vote(item, hh.id, choice, actor=actor, now=NOW)
    db.session.commit()
    t = svc.tally(item)
    assert (t.yes, t.no, t.abstain, t.present, t.entitled, t.not_voted) == (2, 1, 0, 3, 3, 0)

    assert svc.close_vote(actor, scope, item, now=LATER) == "passed"
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.status == "passed" and item.decided
    assert (item.result_yes, item.result_no, item.result_abstain) == (2, 1, 0)
    assert (item.result_present, item.result_entitled) == (3, 3)
    assert item.vote_closed_at == LATER

    svc.save_decision(actor, scope, item, "同意组织村民投工投劳疏通输水洞。")
    svc.assign_answer(actor, scope, item, world.group_chief.id, TODAY + timedelta(days=14),
                      today=TODAY)
    db.session.commit()
    assert fresh(AgendaItem, item.id).status == "implementing"

    svc.answer_item(world.group_chief, _scope(world.group_chief), item,
                    "已于11月20日组织二十户投工疏通完毕。", now=LATER)
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.status == "answered" and item.answered_at == LATER

    assert audit_actions(item) == ["agenda.raise", "agenda.schedule", "vote.open", "vote.close",
                                   "agenda.decision", "agenda.assign", "agenda.answer"]
    assert audit_actions(meeting) == ["meeting.create", "meeting.open"]
    assert count(AuditEntry, AuditEntry.action == "meeting.check_in") == 3
    assert count(AuditEntry, AuditEntry.action == "vote.cast") == 3


def test_rejected_path(world, staff, voting):
    actor, scope = staff
    item, meeting = voting("present_majority")
    check_in_all(actor, scope, meeting, village1_households(world))
    for hh, choice in zip(village1_households(world), ("yes", "no", "abstain"), strict=True):
        svc.cast_vote(item, hh.id, choice, actor=actor)
    assert svc.close_vote(actor, scope, item, now=LATER) == "rejected"
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.status == "rejected" and item.result_abstain == 1
    with pytest.raises(ServiceError):  # only passed items get an answer
        svc.assign_answer(actor, scope, item, world.group_chief.id, TODAY, today=TODAY)
    db.session.rollback()
    assert audit_actions(item)[-1] == "vote.close"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "vote.close",
                                                       AuditEntry.object_id == item.id))
    assert "未通过" in entry.detail_dict["result"]


def test_no_quorum_path_at_a_villagers_assembly(world, staff, voting):
    """村民会议 of village 1 (3 households entitled, 2 needed): one present → 流会, even
    though that one voted yes."""
    actor, scope = staff
    item, meeting = voting("assembly", kind="assembly")
    check_in_all(actor, scope, meeting, [world.hh1])
    svc.cast_vote(item, world.hh1.id, "yes", actor=actor)
    assert svc.close_vote(actor, scope, item, now=LATER) == "no_quorum"
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.status == "no_quorum" and item.status_label == "流会"
    assert (item.result_yes, item.result_present, item.result_entitled) == (1, 1, 3)


def test_assembly_with_quorum_passes(world, staff, voting):
    actor, scope = staff
    item, meeting = voting("assembly", kind="assembly")
    check_in_all(actor, scope, meeting, [world.hh1, world.hh1x])
    svc.cast_vote(item, world.hh1.id, "yes", actor=actor)
    svc.cast_vote(item, world.hh1x.id, "yes", actor=actor)
    assert svc.close_vote(actor, scope, item, now=LATER) == "passed"


# -- off-list matters and categories -------------------------------------------------------------
def test_off_list_waits_for_staff_then_accept(world, staff, make_item, make_meeting, category):
    actor, scope = staff
    item = make_item(world.hood1, world.neighbor_chief, off_list=True)
    assert item.status == "proposed" and item.off_list and item.category_id is None
    assert [i.id for i in svc.items(scope, "waiting")] == [item.id]
    meeting = make_meeting(world.village1, actor)
    with pytest.raises(ServiceError, match="清单外事项须先由干部决定"):
        svc.schedule(actor, scope, item, meeting,
                     {"planned_minutes": 15, "rule": "present_majority", "vote_mode": "household"})
    db.session.rollback()
    assert item.id not in {i.id for i in svc.schedulable(meeting)}

    nc = world.neighbor_chief
    with pytest.raises(PermissionError):
        svc.decide_off_list(nc, _scope(nc), item, True, category(world.town), "")
    db.session.rollback()
    with pytest.raises(ServiceError):  # accept needs a 六议 category
        svc.decide_off_list(actor, scope, item, True, None, "")
    db.session.rollback()

    svc.decide_off_list(actor, scope, item, True, category(world.town, 1), "属于公益事业")
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.category_id == category(world.town, 1) and item.status == "proposed"
    assert svc.items(scope, "waiting") == []
    assert item.id in {i.id for i in svc.schedulable(meeting)}
    with pytest.raises(ServiceError, match="不需要决定"):
        svc.decide_off_list(actor, scope, item, True, category(world.town), "")
    db.session.rollback()
    assert audit_actions(item) == ["agenda.raise", "agenda.accept"]


def test_off_list_decline_needs_a_reason(world, staff, make_item, make_meeting):
    actor, scope = staff
    item = make_item(world.hood1, world.neighbor_chief, off_list=True)
    with pytest.raises(ServiceError) as e:
        svc.decide_off_list(actor, scope, item, False, None, "")
    assert e.value.field == "note"
    db.session.rollback()
    svc.decide_off_list(actor, scope, item, False, None, "属于个人纠纷，转民情诉求办理")
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.status == "declined" and "民情诉求" in item.status_note
    assert audit_actions(item) == ["agenda.raise", "agenda.decline"]
    meeting = make_meeting(world.village1, world.village_staff)
    with pytest.raises(ServiceError):
        svc.schedule(actor, scope, item, meeting,
                     {"planned_minutes": 15, "rule": "present_majority", "vote_mode": "household"})


def _raise(world, region, category_id, actor=None):
    actor = actor or world.neighbor_chief
    return svc.raise_item(actor, _scope(actor), region, {
        "title": "小区停车位划线", "background": "车辆乱停占用消防通道。",
        "proposal": "统一划线，收费用于维护。", "category_id": str(category_id)})


def test_category_of_another_town_is_refused(world, make_region, category):
    other_town = make_region("另一镇")
    with pytest.raises(ServiceError) as e:
        _raise(world, world.hood1, category(other_town))
    assert e.value.field == "category_id"
    db.session.rollback()
    assert count(AgendaItem) == 0


def test_inactive_category_is_refused(world, category):
    cid = category(world.town)
    db.session.get(ChecklistItem, cid).active = False
    db.session.commit()
    with pytest.raises(ServiceError) as e:
        _raise(world, world.hood1, cid)
    assert e.value.field == "category_id"
    db.session.rollback()
    with pytest.raises(ServiceError):
        _raise(world, world.hood1, "not-a-number")
    db.session.rollback()
    assert count(AgendaItem) == 0
    item = _raise(world, world.hood1, category(world.town))  # the active ones still work
    db.session.commit()
    assert item.id


def test_raise_outside_scope_and_short_title(world, category):
    with pytest.raises(PermissionError):  # 邻长 of 邻11 raising for village 2
        _raise(world, world.hood2, category(world.town))
    db.session.rollback()
    with pytest.raises(PermissionError):  # a volunteer raises nothing
        _raise(world, world.hood1, category(world.town), actor=world.volunteer)
    db.session.rollback()
    with pytest.raises(ServiceError) as e:
        svc.raise_item(world.neighbor_chief, _scope(world.neighbor_chief), world.hood1, {
            "title": "路灯", "background": "路灯坏了很久。", "proposal": "请修好路灯。",
            "category_id": str(category(world.town))})
    assert e.value.field == "title"


# -- votes: when and by whom ---------------------------------------------------------------------
def test_votes_refused_before_open_and_after_close(world, staff, make_item, make_meeting):
    actor, scope = staff
    item = make_item(world.hood1, world.neighbor_chief)
    meeting = make_meeting(world.village1, actor, items=[(item, "cast_majority", "household")])
    with pytest.raises(ServiceError, match="会议开始后才能表决"):
        svc.open_vote(actor, scope, item, now=NOW)
    db.session.rollback()
    with pytest.raises(ServiceError, match="会议开始后才能签到"):
        svc.check_in(actor, scope, meeting, world.hh1)
    db.session.rollback()

    svc.open_meeting(actor, scope, meeting, now=NOW)
    db.session.commit()
    check_in_all(actor, scope, meeting, [world.hh1, world.hh1x])
    with pytest.raises(ServiceError, match="表决尚未开始"):
        svc.cast_vote(item, world.hh1.id, "yes", actor=actor)
    db.session.rollback()
    assert count(Vote) == 0

    svc.open_vote(actor, scope, item, now=NOW)
    svc.cast_vote(item, world.hh1.id, "yes", actor=actor)
    svc.close_vote(actor, scope, item, now=LATER)
    db.session.commit()
    with pytest.raises(ServiceError, match="表决已结束"):
        svc.cast_vote(fresh(AgendaItem, item.id), world.hh1x.id, "no", actor=actor)
    db.session.rollback()
    with pytest.raises(ServiceError):
        svc.close_vote(actor, scope, item)
    db.session.rollback()
    with pytest.raises(ServiceError):
        svc.open_vote(actor, scope, item)
    db.session.rollback()
    assert count(Vote) == 1


def test_household_not_checked_in_or_not_entitled(world, staff, voting):
    actor, scope = staff
    item, meeting = voting()
    check_in_all(actor, scope, meeting, [world.hh1])
    with pytest.raises(ServiceError, match="未在本次会议签到"):
        svc.cast_vote(item, world.hh1x.id, "yes", actor=actor)
    db.session.rollback()
    with pytest.raises(ServiceError, match="不在本次会议的参会范围"):  # village 2's household
        svc.check_in(actor, scope, meeting, world.hh2)
    db.session.rollback()
    with pytest.raises(ServiceError, match="未在本次会议签到"):
        svc.cast_vote(item, world.hh2.id, "yes")
    db.session.rollback()
    with pytest.raises(ServiceError):
        svc.cast_vote(item, world.hh1.id, "maybe")
    db.session.rollback()
    assert count(Vote) == 0 and count(Attendance) == 1


def test_group_meeting_entitles_only_its_households(world, make_item, make_meeting):
    """A 恳谈会 of group 1 counts its two 邻; a 屋场会 of 邻11 only that 邻's households."""
    gc = world.group_chief
    meeting = make_meeting(world.group1, gc, open=True)
    assert meeting.entitled_count == 3
    nc = world.neighbor_chief
    hood_meeting = make_meeting(world.hood1, nc, kind="wuchang", title="屋场会", open=True)
    assert hood_meeting.entitled_count == 2
    with pytest.raises(ServiceError, match="不在本次会议的参会范围"):
        svc.check_in(nc, _scope(nc), hood_meeting, world.hh1b)
    db.session.rollback()
    att, created = svc.check_in(nc, _scope(nc), hood_meeting, world.hh1x, "乙的儿子")
    db.session.commit()
    assert created and att.representative == "乙的儿子"
    again, created = svc.check_in(nc, _scope(nc), hood_meeting, world.hh1x)
    assert not created and again.id == att.id
    assert count(Attendance) == 1


def test_cast_twice_is_refused_with_one_vote_row(world, staff, voting):
    actor, scope = staff
    item, meeting = voting()
    codes = check_in_all(actor, scope, meeting, [world.hh1])
    att = svc.attendance_by_code(codes[world.hh1.id].lower())  # codes are read case-free
    assert att.household_id == world.hh1.id
    svc.cast_vote(item, att.household_id, "yes")  # by the resident, with the code
    db.session.commit()
    with pytest.raises(ServiceError) as e:
        svc.cast_vote(item, world.hh1.id, "no", actor=actor)  # then the chair taps it in
    assert e.value.message == "这户已经投过票（赞成），每户只能投一次。"
    db.session.commit()  # the session is still usable after the refused insert
    votes = list(db.session.scalars(select(Vote).where(Vote.item_id == item.id)))
    assert [(v.household_id, v.choice, v.recorded_by_id) for v in votes] == \
        [(world.hh1.id, "yes", None)]
    assert count(AuditEntry, AuditEntry.action == "vote.cast") == 1


def test_hands_vote_on_a_household_item_and_vice_versa(world, staff, voting):
    actor, scope = staff
    item, meeting = voting(mode="household")
    check_in_all(actor, scope, meeting, [world.hh1])
    with pytest.raises(ServiceError, match="按户表决"):
        svc.set_hands(actor, scope, item, 1, 0, 0)
    db.session.rollback()
    item2, meeting2 = voting(mode="hands")
    check_in_all(actor, scope, meeting2, [world.hh1])
    with pytest.raises(ServiceError, match="举手表决"):
        svc.cast_vote(item2, world.hh1.id, "yes", actor=actor)


# -- show of hands -------------------------------------------------------------------------------
def test_show_of_hands_counts_cannot_exceed_attendance(world, staff, voting):
    actor, scope = staff
    item, meeting = voting("present_two_thirds", mode="hands")
    check_in_all(actor, scope, meeting, [world.hh1, world.hh1x, world.hh1b])

    with pytest.raises(ServiceError, match="请先录入举手表决的票数"):
        svc.close_vote(actor, scope, item)
    db.session.rollback()

    for counts in ((2, 1, 1), (4, 0, 0), (0, 0, 4), (-1, 2, 0)):
        with pytest.raises(ServiceError):
            svc.set_hands(actor, scope, item, *counts)
        db.session.rollback()
    item = fresh(AgendaItem, item.id)
    assert (item.hands_yes, item.hands_no, item.hands_abstain, item.hands_entered) == \
        (0, 0, 0, False)
    assert "vote.hands" not in audit_actions(item)

    svc.set_hands(actor, scope, item, 2, 1, 0)
    db.session.commit()
    t = svc.tally(item)
    assert (t.yes, t.no, t.abstain, t.present) == (2, 1, 0, 3)
    assert svc.close_vote(actor, scope, item, now=LATER) == "passed"  # exactly ⅔
    db.session.commit()
    with pytest.raises(ServiceError, match="表决已结束"):
        svc.set_hands(actor, scope, item, 3, 0, 0)
    db.session.rollback()
    assert audit_actions(item)[-2:] == ["vote.hands", "vote.close"]


# -- corrections ---------------------------------------------------------------------------------
def test_correct_result(world, staff, voting):
    actor, scope = staff
    item, meeting = voting("present_majority", mode="hands")
    check_in_all(actor, scope, meeting, [world.hh1, world.hh1x])
    svc.set_hands(actor, scope, item, 1, 1, 0)
    assert svc.close_vote(actor, scope, item, now=LATER) == "rejected"
    db.session.commit()
    # a household checks in after the vote closed: the correction still uses the stored 2 present
    svc.check_in(actor, scope, meeting, world.hh1b)
    db.session.commit()

    gc, nc = world.group_chief, world.neighbor_chief
    for chief in (gc, nc):
        with pytest.raises(PermissionError):
            svc.correct_result(chief, _scope(chief), item, 2, 0, 0, "重新清点举手人数")
        db.session.rollback()
    with pytest.raises(ServiceError) as e:
        svc.correct_result(actor, scope, item, 2, 0, 0, "  ")
    assert e.value.field == "reason"
    db.session.rollback()
    with pytest.raises(ServiceError, match="超过到会 2 户"):
        svc.correct_result(actor, scope, item, 3, 0, 0, "重新清点举手人数")
    db.session.rollback()
    with pytest.raises(ServiceError, match="相同"):
        svc.correct_result(actor, scope, item, 1, 1, 0, "重新清点举手人数")
    db.session.rollback()
    assert count(ResultCorrection) == 0

    assert svc.correct_result(actor, scope, item, 2, 0, 0, "重新清点举手人数，记录员漏记一户",
                              now=LATER) == "passed"
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert (item.status, item.result_yes, item.result_no, item.result_present,
            item.result_entitled) == ("passed", 2, 0, 2, 3)
    (corr,) = svc.corrections(item.id)
    assert corr.user_id == actor.id and corr.reason.startswith("重新清点")
    assert corr.before == "赞成 1 反对 1 弃权 0 · 未通过"
    assert corr.after == "赞成 2 反对 0 弃权 0 · 通过"
    assert audit_actions(item)[-1] == "vote.correct"
    t = svc.tally(item)  # the locked, corrected result
    assert (t.yes, t.no, t.present) == (2, 0, 2)

    svc.assign_answer(actor, scope, item, world.group_chief.id, TODAY, today=TODAY)
    db.session.commit()
    with pytest.raises(ServiceError, match="尚未落实"):
        svc.correct_result(actor, scope, item, 0, 2, 0, "又数错了一次")


def test_correction_of_a_no_quorum_assembly_keeps_the_quorum(world, staff, voting):
    actor, scope = staff
    item, meeting = voting("assembly", mode="hands", kind="assembly")
    check_in_all(actor, scope, meeting, [world.hh1])
    svc.set_hands(actor, scope, item, 1, 0, 0)
    assert svc.close_vote(actor, scope, item) == "no_quorum"
    db.session.commit()
    # recomputed against the 1 of 3 present stored at the close: still 流会
    assert svc.correct_result(actor, scope, item, 0, 1, 0, "重新清点举手人数") == "no_quorum"
    db.session.commit()
    assert fresh(AgendaItem, item.id).status == "no_quorum"


# -- ending a meeting ----------------------------------------------------------------------------
def test_end_meeting(world, staff, make_item, make_meeting):
    actor, scope = staff
    voted = make_item(world.hood1, world.neighbor_chief, title="山塘清淤")
    left = make_item(world.hood1b, world.village_staff, title="路灯维修")
    meeting = make_meeting(world.village1, actor, open=True, items=[
        (voted, "cast_majority", "household"), (left, "cast_majority", "household")])
    codes = check_in_all(actor, scope, meeting, [world.hh1, world.hh1x])
    code = codes[world.hh1.id]
    assert svc.attendance_by_code(code).household_id == world.hh1.id
    assert svc.attendance_by_code("") is None and svc.attendance_by_code("ZZZZZZZZ") is None

    svc.open_vote(actor, scope, voted, now=NOW)
    db.session.commit()
    with pytest.raises(ServiceError, match="正在表决"):
        svc.end_meeting(actor, scope, meeting)
    db.session.rollback()
    assert fresh(Meeting, meeting.id).status == "open"

    svc.cast_vote(voted, world.hh1.id, "yes")
    svc.close_vote(actor, scope, voted, now=LATER)
    assert svc.end_meeting(actor, scope, meeting, now=LATER) == 1
    db.session.commit()

    meeting = fresh(Meeting, meeting.id)
    assert meeting.status == "ended" and meeting.ended_at == LATER
    assert meeting.notes == "未及表决、退回待排期的议题：路灯维修。"  # the minutes keep it
    left = db.session.get(AgendaItem, left.id)
    assert (left.status, left.meeting_id, left.position) == ("proposed", None, 0)
    assert "未及表决" in left.status_note
    assert db.session.get(AgendaItem, voted.id).status == "passed"
    assert count(Attendance, Attendance.code.is_not(None)) == 0
    assert count(Attendance) == 2  # attendance stays for the minutes
    assert svc.attendance_by_code(code) is None
    assert audit_actions(meeting)[-1] == "meeting.end"

    with pytest.raises(ServiceError):
        svc.end_meeting(actor, scope, meeting)
    db.session.rollback()
    with pytest.raises(ServiceError, match="会议已结束"):
        svc.check_in(actor, scope, meeting, world.hh1b)
    db.session.rollback()
    # the returned item can go on another meeting
    other = make_meeting(world.village1, actor, title="十二月民情恳谈会",
                         items=[(left, "cast_majority", "household")])
    assert db.session.get(AgendaItem, left.id).meeting_id == other.id


def test_undo_check_in(world, staff, voting):
    actor, scope = staff
    item, meeting = voting()
    check_in_all(actor, scope, meeting, [world.hh1, world.hh1x])
    svc.cast_vote(item, world.hh1.id, "yes", actor=actor)
    db.session.commit()
    with pytest.raises(ServiceError, match="已经投票"):
        svc.undo_check_in(actor, scope, meeting, world.hh1.id)
    db.session.rollback()
    svc.undo_check_in(actor, scope, meeting, world.hh1x.id)
    db.session.commit()
    assert svc.present_count(meeting.id) == 1
    with pytest.raises(ServiceError, match="尚未签到"):
        svc.undo_check_in(actor, scope, meeting, world.hh1x.id)


# -- scope ---------------------------------------------------------------------------------------
def test_neighbor_chief_of_another_village_cannot_chair(world, staff, make_item, make_meeting):
    actor, scope = staff
    item = make_item(world.hood1, world.neighbor_chief)
    meeting = make_meeting(world.village1, actor, items=[(item, "cast_majority", "household")])
    nc2 = world.neighbor_chief2
    s2 = _scope(nc2)
    with pytest.raises(PermissionError):
        svc.open_meeting(nc2, s2, meeting, now=NOW)
    db.session.rollback()
    assert fresh(Meeting, meeting.id).status == "planned"
    svc.open_meeting(actor, scope, meeting, now=NOW)
    db.session.commit()
    for attempt in (lambda: svc.check_in(nc2, s2, meeting, world.hh1),
                    lambda: svc.open_vote(nc2, s2, item),
                    lambda: svc.end_meeting(nc2, s2, meeting),
                    lambda: svc.save_minutes(nc2, s2, meeting, "纪要", "邻长二")):
        with pytest.raises(PermissionError):
            attempt()
        db.session.rollback()
    assert not svc.can_chair(s2, meeting)
    assert count(Attendance) == 0


def test_group_chief_chairs_their_group_not_the_village(world, make_item, make_meeting):
    gc = world.group_chief
    gscope = _scope(gc)
    item = make_item(world.hood1, world.neighbor_chief)
    group_meeting = make_meeting(world.group1, gc, title="组民情恳谈会",
                                 items=[(item, "present_majority", "household")])
    svc.open_meeting(gc, gscope, group_meeting, now=NOW)
    svc.check_in(gc, gscope, group_meeting, world.hh1b)
    svc.open_vote(gc, gscope, item, now=NOW)
    db.session.commit()
    assert fresh(Meeting, group_meeting.id).status == "open"

    village_meeting = make_meeting(world.village1, world.village_staff, title="村民情分析会",
                                   kind="fenxi")
    with pytest.raises(PermissionError):
        svc.open_meeting(gc, _scope(gc), village_meeting, now=NOW)
    db.session.rollback()
    with pytest.raises(PermissionError):  # nor convene one for the village
        svc.save_meeting(gc, _scope(gc), None, world.village1, {
            "kind": "kentan", "title": "村恳谈会", "starts_at": NOW, "planned_minutes": 60})
    db.session.rollback()
    assert fresh(Meeting, village_meeting.id).status == "planned"


def test_neighbor_chief_convenes_a_wuchang_on_their_own_hood(world, make_item, make_meeting):
    nc = world.neighbor_chief
    item = make_item(world.hood1, nc)
    meeting = make_meeting(world.hood1, nc, kind="wuchang", title="邻11屋场会",
                           items=[(item, "cast_majority", "household")], open=True)
    assert meeting.convener_id == nc.id and meeting.status == "open"
    svc.check_in(nc, _scope(nc), meeting, world.hh1)
    svc.open_vote(nc, _scope(nc), item, now=NOW)
    svc.cast_vote(item, world.hh1.id, "yes", actor=nc)
    assert svc.close_vote(nc, _scope(nc), item) == "passed"
    db.session.commit()
    for region in (world.hood1b, world.group1):  # not the next 邻, not the group
        with pytest.raises(PermissionError):
            svc.save_meeting(nc, _scope(nc), None, region, {
                "kind": "wuchang", "title": "屋场会", "starts_at": NOW, "planned_minutes": 60})
        db.session.rollback()


def test_assembly_rule_only_at_a_village_assembly(world, staff, make_item, make_meeting):
    actor, scope = staff
    data = {"kind": "assembly", "title": "村民会议", "starts_at": NOW, "planned_minutes": 120}
    with pytest.raises(ServiceError) as e:
        svc.save_meeting(actor, scope, None, world.group1, data)
    assert e.value.field == "region_id"
    db.session.rollback()
    assembly = svc.save_meeting(actor, scope, None, world.village1, data)
    db.session.commit()

    item = make_item(world.hood1, world.neighbor_chief)
    kentan = make_meeting(world.village1, actor)
    with pytest.raises(ServiceError) as e:
        svc.schedule(actor, scope, item, kentan,
                     {"planned_minutes": 15, "rule": "assembly", "vote_mode": "household"})
    assert e.value.field == "rule"
    db.session.rollback()
    svc.schedule(actor, scope, item, assembly,
                 {"planned_minutes": 15, "rule": "assembly", "vote_mode": "household"})
    db.session.commit()
    # the meeting cannot become a 恳谈会 while an item uses the assembly rule
    with pytest.raises(ServiceError) as e:
        svc.save_meeting(actor, scope, assembly, world.village1, {**data, "kind": "kentan"})
    assert e.value.field == "kind"


def test_schedule_refuses_an_item_outside_the_meetings_region(world, make_item, make_meeting):
    ts = world.town_staff
    scope = _scope(ts)
    item = make_item(world.hood2, world.neighbor_chief2)
    meeting = make_meeting(world.village1, ts)
    with pytest.raises(ServiceError, match="不属于这次会议的范围"):
        svc.schedule(ts, scope, item, meeting,
                     {"planned_minutes": 15, "rule": "cast_majority", "vote_mode": "household"})
    db.session.rollback()
    assert fresh(AgendaItem, item.id).status == "proposed"
    hood_meeting = make_meeting(world.hood1, ts, kind="wuchang")  # a village item on a 邻 meeting
    village_item = make_item(world.village1, world.village_staff)
    with pytest.raises(ServiceError, match="不属于这次会议的范围"):
        svc.schedule(ts, scope, village_item, hood_meeting,
                     {"planned_minutes": 15, "rule": "cast_majority", "vote_mode": "household"})


def test_agenda_terms_are_validated(world, staff, make_item, make_meeting):
    actor, scope = staff
    item = make_item(world.hood1, world.neighbor_chief)
    meeting = make_meeting(world.village1, actor)
    for data, field in (({"planned_minutes": 0, "rule": "cast_majority", "vote_mode": "hands"},
                         "planned_minutes"),
                        ({"planned_minutes": 10, "rule": "all", "vote_mode": "hands"}, "rule"),
                        ({"planned_minutes": 10, "rule": "cast_majority", "vote_mode": "x"},
                         "vote_mode")):
        with pytest.raises(ServiceError) as e:
            svc.schedule(actor, scope, item, meeting, data)
        assert e.value.field == field
        db.session.rollback()


# -- the agenda ----------------------------------------------------------------------------------
def test_overrun_minutes_and_order(world, staff, make_item, make_meeting):
    actor, scope = staff
    items = [make_item(world.hood1, world.neighbor_chief, title=f"议题第{k}项") for k in range(3)]
    meeting = make_meeting(world.village1, actor, minutes=30,
                           items=[(i, "cast_majority", "hands") for i in items])
    agenda = svc.agenda(meeting.id)
    assert [i.id for i in agenda] == [i.id for i in items]
    assert [i.position for i in agenda] == [1, 2, 3]
    assert svc.overrun(meeting, agenda) == 15  # 3 × 15 minutes in a 30-minute meeting
    svc.update_terms(actor, scope, agenda[0], {"planned_minutes": 5, "rule": "cast_majority",
                                               "vote_mode": "hands"})
    assert svc.overrun(meeting, agenda) == 5
    svc.unschedule(actor, scope, agenda[1], "下次再议")
    db.session.commit()
    agenda = svc.agenda(meeting.id)
    assert [i.position for i in agenda] == [1, 2]
    assert svc.overrun(meeting, agenda) == 0
    svc.move(actor, scope, agenda[1], -1)
    db.session.commit()
    assert [i.id for i in svc.agenda(meeting.id)] == [items[2].id, items[0].id]


# -- answers -------------------------------------------------------------------------------------
@pytest.fixture
def passed_item(world, staff, voting):
    actor, scope = staff
    item, meeting = voting("cast_majority", mode="hands")
    check_in_all(actor, scope, meeting, [world.hh1])
    svc.set_hands(actor, scope, item, 1, 0, 0)
    assert svc.close_vote(actor, scope, item) == "passed"
    db.session.commit()
    return item


def test_assign_answer_validation(world, staff, passed_item):
    actor, scope = staff
    item = passed_item
    choices = {u.id for u in svc.owner_choices(item)}
    assert {world.village_staff.id, world.group_chief.id, world.neighbor_chief.id,
            world.town_staff.id} <= choices
    assert world.neighbor_chief2.id not in choices and world.nobody.id not in choices
    for owner in (world.neighbor_chief2.id, world.nobody.id, 999_999):
        with pytest.raises(ServiceError) as e:
            svc.assign_answer(actor, scope, item, owner, TODAY, today=TODAY)
        assert e.value.field == "owner_id"
        db.session.rollback()
    for due in (TODAY - timedelta(days=1), None):
        with pytest.raises(ServiceError) as e:
            svc.assign_answer(actor, scope, item, world.group_chief.id, due, today=TODAY)
        assert e.value.field == "answer_due"
        db.session.rollback()
    nc2 = world.neighbor_chief2
    with pytest.raises(PermissionError):
        svc.assign_answer(nc2, _scope(nc2), item, world.group_chief.id, TODAY, today=TODAY)
    db.session.rollback()
    assert fresh(AgendaItem, item.id).status == "passed"
    svc.assign_answer(actor, scope, item, world.group_chief.id, TODAY, today=TODAY)  # today is ok
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert (item.status, item.owner_id, item.answer_due) == ("implementing",
                                                             world.group_chief.id, TODAY)


def test_answer_by_owner_and_overdue(world, staff, passed_item):
    actor, scope = staff
    due = TODAY + timedelta(days=7)
    svc.assign_answer(actor, scope, passed_item, world.group_chief.id, due, today=TODAY)
    db.session.commit()
    item = fresh(AgendaItem, passed_item.id)

    assert svc.overdue_answers(scope, today=due) == []
    assert not item.answer_overdue(due)
    late = due + timedelta(days=1)
    assert [i.id for i in svc.overdue_answers(scope, today=late)] == [item.id]
    assert item.answer_overdue(late)
    assert svc.overdue_answers(_scope(world.neighbor_chief2), today=late) == []  # village 2

    nc = world.neighbor_chief  # not the owner, not staff
    with pytest.raises(PermissionError):
        svc.answer_item(nc, _scope(nc), item, "已经落实完毕。")
    db.session.rollback()
    gc = world.group_chief
    with pytest.raises(ServiceError) as e:
        svc.answer_item(gc, _scope(gc), item, "好")
    assert e.value.field == "answer"
    db.session.rollback()
    svc.answer_item(gc, _scope(gc), item, "已组织疏通，山塘恢复供水。", now=LATER)
    db.session.commit()
    item = fresh(AgendaItem, item.id)
    assert item.status == "answered" and item.answer.startswith("已组织")
    assert svc.overdue_answers(scope, today=late) == []
    with pytest.raises(ServiceError):
        svc.answer_item(gc, _scope(gc), item, "再答复一次。")


# -- quorum on the chair's screen ----------------------------------------------------------------
def test_quorum_state(world, staff, voting, make_meeting):
    actor, scope = staff
    item, meeting = voting("assembly", kind="assembly")
    agenda = svc.agenda(meeting.id)
    assert svc.quorum_state(meeting, agenda, 0) == {"need": 2, "met": False, "short": 2,
                                                    "entitled": 3}
    check_in_all(actor, scope, meeting, [world.hh1])
    present = svc.present_count(meeting.id)
    assert svc.quorum_state(meeting, agenda, present) == {"need": 2, "met": False, "short": 1,
                                                          "entitled": 3}
    check_in_all(actor, scope, meeting, [world.hh1x])
    assert svc.quorum_state(meeting, agenda, svc.present_count(meeting.id)) == {
        "need": 2, "met": True, "short": 0, "entitled": 3}

    plain = make_meeting(world.village1, actor, title="没有法定人数的会")
    assert svc.quorum_state(plain, svc.agenda(plain.id), 0) is None
    # entitled is fixed when the meeting opens: a household added later does not move the quorum
    assert svc.quorum_state(meeting, agenda, 2)["entitled"] == 3
