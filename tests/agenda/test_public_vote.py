"""Residents voting on their own phone with the one-time code from the check-in (/v): no account,
only their own household's ballot, one vote per item, refused on another meeting's items, and the
code dead once the meeting ends. Wrong codes are rate-limited per address, counting failures
only."""

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.models import Attendance, Vote
from portal.extensions import db
from tests.agenda.conftest import NOW
from tests.conftest import csrf_from


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


@pytest.fixture
def meeting(world, make_item, make_meeting, scope_of):
    """An open meeting of village 1: item 1 voting per household, item 2 voting by hands, item 3
    not yet open; 甲1 and 乙1 checked in (their codes in ``codes``)."""
    staff = world.village_staff
    one = make_item(world.village1, staff, title="修缮山塘输水洞")
    two = make_item(world.village1, staff, title="组道路灯安装")
    three = make_item(world.village1, staff, title="垃圾分类点搬迁")
    m = make_meeting(world.village1, staff, title="十一月民情恳谈会", open=True, items=[
        (one, "present_majority", "household"), (two, "present_majority", "hands"),
        (three, "cast_majority", "household")])
    scope = scope_of(staff)
    codes = {}
    for hh in (world.hh1, world.hh1x):
        att, _ = svc.check_in(staff, scope, m, hh, now=NOW)
        codes[hh.id] = att.code
    svc.open_vote(staff, scope, one, now=NOW)
    svc.open_vote(staff, scope, two, now=NOW)
    db.session.commit()
    return SimpleNamespace(id=m.id, one=one.id, two=two.id, three=three.id, codes=codes)


class Resident:
    """A resident's phone: a client without an account, with the CSRF token of /v."""

    def __init__(self, client):
        self.c = client
        self.token = csrf_from(client.get("/v"))

    def enter(self, code):
        return self.c.post("/v", data={"csrf_token": self.token, "code": code})

    def cast(self, item_id, choice, headers=None):
        return self.c.post(f"/v/ballot/{item_id}", data={"csrf_token": self.token,
                                                         "choice": choice},
                           headers=headers or {})

    def ballot(self, headers=None):
        return self.c.get("/v/ballot", headers=headers or {})


@pytest.fixture
def resident(app):
    return lambda: Resident(app.test_client())


def votes(item_id) -> dict:
    db.session.expire_all()
    return dict(db.session.execute(select(Vote.household_id, Vote.choice).where(
        Vote.item_id == item_id)).all())


def end(world, scope_of, meeting_id, *items):
    from portal.blueprints.agenda.models import AgendaItem, Meeting

    staff = world.village_staff
    scope = scope_of(staff)
    db.session.expire_all()
    for item_id in items:
        item = db.session.get(AgendaItem, item_id)
        if item.vote_mode == "hands":
            svc.set_hands(staff, scope, item, 0, 0, 0)
        svc.close_vote(staff, scope, item)
    svc.end_meeting(staff, scope, db.session.get(Meeting, meeting_id))
    db.session.commit()


# -- the flow --------------------------------------------------------------------------------------
def test_code_ballot_cast_and_cast_again(world, meeting, resident):
    phone = resident()
    page = phone.c.get("/v").data.decode()
    assert 'autocomplete="off"' in page and 'inputmode="latin"' in page
    assert "code-in" in page and "<nav>" not in page  # no staff menu

    code = meeting.codes[world.hh1.id]
    r = phone.enter(f" {code[:4].lower()} {code[4:]} ")  # as typed: spaces, lower case
    assert r.status_code == 303 and r.location.endswith("/v/ballot")
    r = phone.ballot()
    html = r.data.decode()
    page = text(html)
    assert r.status_code == 200 and "十一月民情恳谈会" in page and "甲家" in page
    assert "修缮山塘输水洞" in page and 'name="choice" value="yes"' in html
    assert "举手表决，请在现场举手" in page and "尚未开始表决" in page
    assert 'hx-trigger="every 5s"' in html
    # nothing of the other household (乙1), nor names, codes or phone numbers
    assert meeting.codes[world.hh1x.id] not in html and code not in html
    for secret in ("甲1", "乙", "13912345678", world.hh1.address):
        assert secret not in page
    assert r.headers["X-Robots-Tag"] == "noindex, nofollow"

    r = phone.cast(meeting.one, "yes")
    assert r.status_code == 303 and r.location.endswith(f"/v/ballot#b-{meeting.one}")
    page = text(phone.ballot().data.decode())
    assert "已投票：赞成" in page and "您已投票：赞成" in page
    assert votes(meeting.one) == {world.hh1.id: "yes"}
    vote = db.session.scalar(select(Vote).where(Vote.item_id == meeting.one))
    assert vote.recorded_by_id is None  # cast with the code, not by the chair

    # a second vote: the message, nothing changes
    r = phone.cast(meeting.one, "no")
    assert r.status_code == 422 and "已经投过票（赞成）" in r.data.decode()
    assert votes(meeting.one) == {world.hh1.id: "yes"}
    # hands and not-yet-open items cannot be voted with a code
    r = phone.cast(meeting.two, "yes")
    assert r.status_code == 422 and "举手表决" in r.data.decode()
    r = phone.cast(meeting.three, "yes")
    assert r.status_code == 422 and "表决尚未开始" in r.data.decode()
    r = phone.cast(meeting.one, "maybe")
    assert r.status_code == 422 and "请选择赞成、反对或弃权" in r.data.decode()
    assert votes(meeting.three) == {} and votes(meeting.two) == {}


def test_htmx_variants_return_partials(world, meeting, resident):
    phone = resident()
    phone.enter(meeting.codes[world.hh1x.id])
    r = phone.ballot({"HX-Request": "true", "HX-Target": "ballot"})
    html = r.data.decode()
    assert html.lstrip().startswith('<div id="ballot"') and "<html" not in html
    target = {"HX-Request": "true", "HX-Target": f"b-{meeting.one}"}
    r = phone.cast(meeting.one, "abstain", target)
    html = r.data.decode()
    assert r.status_code == 200 and html.lstrip().startswith(f'<li id="b-{meeting.one}"')
    assert "您已投票：弃权" in html and "<html" not in html
    r = phone.cast(meeting.one, "yes", target)
    assert r.status_code == 422 and "已经投过票" in r.data.decode()
    assert "<html" not in r.data.decode()
    assert votes(meeting.one) == {world.hh1x.id: "abstain"}


def test_unknown_code_is_refused(world, meeting, resident):
    phone = resident()
    r = phone.enter("ZZZZ9999")
    assert r.status_code == 422 and svc.BAD_CODE in r.data.decode()
    r = phone.enter("")
    assert r.status_code == 422 and "请输入" in r.data.decode()
    r = phone.ballot()
    assert r.status_code == 303 and r.location.endswith("/v")
    r = phone.cast(meeting.one, "yes")
    assert r.status_code == 303 and r.location.endswith("/v")
    assert votes(meeting.one) == {}


def test_code_stops_working_after_the_meeting_ends(world, meeting, resident, scope_of):
    phone = resident()
    code = meeting.codes[world.hh1.id]
    phone.enter(code)
    assert phone.cast(meeting.one, "yes").status_code == 303
    end(world, scope_of, meeting.id, meeting.one, meeting.two)

    r = phone.ballot()
    assert r.status_code == 200 and "会议已经结束" in r.data.decode()
    assert "hx-get" not in r.data.decode()  # no more polling
    # the session entry is gone, and the code with it
    assert phone.ballot().status_code == 303
    r = phone.enter(code)
    assert r.status_code == 422 and svc.BAD_CODE in r.data.decode()
    assert phone.cast(meeting.one, "no").status_code == 303
    assert votes(meeting.one) == {world.hh1.id: "yes"}


def test_vote_refused_after_close(world, meeting, resident, scope_of):
    from portal.blueprints.agenda.models import AgendaItem

    phone = resident()
    phone.enter(meeting.codes[world.hh1.id])
    staff = world.village_staff
    svc.close_vote(staff, scope_of(staff), db.session.get(AgendaItem, meeting.one))
    db.session.commit()
    r = phone.cast(meeting.one, "yes")
    assert r.status_code == 422 and "表决已结束" in r.data.decode()
    assert "表决已结束" in text(phone.ballot().data.decode())
    assert votes(meeting.one) == {}


def test_a_code_cannot_vote_on_another_meetings_item(world, meeting, resident, make_item,
                                                      make_meeting, scope_of):
    staff = world.village_staff
    other_item = make_item(world.village1, staff, title="另一次会议的议题")
    other = make_meeting(world.village1, staff, title="另一次会议", open=True,
                         items=[(other_item, "cast_majority", "household")])
    scope = scope_of(staff)
    svc.check_in(staff, scope, other, world.hh1)  # checked in there too
    svc.open_vote(staff, scope, other_item)
    db.session.commit()

    phone = resident()
    phone.enter(meeting.codes[world.hh1.id])
    r = phone.cast(other_item.id, "yes")
    assert r.status_code == 404 and "不在您参加的会议上" in r.data.decode()
    assert phone.cast(999999, "yes").status_code == 404
    assert votes(other_item.id) == {}
    assert "另一次会议的议题" not in phone.ballot().data.decode()


def test_undone_check_in_kills_the_code(world, meeting, resident, scope_of):
    from portal.blueprints.agenda.models import AgendaItem, Meeting

    phone = resident()
    phone.enter(meeting.codes[world.hh1.id])
    staff = world.village_staff
    two = db.session.get(AgendaItem, meeting.two)  # no undo while a show of hands is open
    svc.set_hands(staff, scope_of(staff), two, 1, 0, 0)
    svc.close_vote(staff, scope_of(staff), two)
    svc.undo_check_in(staff, scope_of(staff), db.session.get(Meeting, meeting.id), world.hh1.id)
    db.session.commit()
    r = phone.ballot()
    assert r.status_code == 303
    assert "投票码已失效" in phone.c.get(r.location).data.decode()
    assert phone.cast(meeting.one, "yes").status_code == 303
    assert votes(meeting.one) == {}


def test_leave_clears_the_session(world, meeting, resident):
    phone = resident()
    phone.enter(meeting.codes[world.hh1.id])
    page = phone.c.get("/v").data.decode()
    assert "本机正在为<b>甲家</b>投票" in page
    r = phone.c.post("/v/leave", data={"csrf_token": phone.token})
    assert r.status_code == 303 and r.location.endswith("/v")
    assert phone.ballot().status_code == 303


def test_wrong_codes_are_rate_limited_but_good_ones_never_count(world, meeting, resident):
    phone = resident()
    good = meeting.codes[world.hh1.id]
    for _ in range(30):  # a whole 议事亭 on one Wi-Fi address entering good codes
        assert phone.enter(good).status_code == 303
    for _ in range(20):
        assert phone.enter("ZZZZ9999").status_code == 422
    r = phone.enter("ZZZZ9999")
    assert r.status_code == 429 and "输错投票码的次数太多了" in r.data.decode()
    # the ballot itself is not limited
    assert phone.ballot().status_code == 200
    assert db.session.scalar(select(Attendance.code).where(
        Attendance.household_id == world.hh1.id)) == good


def test_public_pages_stay_within_eight_queries(world, meeting, resident, count_queries):
    phone = resident()
    phone.enter(meeting.codes[world.hh1.id])
    for headers in ({}, {"HX-Request": "true", "HX-Target": "ballot"}):
        with count_queries() as n:
            r = phone.ballot(headers)
        assert r.status_code == 200 and n.count <= 8, (n.count, n.statements)
    with count_queries() as n:
        r = phone.cast(meeting.one, "yes", {"HX-Request": "true", "HX-Target": f"b-{meeting.one}"})
    assert r.status_code == 200 and n.count <= 12, (n.count, n.statements)
