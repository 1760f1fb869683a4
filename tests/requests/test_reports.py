"""Staff reports of 民情诉求: the overdue lists per level and the figures page, on a hand-built set
with a controlled clock (the views' clock is pinned to NOW)."""

import re
from datetime import date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.blueprints.requests import reports
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.models import Department, Request
from portal.extensions import db
from tests.requests.conftest import HOUR, NOW

NOV_START, NOV_END = datetime(2026, 10, 31, 16, 0), datetime(2026, 11, 30, 16, 0)  # local Nov


@pytest.fixture
def clock(monkeypatch):
    """Pin the report views' clock; returns a setter for later instants."""
    box = SimpleNamespace(now=NOW)
    monkeypatch.setattr(reports, "utcnow", lambda: box.now)

    def set_now(value):
        box.now = value

    return set_now


def text(r) -> str:
    return re.sub(r"\s+", " ", r.data.decode())


def fresh(req_id) -> Request:
    return db.session.get(Request, req_id, populate_existing=True)


# -- the hand-built set -----------------------------------------------------------------------
@pytest.fixture
def submit(make_request, load_household):
    """make_request with the household (and its 邻) freshly loaded."""

    def make(household, **kw):
        return make_request(load_household(household.id), **kw)

    return make


@pytest.fixture
def figures_set(world, submit, scope_of):
    """Nine requests in November (and one in October) with every outcome the figures count."""
    chief, chief2 = world.neighbor_chief, world.neighbor_chief2
    group, village = world.group_chief, world.village_staff
    sc = {u.id: scope_of(u) for u in (chief, chief2, group, village)}
    s = SimpleNamespace()

    def step(fn, *args):
        fn(*args)
        db.session.commit()

    # r1: answered at 邻 within the deadline, rated 满意
    s.r1 = submit(world.hh1, category="安全隐患", at=NOW - 10 * HOUR)
    step(svc.acknowledge, chief, sc[chief.id], fresh(s.r1.id), NOW - 9 * HOUR)
    step(svc.close, chief, sc[chief.id], fresh(s.r1.id), NOW - 8 * HOUR, "已经修好了楼道灯。")
    step(svc.rate, fresh(s.r1.id), "satisfied", "", NOW - 7 * HOUR)
    # r2: closed at 邻 straight away, rated 基本满意
    s.r2 = submit(world.hh1x, category="环境卫生", at=NOW - 9 * HOUR)
    step(svc.close, chief, sc[chief.id], fresh(s.r2.id), NOW - 8 * HOUR, "垃圾已经清运。")
    step(svc.rate, fresh(s.r2.id), "basic", "", NOW - 7 * HOUR)
    # r3: a dispute in a 邻 without a 邻长 (starts at 组), mediated with a signed agreement,
    # closed at 组, rated 不满意
    s.r3 = submit(world.hh1b, category="邻里纠纷", at=NOW - 20 * HOUR,
                        description="兄弟几个对母亲的赡养有分歧。")
    assert fresh(s.r3.id).level == 1
    step(svc.acknowledge, group, sc[group.id], fresh(s.r3.id), NOW - 19 * HOUR)
    step(svc.record_mediation, group, sc[group.id], fresh(s.r3.id), {
        "outcome": "agreed", "parties": "周奶奶及六名子女", "mediators": "组长",
        "agreement_title": "赡养协议", "agreement_terms": "六名子女轮流照顾母亲。",
        "signed_on": date(2026, 11, 15), "held_at": NOW - 18 * HOUR}, NOW - 18 * HOUR)
    step(svc.close, group, sc[group.id], fresh(s.r3.id), NOW - 17 * HOUR, "已签订赡养协议。")
    step(svc.rate, fresh(s.r3.id), "unsatisfied", "还要再看看", NOW - 16 * HOUR)
    # r4: nobody answered at 邻: waiting at 组, missed at 邻
    s.r4 = submit(world.hh1, category="物业管理", at=NOW - 8 * HOUR)
    # r5: timed out at 邻, escalated by the 组长 to 村, routed, closed at 村, not rated
    s.r5 = submit(world.hh1x, category="安全隐患", at=NOW - 30 * HOUR,
                        description="山塘输水洞堵塞，蓄水困难。")
    step(svc.escalate, group, sc[group.id], fresh(s.r5.id), NOW - 20 * HOUR, "需要村里协调修复。")
    dept = db.session.scalar(select(Department.id).where(
        Department.town_id == world.town.id, Department.name == "农业综合服务中心"))
    step(svc.route, village, sc[village.id], fresh(s.r5.id), NOW - 19 * HOUR, dept, "")
    step(svc.close, village, sc[village.id], fresh(s.r5.id), NOW - 5 * HOUR, "输水洞已疏通。")
    # r6: waiting at 邻 with time left
    s.r6 = submit(world.hh1, category="政策咨询", at=NOW - 1 * HOUR)
    # r7: village 2, closed at 邻
    s.r7 = submit(world.hh2, category="其他", at=NOW - 2 * HOUR)
    step(svc.close, chief2, sc[chief2.id], fresh(s.r7.id), NOW - 1 * HOUR, "已经答复了。")
    # r8: October, closed: outside the period
    s.r8 = submit(world.hh1, category="安全隐患", at=datetime(2026, 10, 20, 2, 0))
    step(svc.close, chief, sc[chief.id], fresh(s.r8.id), datetime(2026, 10, 20, 3, 0), "已处理。")
    # r9: a dispute being mediated, no agreement yet (open, answered in time)
    s.r9 = submit(world.hh1x, category="邻里纠纷", at=NOW - 3 * HOUR)
    step(svc.acknowledge, chief, sc[chief.id], fresh(s.r9.id), NOW - 2 * HOUR)
    step(svc.record_mediation, chief, sc[chief.id], fresh(s.r9.id), {
        "outcome": "not_agreed", "parties": "两户邻居", "held_at": NOW - HOUR}, NOW - HOUR)
    return s


def test_figures_of_a_village(world, figures_set):
    f = svc.figures(world.village1, NOV_START, NOV_END, NOW)
    assert (f.total, f.open, f.closed) == (7, 3, 4)
    assert f.closed_at == [2, 1, 1, 0]
    assert f.by_category == [("安全隐患", 2, 2), ("邻里纠纷", 2, 1), ("政策咨询", 1, 0),
                             ("物业管理", 1, 0), ("环境卫生", 1, 1)]
    assert f.ratings == {"satisfied": 1, "basic": 1, "unsatisfied": 1}
    assert f.missed_neighborhood == 2  # r4 (not yet recorded) and r5 (recorded)
    assert f.on_time_pct == 71  # 5 of 7
    assert (f.disputes, f.agreements) == (2, 1)
    assert [f.closed_share(k) for k in range(4)] == [50, 25, 25, 0]
    assert [f.stayed_within(k) for k in range(4)] == [50, 75, 100, 100]


def test_figures_of_the_town_and_the_breakdown(world, figures_set):
    f = svc.figures(world.town, NOV_START, NOV_END, NOW)
    assert (f.total, f.open, f.closed, f.closed_at) == (8, 3, 5, [3, 1, 1, 0])
    assert (f.missed_neighborhood, f.on_time_pct, f.disputes, f.agreements) == (2, 75, 2, 1)
    _, children = svc.region_family(world.town)
    rows = svc.breakdown(world.town, children, NOV_START, NOV_END, NOW)
    assert [(r.region.name, r.total, r.open, r.closed, r.within_neighborhood, r.on_time_pct)
            for r in rows] == [("村1", 7, 3, 4, 50, 71), ("村2", 1, 0, 1, 100, 100)]
    # October alone: r8 only
    f = svc.figures(world.town, datetime(2026, 9, 30, 16), NOV_START, NOW)
    assert (f.total, f.closed_at, f.missed_neighborhood) == (1, [1, 0, 0, 0], 0)


def test_stats_page(world, figures_set, login_as, clock, count_queries):
    c = login_as(world.village_staff)
    with count_queries() as n:
        r = c.get("/requests/stats")  # default: the user's village, this month up to today
    assert r.status_code == 200
    assert n.count <= 8, [" ".join(s.split())[:90] for s in n.statements]
    page = text(r)
    assert "村1 · 民情诉求统计" in page
    assert "2026-11-01 至 2026-11-16" in page
    assert 'value="2026-11-01"' in page and 'value="2026-11-16"' in page
    assert "<b>7</b>诉求" in page and "<b>4</b>已办结" in page
    assert re.search(r"<b[^>]*>3</b>未办结", page) and "<b>71%</b>邻级按时" in page
    for motto, share, cum in (("微事不出邻", "50%", "不出邻 50%"), ("小事不出组", "25%", "不出组 75%"),
                              ("大事不出村", "25%", "不出村 100%"),
                              ("难事不出镇", "0%", "不出镇 100%")):
        assert f"{motto} <b>{share}</b>" in page and cum in page
    assert re.search(r"<td>安全隐患</td><td class=\"n\">2</td><td class=\"n\">2</td>"
                     r"<td class=\"n\">0</td>", page)
    assert re.search(r"<td>满意</td><td class=\"n\">1</td>", page)
    assert re.search(r"<td>已办结未评价</td><td class=\"n\">1</td>", page)
    assert re.search(r"<td>调解签订协议</td><td class=\"n\">1</td>", page)
    # the breakdown by the village's child (its one 片), with drill-down links
    assert f"/requests/stats?region={world.area1.id}" in page
    # the export link keeps the period
    assert (f"/requests/export.xlsx?region={world.village1.id}&amp;start=2026-11-01"
            f"&amp;end=2026-11-16") in page


def test_stats_page_for_the_town_and_a_period(world, figures_set, login_as, clock,
                                              count_queries):
    c = login_as(world.town_staff)
    with count_queries() as n:
        r = c.get(f"/requests/stats?region={world.town.id}&start=2026-10-01&end=2026-11-30")
    assert r.status_code == 200
    assert n.count <= 8, [" ".join(s.split())[:90] for s in n.statements]
    page = text(r)
    assert "<b>9</b>诉求" in page and "<b>6</b>已办结" in page  # + October's r8
    assert re.search(r'>村1</a></td><td class="n">8</td>', page)
    assert re.search(r'>村2</a></td><td class="n">1</td>', page)
    # drill down to a village: the crumbs lead back to the town, with the same period
    r = c.get(f"/requests/stats?region={world.village2.id}&start=2026-10-01&end=2026-11-30")
    page = text(r)
    assert "<b>1</b>诉求" in page
    assert f"/requests/stats?region={world.town.id}&amp;start=2026-10-01&amp;end=2026-11-30" \
        in page


def test_stats_empty_period(world, figures_set, login_as, clock):
    r = login_as(world.village_staff).get("/requests/stats?start=2025-01-01&end=2025-01-31")
    assert r.status_code == 200
    assert "这段时间村1没有登记诉求" in text(r)


@pytest.mark.parametrize(("query", "message"), [
    ("start=2026-13-01", "开始日期格式不对"),
    ("start=2026-11-31", "开始日期格式不对"),
    ("end=20261130", "结束日期格式不对"),
    ("end=abc", "结束日期格式不对"),
    ("start=2026-11-20&end=2026-11-01", "开始日期不能晚于结束日期"),
    ("start=1999-12-31", "开始日期超出范围"),
    ("end=9999-12-31", "结束日期超出范围"),
])
def test_stats_bad_dates(world, login_as, clock, query, message):
    c = login_as(world.village_staff)
    for url in ("/requests/stats", "/requests/export.xlsx"):
        r = c.get(f"{url}?{query}")
        assert r.status_code == 422, url
        assert message in text(r)
        assert "诉求统计" in text(r)


def test_stats_scope(world, login_as, clock):
    c = login_as(world.village_staff)
    assert c.get(f"/requests/stats?region={world.village2.id}").status_code == 404
    assert c.get(f"/requests/stats?region={world.hood2.id}").status_code == 404
    assert c.get("/requests/stats?region=999999").status_code == 404
    assert c.get(f"/requests/stats?region={world.hood1.id}").status_code == 200
    chief = login_as(world.neighbor_chief)
    r = chief.get("/requests/stats")
    assert r.status_code == 200 and "邻11 · 民情诉求统计" in text(r)
    assert chief.get(f"/requests/stats?region={world.group1.id}").status_code == 404
    for user in (world.volunteer, world.nobody):
        assert login_as(user).get("/requests/stats").status_code == 403
    admin = login_as(world.admin)
    r = admin.get("/requests/stats")
    assert r.status_code == 200 and "测试镇 · 民情诉求统计" in text(r)


# -- overdue lists ----------------------------------------------------------------------------
@pytest.fixture
def overdue_set(world, submit, scope_of):
    chief, group = world.neighbor_chief, world.group_chief
    s = SimpleNamespace()
    s.a = submit(world.hh1, category="安全隐患", at=NOW - 5 * HOUR)   # missed 邻, at 组
    s.b = submit(world.hh1x, category="物业管理", at=NOW - 30 * HOUR)  # missed 邻 + 组
    s.c = submit(world.hh1, category="政策咨询", at=NOW - 1 * HOUR)   # in time
    s.d = submit(world.hh2, category="其他", at=NOW - 6 * HOUR)       # village 2
    s.e = submit(world.hh1b, category="环境卫生", at=NOW - 26 * HOUR)  # starts at 组
    s.f = submit(world.hh1, category="生活求助", at=NOW - 10 * HOUR)  # answered in time
    svc.acknowledge(chief, scope_of(chief), fresh(s.f.id), NOW - 9 * HOUR)
    db.session.commit()
    s.g = submit(world.hh1x, category="安全隐患", at=NOW - 7 * HOUR)  # late, then answered
    svc.acknowledge(group, scope_of(group), fresh(s.g.id), NOW - HOUR)
    db.session.commit()
    s.h = submit(world.hh1, category="其他", at=NOW - 9 * HOUR)  # late, then closed
    svc.close(group, scope_of(group), fresh(s.h.id), NOW - 2 * HOUR, "已经答复。")
    db.session.commit()
    return s


def test_overdue_service_per_level(world, overdue_set, scope_of):
    s = overdue_set
    staff = scope_of(world.village_staff)
    assert svc.overdue_counts(staff, NOW) == [3, 2, 0, 0]
    rows, more = svc.overdue(staff, 0, NOW)
    assert [r.id for r, _ in rows] == [s.b.id, s.g.id, s.a.id] and not more
    assert [e.level for _, e in rows] == [2, 1, 1]
    rows, _ = svc.overdue(staff, 1, NOW)
    assert [r.id for r, _ in rows] == [s.b.id, s.e.id]  # same deadline: by id
    assert svc.overdue_counts(scope_of(world.town_staff), NOW) == [4, 2, 0, 0]
    assert svc.overdue_counts(scope_of(world.neighbor_chief), NOW) == [3, 1, 0, 0]
    assert svc.overdue_counts(scope_of(world.neighbor_chief2), NOW) == [1, 0, 0, 0]
    # a day later more deadlines have passed, with nothing recorded in between
    later = NOW + 24 * HOUR
    assert svc.overdue_counts(staff, later) == [4, 3, 0, 0]
    assert svc.overdue_counts(staff, NOW + 47 * HOUR) == [4, 4, 2, 0]  # c missed 组 too


def test_overdue_page(world, overdue_set, login_as, clock, count_queries):
    s = overdue_set
    c = login_as(world.village_staff)
    with count_queries() as n:
        r = c.get("/requests/overdue?level=0")
    assert r.status_code == 200
    assert n.count <= 8, [" ".join(s.split())[:90] for s in n.statements]
    page = text(r)
    assert re.search(r'aria-current="page">邻级 <b>3</b>', page)
    assert "组级 <b>2</b>" in page and "村级 <b>0</b>" in page and "镇级 <b>0</b>" in page
    rows = re.findall(r'href="/requests/(\d+)"', page)
    assert rows == [str(s.b.id), str(s.g.id), str(s.a.id)]
    assert "乙1 · 物业管理" in page and "甲1 · 安全隐患" in page
    assert "邻11 · 村1 · 现在村级待响应" in page  # b: its 邻, its village, where it is now
    assert "超时 1 天 2 小时" in page  # b: 26 hours past the 邻 deadline
    assert "超时 1 小时" in page  # a
    assert "超时后已响应" in page  # g, answered at 组 after the 邻 deadline
    assert f"{NOW:%Y}-{s.b.id:06d}" in page
    assert "丙1" not in page and "甲2" not in page
    # the 组 tab: names the group
    page = text(c.get("/requests/overdue?level=1"))
    assert re.findall(r'href="/requests/(\d+)"', page) == [str(s.b.id), str(s.e.id)]
    assert "组1 · 村1" in page
    # later, without any job having run
    clock(NOW + 47 * HOUR)
    page = text(c.get("/requests/overdue?level=2"))
    assert re.findall(r'href="/requests/(\d+)"', page) == [str(s.b.id), str(s.e.id)]
    assert "村级 <b>2</b>" in page and "现在镇级待响应" in page


def test_overdue_default_tab_and_empty_state(world, overdue_set, login_as, clock):
    # a 邻长 lands on 邻, the town staff on 镇 (empty here)
    page = text(login_as(world.neighbor_chief2).get("/requests/overdue"))
    assert re.search(r'aria-current="page">邻级 <b>1</b>', page) and "甲2" in page
    page = text(login_as(world.town_staff).get("/requests/overdue"))
    assert re.search(r'aria-current="page">镇级 <b>0</b>', page)
    assert "没有镇级超时的诉求" in page
    assert "邻级 <b>4</b>" in page


def test_overdue_access(world, login_as, clock):
    c = login_as(world.village_staff)
    assert c.get("/requests/overdue?level=4").status_code == 404
    assert c.get("/requests/overdue?level=x").status_code == 404
    r = c.get("/requests/overdue")
    assert r.status_code == 200 and "没有村级超时的诉求" in text(r)
    for user in (world.volunteer, world.nobody):
        assert login_as(user).get("/requests/overdue").status_code == 403
    assert login_as(world.admin).get("/requests/overdue").status_code == 200
