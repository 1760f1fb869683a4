"""The staff pages of 议事 (part A): the 议题 list, raising an item (六议 category, off-list flow),
one item (schedule, decision, answer, correction), venues, meetings and their ordered agenda;
scope (404 outside, 403 for a role that may not act), refusals (422 with the rule's message,
nothing saved) and the query budget of the main pages."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.models import AgendaItem, Meeting, ResultCorrection, Venue
from portal.blueprints.duties.models import ChecklistItem
from portal.clock import local_today
from portal.extensions import db
from tests.agenda.conftest import NOW
from tests.conftest import Browser


@pytest.fixture
def browser(login_as):
    return lambda user: Browser(login_as(user))


def text(r) -> str:
    return r.data.decode()


def fresh(model, id_):
    db.session.rollback()
    return db.session.get(model, id_)


def count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(model.id)).where(*where))


@pytest.fixture
def staff(world, browser):
    return browser(world.village_staff)


@pytest.fixture
def chief(world, browser):
    return browser(world.neighbor_chief)


@pytest.fixture
def decided(world, make_item, make_meeting, scope_of):
    """decided(yes=2, no=0, abstain=0) → a passed/rejected item of 组1, voted by its 3 households
    at an ended 恳谈会 chaired by the village staff."""

    def make(yes=2, no=0, abstain=0, title="山塘输水洞修缮"):
        actor = world.village_staff
        scope = scope_of(actor)
        item = make_item(world.hood1, actor, title=title)
        meeting = make_meeting(world.group1, actor, items=[(item, "present_majority", "household")],
                               open=True)
        item = svc.load_item(item.id)
        households = [world.hh1, world.hh1x, world.hh1b]
        for h in households:
            svc.check_in(actor, scope, meeting, h, now=NOW)
        svc.open_vote(actor, scope, item, now=NOW)
        choices = ["yes"] * yes + ["no"] * no + ["abstain"] * abstain
        for h, choice in zip(households, choices, strict=False):
            svc.cast_vote(item, h.id, choice, actor=actor, now=NOW)
        svc.close_vote(actor, scope, item, now=NOW)
        db.session.commit()
        return item

    return make


# -- pages and roles ------------------------------------------------------------------------------
def test_pages_render_in_chinese_for_the_right_roles(world, browser, make_item, make_meeting):
    item = make_item(world.hood1, world.neighbor_chief)
    meeting = make_meeting(world.group1, world.village_staff, items=[
        (item, "present_majority", "household")])
    for user in (world.village_staff, world.town_staff, world.neighbor_chief, world.group_chief,
                 world.admin):
        b = browser(user)
        r = b.get("/agenda/")
        assert r.status_code == 200 and "提出议题" in text(r) and "议事场所" in text(r)
        assert "山塘输水洞修缮" in text(r) and "十一月民情恳谈会" in text(r)
        for url in ("/agenda/items/new", "/agenda/meetings", "/agenda/venues",
                    "/agenda/meetings/new", f"/agenda/items/{item.id}",
                    f"/agenda/meetings/{meeting.id}"):
            r = b.get(url)
            assert r.status_code == 200, (user.name, url)
    for user in (world.volunteer, world.nobody):
        b = browser(user)
        for url in ("/agenda/", "/agenda/items/new", "/agenda/meetings", "/agenda/venues"):
            assert b.get(url).status_code == 403, (user.name, url)
        assert b.get(f"/agenda/items/{item.id}").status_code == 404


def test_empty_states_say_what_to_do(staff):
    page = text(staff.get("/agenda/"))
    assert "还没有议题。点「提出议题」" in page and "还没有安排会议。点「召集会议」" in page
    assert "点「新增场所」" in text(staff.get("/agenda/venues"))
    assert "没有即将召开的会议" in text(staff.get("/agenda/meetings"))


# -- raising an item ------------------------------------------------------------------------------
def test_a_neighbor_chief_raises_an_item_for_their_hood(world, chief, category):
    page = text(chief.get("/agenda/items/new"))
    assert re.search(rf'<option selected value="{world.hood1.id}">', page)
    assert "清单外事项（由镇村干部决定是否上会）" in page and 'value="off"' in page
    cats = svc.deliberation_items(world.town.id)
    assert cats[0].title in page
    r = chief.post("/agenda/items/new", region_id=world.hood1.id,
                   category_id=category(world.town), title="小区路灯更换",
                   background="三栋门口路灯坏了半年。", proposal="更换为太阳能路灯，费用从公益金出。")
    assert r.status_code == 303
    item = db.session.scalar(select(AgendaItem).where(AgendaItem.title == "小区路灯更换"))
    assert item.path == world.hood1.path and item.raised_by_id == world.neighbor_chief.id
    page = text(chief.get(r.headers["Location"]))
    assert "议题已提出" in page and "小区路灯更换" in page and "提议" in page
    assert "三栋门口路灯坏了半年" in page and "更换为太阳能路灯" in page


def test_a_category_outside_the_list_is_refused_on_the_form(world, chief):
    duty = db.session.scalar(select(ChecklistItem).where(ChecklistItem.town_id == world.town.id,
                                                         ChecklistItem.kind == "duty"))
    r = chief.post("/agenda/items/new", region_id=world.hood1.id, category_id=duty.id,
                   title="小区路灯更换", background="三栋门口路灯坏了。", proposal="更换路灯。")
    assert r.status_code == 422
    assert "不在本镇的议事清单（六议）内" in text(r)
    r = chief.post("/agenda/items/new", region_id=world.hood1.id, category_id="",
                   title="小区路灯更换", background="三栋门口路灯坏了。", proposal="更换路灯。")
    assert r.status_code == 422 and "请选择议事清单（六议）中的类别" in text(r)
    r = chief.post("/agenda/items/new", region_id=world.hood1.id, category_id="off",
                   title="灯", background="坏了", proposal="换")
    assert r.status_code == 422 and "请填写议题名称" in text(r)
    assert count(AgendaItem) == 0


def test_a_chief_cannot_raise_an_item_in_another_village(world, browser, category):
    b = browser(world.neighbor_chief2)
    r = b.post("/agenda/items/new", region_id=world.hood1.id, category_id=category(world.town),
               title="小区路灯更换", background="三栋门口路灯坏了。", proposal="更换路灯。")
    assert r.status_code == 404 and count(AgendaItem) == 0


def test_off_list_items_wait_for_staff_who_accept_or_decline(world, chief, staff, category):
    r = chief.post("/agenda/items/new", region_id=world.hood1.id, category_id="off",
                   title="广场舞音响音量", background="晚上十点后还在放音乐。", proposal="约定时间和音量。")
    assert r.status_code == 303
    item = db.session.scalar(select(AgendaItem).where(AgendaItem.title == "广场舞音响音量"))
    assert item.off_list and item.category_id is None
    page = text(chief.get(f"/agenda/items/{item.id}"))
    assert "待干部决定" in page and "<h2>决定是否上会</h2>" not in page
    waiting = text(staff.get("/agenda/?status=waiting"))
    assert "广场舞音响音量" in waiting and "待决定 1" in waiting
    assert "<h2>决定是否上会</h2>" in text(staff.get(f"/agenda/items/{item.id}"))

    # a 邻长 cannot decide
    r = chief.post(f"/agenda/items/{item.id}/decide", decision="accept",
                   category_id=category(world.town), note="")
    assert r.status_code == 403 and fresh(AgendaItem, item.id).category_id is None
    # accepting needs a category
    r = staff.post(f"/agenda/items/{item.id}/decide", decision="accept", category_id=0, note="")
    assert r.status_code == 422 and "请选择议事清单（六议）中的类别" in text(r)
    r = staff.post(f"/agenda/items/{item.id}/decide", decision="accept",
                   category_id=category(world.town, 2), note="涉及公共秩序")
    assert r.status_code == 303
    item = fresh(AgendaItem, item.id)
    assert item.category_id == category(world.town, 2) and item.status == "proposed"
    assert "清单外，已准予上会" in text(staff.get(f"/agenda/items/{item.id}"))

    r = chief.post("/agenda/items/new", region_id=world.hood1.id, category_id="off",
                   title="宠物粪便清理", background="楼下草坪狗粪多。", proposal="设置宠物便袋箱。")
    other = db.session.scalar(select(AgendaItem).where(AgendaItem.title == "宠物粪便清理"))
    r = staff.post(f"/agenda/items/{other.id}/decide", decision="decline", category_id=0, note="")
    assert r.status_code == 422 and "请填写不予上会的理由" in text(r)
    assert fresh(AgendaItem, other.id).status == "proposed"
    r = staff.post(f"/agenda/items/{other.id}/decide", decision="decline", category_id=0,
                   note="属物业管理事项，已转物业处理")
    assert r.status_code == 303 and fresh(AgendaItem, other.id).status == "declined"
    page = text(chief.get(f"/agenda/items/{other.id}"))
    assert "不予上会" in page and "属物业管理事项" in page


# -- scheduling and the agenda --------------------------------------------------------------------
def test_schedule_move_unschedule_and_terms(world, staff, make_item, make_meeting):
    meeting = make_meeting(world.group1, world.village_staff, minutes=30)
    a = make_item(world.hood1, world.neighbor_chief, title="山塘输水洞修缮")
    b = make_item(world.hood1b, world.group_chief, title="村道路灯维修")
    c = make_item(world.hood2, world.neighbor_chief2, title="村二的议题")  # outside 组1

    page = text(staff.get(f"/agenda/items/{a.id}"))
    assert "排入会议" in page and "十一月民情恳谈会" in page
    r = staff.post(f"/agenda/items/{a.id}/schedule", meeting_id=meeting.id, planned_minutes=20,
                   rule="present_majority", vote_mode="household", back="item")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/agenda/items/{a.id}")
    assert fresh(AgendaItem, a.id).status == "scheduled"

    page = text(staff.get(f"/agenda/meetings/{meeting.id}"))
    assert "可排入的议题" in page and "村道路灯维修" in page and "村二的议题" not in page
    r = staff.post(f"/agenda/items/{b.id}/schedule", meeting_id=meeting.id, planned_minutes=15,
                   rule="assembly", vote_mode="hands", back="meeting")
    assert r.status_code == 422 and "“村民会议”规则只用于村民会议" in text(r)
    assert fresh(AgendaItem, b.id).status == "proposed"
    r = staff.post(f"/agenda/items/{b.id}/schedule", meeting_id=meeting.id, planned_minutes=15,
                   rule="cast_majority", vote_mode="hands", back="meeting")
    assert r.status_code == 303 and f"/agenda/meetings/{meeting.id}" in r.headers["Location"]
    r = staff.post(f"/agenda/items/{c.id}/schedule", meeting_id=meeting.id, planned_minutes=15,
                   rule="cast_majority", vote_mode="hands", back="item")
    assert r.status_code == 404  # village 2's item is outside the village staff's scope

    # 20 + 15 minutes on a 30-minute meeting
    page = text(staff.get(f"/agenda/meetings/{meeting.id}"))
    assert "议程预计超出会议时长 5 分钟" in page
    assert page.index("山塘输水洞修缮") < page.index("村道路灯维修")

    r = staff.post(f"/agenda/items/{b.id}/move", delta=-1)
    assert r.status_code == 303
    assert (fresh(AgendaItem, b.id).position, fresh(AgendaItem, a.id).position) == (1, 2)
    # with htmx: the agenda partial comes back with the flash out of band
    r = staff.post(f"/agenda/items/{b.id}/move", delta=1,
                   headers={"HX-Request": "true", "HX-Target": "agenda-list"})
    assert r.status_code == 303
    r = staff.get(r.headers["Location"], headers={"HX-Request": "true",
                                                  "HX-Target": "agenda-list"})
    assert r.status_code == 200 and text(r).startswith("\n<section id=\"agenda-list\"") is False
    assert 'id="agenda-list"' in text(r) and "<html" not in text(r) and "已下移" in text(r)
    assert fresh(AgendaItem, a.id).position == 1

    r = staff.post(f"/agenda/items/{a.id}/terms", planned_minutes=10, rule="present_two_thirds",
                   vote_mode="hands")
    assert r.status_code == 303
    a_ = fresh(AgendaItem, a.id)
    assert (a_.planned_minutes, a_.rule, a_.vote_mode) == (10, "present_two_thirds", "hands")
    r = staff.post(f"/agenda/items/{a.id}/terms", planned_minutes=0, rule="present_two_thirds",
                   vote_mode="hands")
    assert r.status_code == 422 and "预计时长应在 1 到 600 分钟之间" in text(r)
    assert "议程预计超出会议时长" not in text(staff.get(f"/agenda/meetings/{meeting.id}"))

    r = staff.post(f"/agenda/items/{a.id}/unschedule", note="")
    assert r.status_code == 303
    a_, b_ = fresh(AgendaItem, a.id), fresh(AgendaItem, b.id)
    assert (a_.status, a_.meeting_id, b_.position) == ("proposed", None, 1)
    page = text(staff.get(f"/agenda/meetings/{meeting.id}"))
    assert "已撤下" in page


def test_a_neighbor_chief_cannot_rearrange_a_group_meeting(world, chief, make_item, make_meeting):
    a = make_item(world.hood1, world.neighbor_chief)
    b = make_item(world.hood1, world.neighbor_chief, title="村道路灯维修")
    meeting = make_meeting(world.group1, world.village_staff, items=[
        (a, "present_majority", "household"), (b, "present_majority", "household")])
    page = text(chief.get(f"/agenda/meetings/{meeting.id}"))
    assert "山塘输水洞修缮" in page and "撤下" not in page and "可排入的议题" not in page
    assert chief.post(f"/agenda/items/{b.id}/move", delta=-1).status_code == 403
    assert chief.post(f"/agenda/items/{a.id}/unschedule", note="").status_code == 403
    assert fresh(AgendaItem, a.id).position == 1


# -- venues ---------------------------------------------------------------------------------------
def test_venues_are_created_and_edited_by_staff(world, staff, chief):
    page = text(staff.get("/agenda/venues/new"))
    assert "新增议事场所" in page and "议事亭" in page
    r = staff.post("/agenda/venues/new", region_id=world.group1.id, name="樟树下议事亭",
                   kind="pavilion", capacity=40, address="组1樟树下", active="y")
    assert r.status_code == 303
    venue = db.session.scalar(select(Venue).where(Venue.name == "樟树下议事亭"))
    assert venue.path == world.group1.path and venue.capacity == 40 and venue.active
    r = staff.post("/agenda/venues/new", region_id=world.group1.id, name="大",
                   kind="hall", capacity=0, address="")
    assert r.status_code == 422 and "可容纳人数应在 1 到 10000 之间" in text(r)
    r = staff.post(f"/agenda/venues/{venue.id}/edit", region_id=world.village1.id,
                   name="村议事大厅", kind="hall", capacity=120, address="村部二楼")
    assert r.status_code == 303
    venue = fresh(Venue, venue.id)
    assert (venue.name, venue.kind, venue.path, venue.active) == (
        "村议事大厅", "hall", world.village1.path, False)
    page = text(staff.get("/agenda/venues"))
    assert "村议事大厅" in page and "议事大厅" in page and "已停用" in page
    # a 邻长 sees venues of their village? only in their subtree; may not add or edit
    assert chief.get("/agenda/venues/new").status_code == 403


def test_venue_item_and_meeting_of_another_village_are_not_found(
        world, browser, staff, make_item, make_meeting):
    staff.post("/agenda/venues/new", region_id=world.group1.id, name="樟树下议事亭",
               kind="pavilion", capacity=40, address="", active="y")
    venue = db.session.scalar(select(Venue))
    item = make_item(world.hood1, world.neighbor_chief)
    meeting = make_meeting(world.group1, world.village_staff)
    other = browser(world.neighbor_chief2)
    for url in (f"/agenda/venues/{venue.id}/edit", f"/agenda/items/{item.id}",
                f"/agenda/meetings/{meeting.id}", f"/agenda/items/{item.id}/correct",
                f"/agenda/meetings/{meeting.id}/edit"):
        assert other.get(url).status_code == 404, url
    r = other.post(f"/agenda/venues/{venue.id}/edit", region_id=world.hood2.id, name="我的亭",
                   kind="pavilion", capacity=10, address="")
    assert r.status_code == 404 and fresh(Venue, venue.id).name == "樟树下议事亭"
    assert other.post(f"/agenda/items/{item.id}/decide", decision="decline",
                      note="不是我村的").status_code == 404
    assert "樟树下议事亭" not in text(other.get("/agenda/venues"))


# -- meetings -------------------------------------------------------------------------------------
def test_convene_and_edit_a_meeting(world, staff):
    staff.post("/agenda/venues/new", region_id=world.group1.id, name="樟树下议事亭",
               kind="pavilion", capacity=40, address="", active="y")
    venue = db.session.scalar(select(Venue))
    page = text(staff.get("/agenda/meetings/new"))
    assert "召集会议" in page and "樟树下议事亭（组1 · 议事亭）" in page
    r = staff.post("/agenda/meetings/new", region_id=world.group1.id, kind="kentan",
                   title="十二月民情恳谈会", starts_at="2026-12-05T19:30", planned_minutes=90,
                   venue_id=venue.id)
    assert r.status_code == 303
    meeting = db.session.scalar(select(Meeting))
    assert meeting.starts_at.hour == 11 and meeting.venue_id == venue.id  # 19:30 in Shanghai
    page = text(staff.get(r.headers["Location"]))
    assert "十二月民情恳谈会" in page and "2026-12-05 19:30" in page and "樟树下议事亭" in page
    assert "议程还是空的" in page and "没有可排入的议题" in page
    r = staff.post("/agenda/meetings/new", region_id=world.group1.id, kind="assembly",
                   title="村民会议", starts_at="2026-12-05T19:30", planned_minutes=90, venue_id=0)
    assert r.status_code == 422 and "村民会议须以村(社区)为范围召开" in text(r)
    r = staff.post("/agenda/meetings/new", region_id=world.group1.id, kind="kentan",
                   title="恳谈会", starts_at="明天", planned_minutes=90, venue_id=0)
    assert r.status_code == 422 and "时间格式不对" in text(r)
    page = text(staff.get(f"/agenda/meetings/{meeting.id}/edit"))
    assert "2026-12-05T19:30" in page and "十二月民情恳谈会" in page
    r = staff.post(f"/agenda/meetings/{meeting.id}/edit", region_id=world.village1.id,
                   kind="assembly", title="村民会议", starts_at="2026-12-06T09:00",
                   planned_minutes=120, venue_id=0)
    assert r.status_code == 303
    meeting = fresh(Meeting, meeting.id)
    assert (meeting.kind, meeting.path, meeting.venue_id) == ("assembly", world.village1.path,
                                                              None)
    assert count(Meeting) == 1


def test_a_neighbor_chief_convenes_a_meeting_of_their_hood(world, chief):
    page = text(chief.get("/agenda/meetings/new"))
    assert re.search(rf'<option selected value="{world.hood1.id}">', page)
    r = chief.post("/agenda/meetings/new", region_id=world.hood1.id, kind="wuchang",
                   title="屋场会", starts_at="2026-12-05T19:30", planned_minutes=60, venue_id=0)
    assert r.status_code == 303
    r = chief.post("/agenda/meetings/new", region_id=world.group1.id, kind="wuchang",
                   title="组里的会", starts_at="2026-12-05T19:30", planned_minutes=60, venue_id=0)
    assert r.status_code == 404 and count(Meeting) == 1  # the group is outside the 邻


def test_minutes_are_written_once_the_meeting_has_started(world, staff, make_meeting):
    meeting = make_meeting(world.group1, world.village_staff)
    assert "会议记录" not in text(staff.get(f"/agenda/meetings/{meeting.id}"))
    r = staff.post(f"/agenda/meetings/{meeting.id}/minutes", notes="张三发言", recorder="李四")
    assert r.status_code == 422 and "会议开始后才能记录纪要" in text(r)
    opened = make_meeting(world.group1, world.village_staff, title="开着的会", open=True)
    page = text(staff.get(f"/agenda/meetings/{opened.id}"))
    assert "会议记录" in page and "到会 <b>0</b> 户" in page
    r = staff.post(f"/agenda/meetings/{opened.id}/minutes", notes="张三：同意修缮。",
                   recorder="李四")
    assert r.status_code == 303
    assert (fresh(Meeting, opened.id).notes, fresh(Meeting, opened.id).recorder) == (
        "张三：同意修缮。", "李四")


# -- result, decision, answer, correction ---------------------------------------------------------
def test_decided_item_shows_the_locked_result_and_takes_a_decision(world, staff, chief, decided):
    item = decided(yes=2, no=1)
    page = text(staff.get(f"/agenda/items/{item.id}"))
    assert "表决结果" in page and "通过" in page and "<b>2</b>赞成" in page
    assert "<b>3</b>到会" in page and "<b>3</b>应到" in page and "更正结果" in page
    assert "还没有指定落实负责人" in page
    assert "更正结果" not in text(chief.get(f"/agenda/items/{item.id}"))
    r = staff.post(f"/agenda/items/{item.id}/decision", decision="同意修缮山塘输水洞，村集体出资。")
    assert r.status_code == 303
    assert "同意修缮山塘输水洞，村集体出资。" in text(staff.get(f"/agenda/items/{item.id}"))


def test_assign_answer_and_overdue(world, staff, browser, decided, scope_of):
    item = decided()
    r = staff.post(f"/agenda/items/{item.id}/assign", owner_id=world.group_chief.id,
                   answer_due=str(local_today() - timedelta(days=1)))
    assert r.status_code == 422 and "答复期限不能早于今天" in text(r)
    r = staff.post(f"/agenda/items/{item.id}/assign", owner_id=0,
                   answer_due=str(local_today() + timedelta(days=7)))
    assert r.status_code == 422 and "请选择落实负责人" in text(r)
    r = staff.post(f"/agenda/items/{item.id}/assign", owner_id=world.group_chief.id,
                   answer_due=str(local_today() + timedelta(days=7)))
    assert r.status_code == 303
    item = fresh(AgendaItem, item.id)
    assert item.status == "implementing" and item.owner_id == world.group_chief.id
    assert "逾期未答复" not in text(staff.get("/agenda/"))

    # the due date passes (set through the service as of an earlier day)
    late = local_today() - timedelta(days=2)
    svc.assign_answer(world.village_staff, scope_of(world.village_staff), svc.load_item(item.id),
                      world.group_chief.id, late, today=late)
    db.session.commit()
    index = text(staff.get("/agenda/"))
    assert "逾期未答复" in index and "state overdue" in index
    page = text(staff.get(f"/agenda/items/{item.id}"))
    assert "逾期未答复" in page and "组长" in page

    owner = browser(world.group_chief)
    r = owner.post(f"/agenda/items/{item.id}/answer", answer="")
    assert r.status_code == 422 and "请填写答复内容" in text(r)
    r = owner.post(f"/agenda/items/{item.id}/answer", answer="输水洞已疏通，恢复蓄水。")
    assert r.status_code == 303
    item = fresh(AgendaItem, item.id)
    assert item.status == "answered" and item.answer == "输水洞已疏通，恢复蓄水。"
    page = text(staff.get(f"/agenda/items/{item.id}"))
    assert "已答复" in page and "输水洞已疏通" in page and "逾期未答复" not in page
    assert "逾期未答复" not in text(staff.get("/agenda/"))


def test_a_chief_who_is_not_the_owner_cannot_answer(world, staff, chief, decided):
    item = decided()
    staff.post(f"/agenda/items/{item.id}/assign", owner_id=world.group_chief.id,
               answer_due=str(local_today() + timedelta(days=7)))
    assert chief.post(f"/agenda/items/{item.id}/answer", answer="我来答复一下。").status_code == 403
    assert chief.post(f"/agenda/items/{item.id}/assign", owner_id=world.neighbor_chief.id,
                      answer_due=str(local_today() + timedelta(days=3))).status_code == 403
    assert fresh(AgendaItem, item.id).owner_id == world.group_chief.id


def test_correction_needs_a_reason_and_is_recorded(world, staff, chief, decided):
    item = decided(yes=2, no=1)
    page = text(staff.get(f"/agenda/items/{item.id}/correct"))
    assert "更正表决结果" in page and "现在的结果：赞成 2 · 反对 1 · 弃权 0" in page
    assert "记入更正记录和操作日志" in page
    assert chief.get(f"/agenda/items/{item.id}/correct").status_code == 403
    r = staff.post(f"/agenda/items/{item.id}/correct", yes=1, no=2, abstain=0, reason="")
    assert r.status_code == 422 and "请填写更正理由" in text(r)
    r = staff.post(f"/agenda/items/{item.id}/correct", yes=3, no=1, abstain=0,
                   reason="复核原始记录")
    assert r.status_code == 422 and "超过到会 3 户" in text(r)
    assert count(ResultCorrection) == 0 and fresh(AgendaItem, item.id).status == "passed"
    r = staff.post(f"/agenda/items/{item.id}/correct", yes=1, no=2, abstain=0,
                   reason="复核原始记录，2 号户的票录错了")
    assert r.status_code == 303
    item = fresh(AgendaItem, item.id)
    assert (item.status, item.result_yes, item.result_no) == ("rejected", 1, 2)
    fix = db.session.scalar(select(ResultCorrection))
    assert fix.reason == "复核原始记录，2 号户的票录错了" and fix.user_id == world.village_staff.id
    assert "通过" in fix.before and "未通过" in fix.after
    assert count(AuditEntry, AuditEntry.action == "vote.correct",
                 AuditEntry.object_id == item.id) == 1
    page = text(staff.get(f"/agenda/items/{item.id}"))
    assert "更正记录" in page and "复核原始记录，2 号户的票录错了" in page


# -- budget ---------------------------------------------------------------------------------------
def test_main_pages_stay_within_the_query_budget(world, staff, chief, make_item, make_meeting,
                                                 decided, count_queries):
    done = decided()
    items = [make_item(world.hood1, world.neighbor_chief, title=f"第{k}个议题") for k in range(6)]
    meeting = make_meeting(world.group1, world.village_staff,
                           items=[(i, "present_majority", "household") for i in items[:3]])
    make_item(world.hood1, world.neighbor_chief, title="清单外的事项", off_list=True)
    pages = [
        (staff, "/agenda/"), (staff, "/agenda/?status=waiting"), (chief, "/agenda/"),
        (staff, f"/agenda/items/{items[4].id}"), (staff, f"/agenda/items/{items[0].id}"),
        (staff, f"/agenda/items/{done.id}"), (chief, f"/agenda/items/{items[4].id}"),
        (staff, f"/agenda/meetings/{meeting.id}"), (chief, f"/agenda/meetings/{meeting.id}"),
        (staff, "/agenda/meetings"), (staff, "/agenda/venues"), (staff, "/agenda/items/new"),
        (staff, "/agenda/meetings/new"), (staff, f"/agenda/items/{done.id}/correct"),
    ]
    db.session.rollback()
    for who, url in pages:
        with count_queries() as n:
            r = who.get(url)
        assert r.status_code == 200, url
        assert n.count <= 8, (url, n.count, [" ".join(s.split())[:90] for s in n.statements])
