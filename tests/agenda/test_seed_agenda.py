"""The 议事 part of `flask seed demo`: venues, items in every state, an ended 恳谈会 with
votes, a 村民会议 that fell short of quorum, and an upcoming meeting to run.

The demo takes seconds to load, so one test loads it once and runs the checks below in turn."""

from collections import Counter

from sqlalchemy import func, select

from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.models import AgendaItem, Attendance, Meeting, Venue, Vote
from portal.clock import utcnow
from portal.extensions import db


def test_demo_agenda(runner, app, tmp_path):
    r = runner.invoke(args=["seed", "demo"])
    assert r.exit_code == 0, r.output
    assert "议题" in r.output
    check_statuses_and_meetings()
    check_results_follow_the_rules()
    check_passed_items_have_owner_and_due_date()
    check_votes_never_exceed_attendance()
    check_timeline_is_in_the_past()
    check_demo_minutes_pdf(app, tmp_path)


def meeting(title: str) -> Meeting:
    return db.session.scalar(select(Meeting).where(Meeting.title == title))


def check_statuses_and_meetings():
    statuses = Counter(db.session.scalars(select(AgendaItem.status)))
    for status in ("proposed", "scheduled", "implementing", "answered", "rejected", "no_quorum",
                   "declined"):
        assert statuses[status] >= 1, (status, statuses)
    assert statuses["passed"] == 0 and statuses["voting"] == 0  # passed items are all assigned
    waiting = db.session.scalar(select(func.count(AgendaItem.id)).where(
        AgendaItem.status == "proposed", AgendaItem.category_id.is_(None), AgendaItem.off_list))
    assert waiting == 1
    kinds = set(db.session.scalars(select(Venue.kind)))
    assert {"pavilion", "corner", "station", "room", "hall"} <= kinds
    assert db.session.scalar(select(Venue).where(Venue.name == "杨家井组议事亭")).capacity == 40

    now = utcnow()
    upcoming = meeting("十二月民情恳谈会")
    assert upcoming.status == "planned" and upcoming.starts_at > now
    assert 2 <= len(svc.agenda(upcoming.id)) <= 3
    assert all(i.status == "scheduled" for i in svc.agenda(upcoming.id))
    for title in ("十一月民情恳谈会", "村民会议（修订村规民约）"):
        m = meeting(title)
        assert m.status == "ended" and m.ended_at < now and m.opened_at < m.ended_at
        assert m.notes and m.recorder and m.entitled_count > 0
    # an overdue answer, and the story's item answered
    overdue = [i for i in db.session.scalars(select(AgendaItem)) if i.answer_overdue(
        svc.today_local())]
    assert [i.title for i in overdue] == ["组内主干道增设路灯"]
    dredge = db.session.scalar(select(AgendaItem).where(AgendaItem.title.like("山塘%")))
    assert dredge.status == "answered" and dredge.answer and "输水洞" in dredge.decision


def check_results_follow_the_rules():
    for title in ("十一月民情恳谈会", "村民会议（修订村规民约）"):
        m = meeting(title)
        present = db.session.scalar(select(func.count(Attendance.id))
                                    .where(Attendance.meeting_id == m.id))
        for item in svc.agenda(m.id):
            assert item.result_yes is not None, item.title
            assert item.result_present == present and item.result_entitled == m.entitled_count
            expected = svc.outcome(item.rule, item.result_yes, item.result_no,
                                   item.result_abstain, item.result_present,
                                   item.result_entitled)
            shown = "passed" if item.status in ("implementing", "answered") else item.status
            assert shown == expected, item.title
            assert item.decision
            if item.vote_mode == "household":
                votes = dict(db.session.execute(
                    select(Vote.choice, func.count(Vote.id)).where(Vote.item_id == item.id)
                    .group_by(Vote.choice)).all())
                assert (votes.get("yes", 0), votes.get("no", 0), votes.get("abstain", 0)) == (
                    item.result_yes, item.result_no, item.result_abstain)
    assembly = svc.agenda(meeting("村民会议（修订村规民约）").id)
    assert [(i.rule, i.status) for i in assembly] == [("assembly", "no_quorum")]
    kentan = {i.title: i.status for i in svc.agenda(meeting("十一月民情恳谈会").id)}
    assert kentan == {"山塘清淤及输水洞日常管护": "answered", "组内主干道增设路灯": "implementing",
                      "垃圾收集点搬迁至村口": "rejected"}


def check_passed_items_have_owner_and_due_date():
    passed = list(db.session.scalars(select(AgendaItem).where(
        AgendaItem.status.in_(("passed", "implementing", "answered")))))
    assert len(passed) >= 2
    for item in passed:
        assert item.owner_id is not None and item.answer_due is not None, item.title


def check_votes_never_exceed_attendance():
    present = dict(db.session.execute(select(Attendance.meeting_id, func.count(Attendance.id))
                                      .group_by(Attendance.meeting_id)).all())
    per_item = db.session.execute(
        select(AgendaItem.id, AgendaItem.meeting_id, func.count(Vote.id))
        .join(Vote, Vote.item_id == AgendaItem.id).group_by(AgendaItem.id, AgendaItem.meeting_id)
    ).all()
    assert per_item
    for _item_id, meeting_id, votes in per_item:
        assert votes <= present[meeting_id]
    for item in db.session.scalars(select(AgendaItem).where(AgendaItem.result_yes.is_not(None))):
        assert item.result_yes + item.result_no + item.result_abstain <= item.result_present
    # every vote comes from a household checked in at the item's meeting
    stray = db.session.scalar(
        select(func.count(Vote.id)).join(AgendaItem, Vote.item_id == AgendaItem.id)
        .outerjoin(Attendance, (Attendance.meeting_id == AgendaItem.meeting_id)
                   & (Attendance.household_id == Vote.household_id))
        .where(Attendance.id.is_(None)))
    assert stray == 0


def check_timeline_is_in_the_past():
    from portal.audit import AuditEntry

    now = utcnow()
    kentan = meeting("十一月民情恳谈会")
    for a in db.session.scalars(select(Attendance).where(Attendance.meeting_id == kentan.id)):
        assert kentan.opened_at <= a.checked_in_at < kentan.ended_at
    close = db.session.scalar(select(AuditEntry.at).where(AuditEntry.action == "vote.close")
                              .order_by(AuditEntry.at))
    assert (now - close).days >= 10
    assert db.session.scalar(select(func.min(AgendaItem.created_at))) < kentan.starts_at
    assert db.session.scalar(select(func.max(AuditEntry.at))) <= now


def check_demo_minutes_pdf(app, tmp_path):
    """The demo's 杨家井组 恳谈会 prints, for 组长 杨国平."""
    from portal.seed import DEMO_PASSWORD
    from tests.agenda.test_printing import pdftotext, squash
    from tests.conftest import csrf_from

    c = app.test_client()
    token = csrf_from(c.get("/login"))
    assert c.post("/login", data={"phone": "13800000004", "password": DEMO_PASSWORD,
                                  "csrf_token": token}).status_code == 303
    m = meeting("十一月民情恳谈会")
    r = c.get(f"/agenda/meetings/{m.id}/minutes.pdf")
    assert r.status_code == 200
    text = squash(pdftotext(r.data, tmp_path))
    present = db.session.scalar(select(func.count(Attendance.id))
                                .where(Attendance.meeting_id == m.id))
    assert "杨家井组十一月民情恳谈会会议纪要" in text
    assert f"到会{present}户/应到{m.entitled_count}户" in text
    assert "山塘清淤及输水洞日常管护" in text and "已逾期" in text
