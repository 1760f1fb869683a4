"""The chair's phone at the 议事亭, through the views: start the meeting, check households in,
open a vote, tap the votes in (or enter a show of hands), watch the tally, close it, end the
meeting. Who may chair (403 / 404), refusals (422, nothing saved), htmx partials and the
JS-off redirects."""

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.blueprints.agenda.models import AgendaItem, Attendance, Meeting, Vote
from portal.extensions import db
from tests.conftest import csrf_from

PHONE = "13912345678"  # 甲1's phone: never on an agenda page


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def htmx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


@pytest.fixture
def setup(world, make_item, make_meeting):
    """A 民情恳谈会 of village 1 convened by the village cadre: item 1 voted per household
    (到会过半), item 2 by a show of hands, item 3 never voted."""
    staff = world.village_staff
    one = make_item(world.village1, staff, title="修缮山塘输水洞")
    two = make_item(world.group1, staff, title="组道路灯安装")
    three = make_item(world.hood1, staff, title="垃圾分类点搬迁")
    meeting = make_meeting(world.village1, staff, items=[
        (one, "present_majority", "household"), (two, "present_majority", "hands"),
        (three, "cast_majority", "household")])
    return SimpleNamespace(meeting=meeting.id, one=one.id, two=two.id, three=three.id)


@pytest.fixture
def chair(world, login_as, setup):
    """The village cadre's client, with the page's CSRF token."""
    c = login_as(world.village_staff)
    c.token = csrf_from(c.get(f"/agenda/meetings/{setup.meeting}/run"))
    return c


def post(c, url, data=None, headers=None):
    return c.post(url, data={"csrf_token": c.token, **(data or {})}, headers=headers or {})


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def present(meeting_id) -> int:
    return db.session.scalar(select(func.count(Attendance.id)).where(
        Attendance.meeting_id == meeting_id))


def votes(item_id) -> dict:
    return dict(db.session.execute(select(Vote.household_id, Vote.choice).where(
        Vote.item_id == item_id)).all())


# -- the whole flow --------------------------------------------------------------------------------
def test_open_check_in_vote_close(world, setup, chair):
    m, one = setup.meeting, setup.one
    page = chair.get(f"/agenda/meetings/{m}/run").data.decode()
    assert "开始会议（开始签到）" in page and "修缮山塘输水洞" in page

    r = post(chair, f"/agenda/meetings/{m}/open")
    assert r.status_code == 303 and r.location.endswith(f"/agenda/meetings/{m}/checkin")
    page = chair.get(r.location).data.decode()
    assert "会议已开始，应到 3 户" in page
    assert "到会 <b>0</b> / 应到 3 户" in page and "本次议题不设法定人数" in page
    for name in ("甲1", "乙1", "丙1"):
        assert name in page
    assert "甲2" not in page and PHONE not in page and "邻11" in page

    # JS off: 303 back to the list, the search kept; twice is harmless
    url = f"/agenda/meetings/{m}/checkin/{world.hh1.id}"
    r = post(chair, url, {"q": "甲"})
    assert r.status_code == 303 and "q=" in r.location and r.location.endswith(f"#ci-{world.hh1.id}")
    page = chair.get(r.location).data.decode()
    code = db.session.scalar(select(Attendance.code).where(
        Attendance.household_id == world.hh1.id))
    assert f"已签到：甲1家 · 投票码 {code[:4]} {code[4:]}" in page
    assert post(chair, url).status_code == 303
    assert "已经签到过了" in chair.get(f"/agenda/meetings/{m}/checkin").data.decode()
    assert present(m) == 1

    # htmx: the row comes back in place, with the event for the attendance counter
    r = post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1x.id}",
             {"representative": "乙小明"}, htmx(f"ci-{world.hh1x.id}"))
    assert r.status_code == 200 and r.headers["HX-Trigger"] == "attendance-changed"
    html = r.data.decode()
    assert html.lstrip().startswith(f'<li id="ci-{world.hh1x.id}"') and "<html" not in html
    assert "已签到 · 投票码" in html and "户代表：乙小明" in html
    assert present(m) == 2

    # votes are refused before the vote opens (and nothing saved)
    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "yes"})
    assert r.status_code == 422 and "表决尚未开始" in r.data.decode()
    assert votes(one) == {}

    r = post(chair, f"/agenda/items/{one}/open")
    assert r.status_code == 303 and r.location.endswith(f"/agenda/items/{one}/vote")
    page = chair.get(r.location).data.decode()
    assert "开始表决：修缮山塘输水洞" in page and "赞成票过到会户数半数" in page
    assert 'hx-trigger="every 2s' in page and "甲1家" in page and "乙1家" in page
    assert "丙1家" not in page  # not checked in

    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "yes"})
    assert r.status_code == 303 and r.location.endswith(f"#v-{world.hh1.id}")
    assert "已记录：甲1家 · 赞成" in chair.get(r.location).data.decode()
    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1x.id}", {"choice": "no"},
             htmx(f"v-{world.hh1x.id}"))
    assert r.status_code == 200 and r.headers["HX-Trigger"] == "vote-changed"
    assert "已投：反对" in r.data.decode() and "<html" not in r.data.decode()

    # a second vote: the service's message, nothing changes
    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "no"},
             htmx(f"v-{world.hh1.id}"))
    assert r.status_code == 422 and "已经投过票（赞成）" in r.data.decode()
    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "no"})
    assert r.status_code == 422 and "已经投过票" in r.data.decode()
    assert votes(one) == {world.hh1.id: "yes", world.hh1x.id: "no"}

    # a household not checked in cannot vote
    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1b.id}", {"choice": "yes"})
    assert r.status_code == 422 and "未在本次会议签到" in r.data.decode()

    # close: the confirmation shows the tally and the rule, then the result is locked
    page = text(chair.get(f"/agenda/items/{one}/close").data.decode())
    assert "赞成票过到会户数半数" in page and "按此结束，结果为：未通过" in page
    r = post(chair, f"/agenda/items/{one}/close")
    assert r.status_code == 303
    page = chair.get(r.location).data.decode()
    assert "表决结果：未通过（赞成 1 反对 1 弃权 0，到会 2 户）" in page
    assert "every 2s" not in page and f"/agenda/items/{one}" in page and "结果已锁定" in page
    item = fresh(AgendaItem, one)
    assert (item.status, item.result_yes, item.result_no, item.result_present) == \
        ("rejected", 1, 1, 2)

    # after close: no more votes, no second close
    post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1b.id}")
    r = post(chair, f"/agenda/items/{one}/vote/{world.hh1b.id}", {"choice": "yes"})
    assert r.status_code == 422 and "表决已结束" in r.data.decode()
    assert post(chair, f"/agenda/items/{one}/close").status_code == 422
    assert len(votes(one)) == 2 and fresh(AgendaItem, one).status == "rejected"

    # end the meeting: the unvoted items go back to 提议
    r = chair.get(f"/agenda/meetings/{m}/end")
    assert r.status_code == 200 and "2 个议题还没有表决" in r.data.decode()
    r = post(chair, f"/agenda/meetings/{m}/end")
    assert r.status_code == 303 and r.location.endswith(f"/agenda/meetings/{m}/run")
    page = chair.get(r.location).data.decode()
    assert "2 个未表决的议题已退回“提议”" in page
    assert f"/agenda/meetings/{m}/minutes.pdf" in page and "到会 <b>3</b> / 应到 3 户" in page
    assert fresh(Meeting, m).status == "ended"
    assert fresh(AgendaItem, setup.two).status == "proposed"
    # nothing more after the end
    r = post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1.id}")
    assert r.status_code == 422 and "会议已结束" in r.data.decode()


def test_hands_counts_cannot_exceed_attendance(world, setup, chair):
    m, two = setup.meeting, setup.two
    post(chair, f"/agenda/meetings/{m}/open")
    post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1.id}")
    post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1x.id}")
    post(chair, f"/agenda/items/{two}/open")
    page = chair.get(f"/agenda/items/{two}/vote").data.decode()
    assert "录入票数" in page and 'id="v-' not in page  # no household rows for hands

    # closing before the counts are entered is refused
    assert "请先录入举手表决的票数" in post(chair, f"/agenda/items/{two}/close").data.decode()
    r = post(chair, f"/agenda/items/{two}/hands", {"yes": "2", "no": "1", "abstain": "0"})
    assert r.status_code == 422 and "超过到会 2 户" in r.data.decode()
    r = post(chair, f"/agenda/items/{two}/hands", {"yes": "-1", "no": "0", "abstain": "0"})
    assert r.status_code == 422
    r = post(chair, f"/agenda/items/{two}/hands", {"yes": "x", "no": "0", "abstain": "0"})
    assert r.status_code == 422
    assert fresh(AgendaItem, two).hands_entered is False

    r = post(chair, f"/agenda/items/{two}/hands", {"yes": "2", "no": "0", "abstain": "0"})
    assert r.status_code == 303
    page = text(chair.get(r.location).data.decode())
    assert "已录入举手票数：赞成 2 反对 0 弃权 0" in page and "当前若结束：通过" in page
    # a household vote on a hands item is refused
    r = post(chair, f"/agenda/items/{two}/vote/{world.hh1.id}", {"choice": "yes"})
    assert r.status_code == 422 and "举手表决" in r.data.decode()
    # undo check-in is refused while a show of hands is open
    r = post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1.id}/undo")
    assert r.status_code == 422 and "举手表决进行中" in r.data.decode()
    assert post(chair, f"/agenda/items/{two}/close").status_code == 303
    item = fresh(AgendaItem, two)
    assert (item.status, item.result_yes, item.result_present) == ("passed", 2, 2)


def test_undo_check_in(world, setup, chair):
    m, one = setup.meeting, setup.one
    post(chair, f"/agenda/meetings/{m}/open")
    post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1.id}")
    post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1x.id}")
    url = f"/agenda/meetings/{m}/checkin/{world.hh1x.id}/undo"
    page = chair.get(url + "?q=乙").data.decode()
    assert "撤销签到：乙1家" in page and "确认撤销" in page
    assert present(m) == 2  # the GET only asks
    r = post(chair, url, {"q": "乙"})
    assert r.status_code == 303 and "q=" in r.location
    assert "已撤销乙1家的签到" in chair.get(r.location).data.decode()
    assert present(m) == 1

    # refused once the household has voted
    post(chair, f"/agenda/items/{one}/open")
    post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "abstain"})
    r = post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1.id}/undo")
    assert r.status_code == 422 and "已经投票，不能撤销签到" in r.data.decode()
    assert present(m) == 1
    # and a household never checked in
    r = post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1b.id}/undo")
    assert r.status_code == 422 and "尚未签到" in r.data.decode()


def test_votes_refused_before_the_meeting_opens(world, setup, chair):
    m, one = setup.meeting, setup.one
    r = post(chair, f"/agenda/items/{one}/open")
    assert r.status_code == 422 and "会议开始后才能表决" in r.data.decode()
    r = post(chair, f"/agenda/meetings/{m}/checkin/{world.hh1.id}")
    assert r.status_code == 422 and "会议开始后才能签到" in r.data.decode()
    assert "会议开始后才能表决" in chair.get(f"/agenda/items/{one}/vote").data.decode()
    assert fresh(AgendaItem, one).status == "scheduled" and present(m) == 0
    # ending a meeting that never started
    r = post(chair, f"/agenda/meetings/{m}/end")
    assert r.status_code == 422 and "会议不在进行中" in r.data.decode()
    # opening twice
    assert post(chair, f"/agenda/meetings/{m}/open").status_code == 303
    r = post(chair, f"/agenda/meetings/{m}/open")
    assert r.status_code == 422 and "已经开始" in r.data.decode()


def test_cannot_end_while_a_vote_is_open(world, setup, chair):
    m = setup.meeting
    post(chair, f"/agenda/meetings/{m}/open")
    post(chair, f"/agenda/items/{setup.one}/open")
    page = chair.get(f"/agenda/meetings/{m}/end").data.decode()
    assert "还有 1 个议题正在表决" in page
    r = post(chair, f"/agenda/meetings/{m}/end")
    assert r.status_code == 422 and "请先结束表决" in r.data.decode()
    assert fresh(Meeting, m).status == "open"


# -- partials --------------------------------------------------------------------------------------
def test_tally_partial_polls_only_while_voting(world, setup, chair):
    m, one = setup.meeting, setup.one
    post(chair, f"/agenda/meetings/{m}/open")
    for hh in (world.hh1, world.hh1x, world.hh1b):
        post(chair, f"/agenda/meetings/{m}/checkin/{hh.id}")
    post(chair, f"/agenda/items/{one}/open")
    post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "yes"})
    post(chair, f"/agenda/items/{one}/vote/{world.hh1x.id}", {"choice": "yes"})

    r = chair.get(f"/agenda/items/{one}/tally", headers=htmx("tally"))
    html = r.data.decode()
    assert r.status_code == 200 and html.lstrip().startswith('<section id="tally"')
    assert 'hx-trigger="every 2s' in html and "<html" not in html
    page = text(html)
    assert "2赞成" in page and "0反对" in page and "1未投" in page and "3到会" in page
    assert "当前若结束：通过" in page
    # JS off (or a stray GET): the vote page
    r = chair.get(f"/agenda/items/{one}/tally")
    assert r.status_code == 302 and r.location.endswith(f"/agenda/items/{one}/vote")

    post(chair, f"/agenda/items/{one}/close")
    html = chair.get(f"/agenda/items/{one}/tally", headers=htmx("tally")).data.decode()
    assert "hx-get" not in html and "表决结果：" in text(html) and "通过" in html


def test_attendance_partial_and_quorum(world, make_item, make_meeting, login_as):
    staff = world.village_staff
    item = make_item(world.village1, staff, title="修订村规民约")
    meeting = make_meeting(world.village1, staff, kind="assembly", title="村民会议",
                           items=[(item, "assembly", "household")], open=True)
    c = login_as(staff)
    c.token = csrf_from(c.get(f"/agenda/meetings/{meeting.id}/run"))
    url = f"/agenda/meetings/{meeting.id}/attendance"
    html = c.get(url, headers=htmx("attendance")).data.decode()
    assert html.lstrip().startswith('<section id="attendance"') and "every 5s" in html
    assert "法定人数：需 2 户，还差 2 户" in html and "到会 <b>0</b> / 应到 3 户" in html
    post(c, f"/agenda/meetings/{meeting.id}/checkin/{world.hh1.id}")
    post(c, f"/agenda/meetings/{meeting.id}/checkin/{world.hh1b.id}")
    html = c.get(url + "?page=checkin", headers=htmx("attendance")).data.decode()
    assert "法定人数：需 2 户，已达到" in html
    assert f'href="/agenda/meetings/{meeting.id}/checkin"' in html  # the refresh link
    r = c.get(url)
    assert r.status_code == 302 and r.location.endswith(f"/agenda/meetings/{meeting.id}/run")


def test_check_in_search_partial(world, setup, chair):
    m = setup.meeting
    post(chair, f"/agenda/meetings/{m}/open")
    r = chair.get(f"/agenda/meetings/{m}/checkin?q=丙", headers=htmx("checkin-list"))
    html = r.data.decode()
    assert html.lstrip().startswith('<div id="checkin-list">') and "<html" not in html
    assert "丙1家" in html and "甲1家" not in html
    assert 'name="q" value="丙"' in html  # the search is kept by the tap
    html = chair.get(f"/agenda/meetings/{m}/checkin?q=没有这个人").data.decode()
    assert "没有找到“没有这个人”" in html


# -- who may chair -----------------------------------------------------------------------------------
def test_403_for_who_sees_but_may_not_chair(world, setup, login_as):
    c = login_as(world.neighbor_chief)  # sees the village meeting, chairs only their 邻's
    token = csrf_from(c.get("/agenda/"))
    m, one = setup.meeting, setup.one
    for url in (f"/agenda/meetings/{m}/run", f"/agenda/meetings/{m}/checkin",
                f"/agenda/meetings/{m}/end", f"/agenda/items/{one}/vote",
                f"/agenda/items/{one}/close",
                f"/agenda/meetings/{m}/checkin/{world.hh1.id}/undo"):
        assert c.get(url).status_code == 403, url
    for url in (f"/agenda/meetings/{m}/open", f"/agenda/items/{one}/open",
                f"/agenda/meetings/{m}/checkin/{world.hh1.id}"):
        assert c.post(url, data={"csrf_token": token}).status_code == 403, url
    assert fresh(Meeting, m).status == "planned" and present(m) == 0


def test_404_for_a_chief_of_another_village(world, setup, login_as):
    c = login_as(world.neighbor_chief2)
    token = csrf_from(c.get("/agenda/"))
    m, one = setup.meeting, setup.one
    for url in (f"/agenda/meetings/{m}/run", f"/agenda/meetings/{m}/checkin",
                f"/agenda/items/{one}/vote", f"/agenda/items/{one}/tally"):
        assert c.get(url).status_code == 404, url
    assert c.post(f"/agenda/meetings/{m}/open", data={"csrf_token": token}).status_code == 404
    assert fresh(Meeting, m).status == "planned"


def test_a_neighbor_chief_runs_a_wuchang_of_their_own_hood(world, make_item, make_meeting,
                                                           login_as):
    chief = world.neighbor_chief
    item = make_item(world.hood1, chief, title="楼道堆物清理")
    meeting = make_meeting(world.hood1, chief, kind="wuchang", title="屋场会",
                           items=[(item, "cast_majority", "household")])
    c = login_as(chief)
    c.token = csrf_from(c.get(f"/agenda/meetings/{meeting.id}/run"))
    assert post(c, f"/agenda/meetings/{meeting.id}/open").status_code == 303
    page = c.get(f"/agenda/meetings/{meeting.id}/checkin").data.decode()
    assert "甲1家" in page and "乙1家" in page and "丙1家" not in page  # only their 邻
    assert "应到 2 户" in page
    assert post(c, f"/agenda/meetings/{meeting.id}/checkin/{world.hh1.id}").status_code == 303
    # a household of another 邻 is not theirs to check in
    r = post(c, f"/agenda/meetings/{meeting.id}/checkin/{world.hh1b.id}")
    assert r.status_code in (404, 422)
    assert post(c, f"/agenda/items/{item.id}/open").status_code == 303
    assert post(c, f"/agenda/items/{item.id}/vote/{world.hh1.id}",
                {"choice": "yes"}).status_code == 303
    assert post(c, f"/agenda/items/{item.id}/close").status_code == 303
    assert fresh(AgendaItem, item.id).status == "passed"


# -- budgets -----------------------------------------------------------------------------------------
def test_pages_stay_within_eight_queries(world, setup, chair, count_queries):
    m, one = setup.meeting, setup.one
    post(chair, f"/agenda/meetings/{m}/open")
    for hh in (world.hh1, world.hh1x, world.hh1b):
        post(chair, f"/agenda/meetings/{m}/checkin/{hh.id}")
    post(chair, f"/agenda/items/{one}/open")
    post(chair, f"/agenda/items/{one}/vote/{world.hh1.id}", {"choice": "yes"})
    for url, headers in ((f"/agenda/meetings/{m}/run", {}),
                         (f"/agenda/meetings/{m}/checkin", {}),
                         (f"/agenda/meetings/{m}/checkin?q=甲", htmx("checkin-list")),
                         (f"/agenda/meetings/{m}/attendance", htmx("attendance")),
                         (f"/agenda/items/{one}/vote", {}),
                         (f"/agenda/items/{one}/tally", htmx("tally")),
                         (f"/agenda/items/{one}/close", {}),
                         (f"/agenda/meetings/{m}/end", {})):
        with count_queries() as n:
            r = chair.get(url, headers=headers)
        assert r.status_code == 200, url
        assert n.count <= 8, (url, n.count, n.statements)
        assert PHONE not in r.data.decode()
