"""履职评议 pages through the real client: the list of 邻长 with their figures, one 邻长's page
and the grading form, the town's thresholds, the 优秀 list and its XLSX export; who may do what
(403 / 404), bad input (422, nothing saved), CSRF, and the SQL statements per page.

The pages read the time through ``reviews.utcnow``; the ``clock`` fixture fixes it in December
2026, so the default period is 2026Q3 (over) and 2026Q4 is still running."""

import io
import re
import uuid
from datetime import datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from portal.audit import AuditEntry
from portal.blueprints.duties import services as duties
from portal.blueprints.points import reviews
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import Review, ReviewSettings
from portal.blueprints.regions.models import Post
from portal.blueprints.requests import services as requests
from portal.clock import to_local
from portal.extensions import db
from portal.xlsx import XLSX
from tests.conftest import Browser
from tests.points.conftest import count, item

#: 10:00 on 10 December 2026 in Shanghai: 2026Q3 is over, 2026Q4 is not.
NOW = datetime(2026, 12, 10, 2, 0)
Q3 = "2026Q3"
START, END = datetime(2026, 7, 1).date(), datetime(2026, 10, 1).date()
#: The page budget of DESIGN §6 and what ``services.review_metrics`` runs by itself.
MAX_QUERIES = 8


@pytest.fixture
def clock(monkeypatch):
    box = {"now": NOW}
    monkeypatch.setattr(reviews, "utcnow", lambda: box["now"])
    return box


@pytest.fixture
def q3(world, clock, make_request, load_household, scope_of):
    """The world's posts held since 2025; in 2026Q3 the 邻长 of 邻11 visited 甲1 (a special
    household) every month but never 乙1, and answered one request of 甲1 at 邻 within the hour,
    rated 满意. The 邻长 of 邻21 (village 2) did nothing."""
    w = world
    db.session.execute(update(Post).values(started_at=datetime(2025, 1, 1)))
    db.session.commit()
    for month in (7, 8, 9):
        at = datetime(2026, month, 10, 2, 0)
        duties.log_duty(w.neighbor_chief, load_household(w.hh1.id),
                        duty_item_id=item(w.town, "duty", 1).id, method="visit", occurred_at=at,
                        note="上门走访", photo=None, token=str(uuid.uuid4()), now=at)
        db.session.commit()
    made = datetime(2026, 8, 3, 2, 0)
    req = make_request(load_household(w.hh1.id), at=made)
    requests.close(w.neighbor_chief, scope_of(w.neighbor_chief), req,
                   made.replace(hour=3), "已经换好了楼道灯。")
    db.session.commit()
    requests.rate(req, "satisfied", "", made.replace(hour=5))
    db.session.commit()
    return w


def figures(world, user):
    """The service's figures of a 邻长 for 2026Q3 (what the pages must show)."""
    return next(m for m in svc.review_metrics(world.town.path, START, END, NOW)
                if m.user_id == user.id)


def reviews_saved(**where):
    q = select(Review)
    for k, v in where.items():
        q = q.where(getattr(Review, k) == v)
    return list(db.session.scalars(q.execution_options(populate_existing=True)))


def page(r) -> str:
    return r.get_data(as_text=True)


def grade(browser, user, grade_="A", comment="入户走访到位，群众认可。", period=Q3):
    return browser.post(f"/points/reviews/{user.id}?period={period}", grade=grade_,
                        comment=comment)


# -- the list -----------------------------------------------------------------------------------
def test_the_list_shows_each_chief_with_their_figures(q3, login_as):
    w = q3
    m = figures(w, w.neighbor_chief)
    assert (m.households, m.contacted_on_time, m.requests, m.requests_on_time,
            m.requests_closed, m.requests_at_neighborhood, m.rated, m.satisfied,
            m.breaches) == (2, 1, 1, 1, 1, 1, 1, 1, 0)
    assert m.points > 0

    c = login_as(w.town_staff)
    r = c.get("/points/reviews")  # default: the town, the last whole quarter
    assert r.status_code == 200
    html = page(r)
    assert "2026 年第 3 季度" in html and "测试镇 · 邻长履职评议" in html
    assert "<b>邻长</b>" in html and "<b>邻长二</b>" in html
    assert "邻11" in html and "邻21" in html
    assert "联系按时 1/2（50%）" in html
    assert "按时响应 1/1（100%）" in html and "邻级办结 1/1（100%）" in html
    assert "满意 1/1（100%）" in html and f"积分 {m.points}" in html
    assert "联系按时 0/2（0%）" in html  # 邻长二 of village 2
    assert html.count("待评议 ›") == 2
    assert f'href="/points/reviews/{w.neighbor_chief.id}?period=2026Q3"' in html
    # the selector: the town and its villages; quarters and years
    for region in (w.town, w.village1, w.village2):
        assert f'<option value="{region.id}"' in html
    assert '<option value="2026Q3" selected>' in html and '<option value="2026">' in html
    assert "<table" not in html  # cards, not a wide table, on a phone

    # a village cadre's list is their village's
    html = page(login_as(w.village_staff).get("/points/reviews?period=2026q3"))
    assert "<b>邻长</b>" in html and "邻长二" not in html


def test_the_list_counts_results_and_shows_grades(q3, login_as):
    w = q3
    b = Browser(login_as(w.group_chief))
    assert grade(b, w.neighbor_chief, "C").status_code == 303
    html = page(b.get("/points/reviews"))  # a 组长's list: their group
    assert "组1 · 邻长履职评议" in html
    saved = reviews_saved()[0]
    assert f"{saved.result_label} · {saved.score} 分" in html
    summary = html.split('class="summary"')[1].split("</div>\n</div>")[0]
    assert f"<b>1</b>{saved.result_label}" in summary and "<b>0</b>待评议" in summary


def test_a_running_period_and_a_year(q3, login_as):
    c = login_as(q3.village_staff)
    html = page(c.get("/points/reviews?period=2026Q4"))
    assert "评议期还没结束" in html and "本期未结束" in html and "待评议 ›" not in html
    html = page(c.get("/points/reviews?period=2026"))
    assert "2026 年度" in html and '<option value="2026" selected>' in html


@pytest.mark.parametrize("period", ["2026Q5", "abc", "1999Q1", "2026Q"])
def test_a_bad_period_is_refused_with_a_message(q3, login_as, period):
    c = login_as(q3.village_staff)
    for url in (f"/points/reviews?period={period}",
                f"/points/reviews/{q3.neighbor_chief.id}?period={period}",
                f"/points/reviews/excellent?period={period}"):
        r = c.get(url)
        assert r.status_code == 422, url
        assert "评议期" in page(r) and 'class="err"' in page(r)


# -- grading ------------------------------------------------------------------------------------
def test_the_group_chief_grades_and_the_result_follows_the_thresholds(q3, login_as):
    w = q3
    m = figures(w, w.neighbor_chief)
    b = Browser(login_as(w.group_chief))
    html = page(b.get(f"/points/reviews/{w.neighbor_chief.id}?period={Q3}"))
    assert "按联系规则" in html and "4 小时" in html  # each figure explained
    assert 'name="grade"' in html and "A 好（+20 分）" in html
    assert "优秀 ≥ 90 分且负面清单不超过 0 次" in html

    r = grade(b, w.neighbor_chief, "A", "  入户走访到位。\r\n群众认可。 ")
    assert r.status_code == 303
    assert r.headers["Location"] == f"/points/reviews/{w.neighbor_chief.id}?period=2026Q3"
    [saved] = reviews_saved(user_id=w.neighbor_chief.id)
    score = svc.score_of(m, "A")
    assert score == 85  # 15 + 20 + 10 + 20 + 20
    assert (saved.period_start, saved.period_end, saved.grade, saved.score, saved.result,
            saved.reviewer_id, saved.comment, saved.households, saved.contacted_on_time,
            saved.points) == (START, END, "A", 85, "competent", w.group_chief.id,
                              "入户走访到位。\n群众认可。", 2, 1, m.points)
    assert saved.path == w.hood1.path and saved.reviewed_at == NOW
    assert count(AuditEntry, AuditEntry.action == "review.save") == 1

    html = page(b.get(r.headers["Location"]))
    assert "已评定 邻长 2026 年第 3 季度：好，85 分，称职。" in html
    assert "称职</b> 85 分 · 等次 A（好）" in html and "组长 评定于" in html
    assert "修改评定" in html and re.search(r'<input checked [^>]*value="A"', html)

    # grading again replaces the grade
    assert grade(b, w.neighbor_chief, "D", "").status_code == 303
    [saved] = reviews_saved(user_id=w.neighbor_chief.id)
    assert (saved.grade, saved.score, saved.result) == ("D", 65, "basic")


def test_bad_grades_are_refused_and_nothing_is_saved(q3, login_as):
    w = q3
    b = Browser(login_as(w.area_chief))
    for data, message in (({"grade": "E", "comment": ""}, "请选择评议等次"),
                          ({"comment": "没有选等次"}, "请选择评议等次"),
                          ({"grade": "A", "comment": "长" * 1001}, "评语最多 1000 字")):
        r = b.post(f"/points/reviews/{w.neighbor_chief.id}?period={Q3}", **data)
        assert r.status_code == 422, data
        assert message in page(r)
    assert reviews_saved() == []


def test_grading_a_period_that_is_not_over_is_refused(q3, login_as, clock):
    w = q3
    b = Browser(login_as(w.village_staff))
    html = page(b.get(f"/points/reviews/{w.neighbor_chief.id}?period=2026Q4"))
    assert 'name="grade"' not in html and "评议期结束后（2027-01-01 起）可以评定" in html
    r = grade(b, w.neighbor_chief, period="2026Q4")
    assert r.status_code == 422
    assert "评议期结束后才能评定。" in page(r)
    assert reviews_saved() == [] and count(AuditEntry, AuditEntry.action == "review.save") == 0
    # on the last day of the quarter (local time) it is still running
    clock["now"] = datetime(2026, 9, 30, 15, 59)  # 23:59 on 30 September in Shanghai
    assert grade(b, w.neighbor_chief).status_code == 422
    clock["now"] = datetime(2026, 9, 30, 16, 0)  # 1 October 00:00
    assert grade(b, w.neighbor_chief).status_code == 303


def test_a_chief_sees_their_own_page_and_cannot_grade(q3, login_as):
    w = q3
    c = login_as(w.neighbor_chief)
    r = c.get("/points/reviews?period=2026Q3")
    assert r.status_code == 302
    assert r.headers["Location"] == f"/points/reviews/{w.neighbor_chief.id}?period=2026Q3"
    html = page(c.get(f"/points/reviews/{w.neighbor_chief.id}"))
    assert "联系按时 1/2（50%）" in html and 'name="grade"' not in html
    assert "等组长、片长或村(社区)、镇干部评定" in html
    b = Browser(c)
    assert grade(b, w.neighbor_chief).status_code == 403
    assert reviews_saved() == []
    # another 邻长's page, the lists of the region and the 优秀 list are not theirs
    assert c.get(f"/points/reviews/{w.neighbor_chief2.id}?period={Q3}").status_code == 404
    assert c.get("/points/reviews/excellent").status_code == 403
    assert c.get("/points/reviews/excellent.xlsx").status_code == 403

    # once graded, the 邻长 reads the result and the comment
    grade(Browser(login_as(w.group_chief)), w.neighbor_chief, "B", "联系户走访及时。")
    html = page(c.get(f"/points/reviews/{w.neighbor_chief.id}"))
    assert "联系户走访及时。" in html and "等次 B（较好）" in html


def test_scope_of_the_review_pages(q3, login_as, make_user):
    w = q3
    other = w.neighbor_chief2  # 邻21 of village 2
    staff = Browser(login_as(w.village_staff))
    assert staff.get(f"/points/reviews/{other.id}?period={Q3}").status_code == 404
    assert grade(staff, other).status_code == 404
    assert staff.get(f"/points/reviews?region={w.village2.id}").status_code == 404
    assert staff.get(f"/points/reviews?region={w.village1.id}").status_code == 200
    assert staff.get("/points/reviews/999999").status_code == 404
    assert staff.get(f"/points/reviews/{w.group_chief.id}").status_code == 404  # not a 邻长
    chief = Browser(login_as(w.group_chief))
    assert chief.get(f"/points/reviews?region={w.village1.id}").status_code == 404
    assert chief.get(f"/points/reviews?region={w.hood1.id}").status_code == 200
    for who in (w.volunteer, w.nobody):
        c = login_as(who)
        assert c.get("/points/reviews").status_code == 403
        assert c.get(f"/points/reviews/{w.neighbor_chief.id}").status_code == 404
        assert c.get("/points/reviews/excellent").status_code == 403
    # a second 邻长 of the same 邻 sees it, but not their colleague's review
    colleague = make_user("同邻邻长", role="neighbor_chief", region=w.hood1)
    assert login_as(colleague).get(f"/points/reviews/{w.neighbor_chief.id}").status_code == 403
    # the admin starts at the first town
    html = page(login_as(w.admin).get("/points/reviews"))
    assert "测试镇 · 邻长履职评议" in html and "<b>邻长二</b>" in html
    # the town cadre reaches both villages
    town = Browser(login_as(w.town_staff))
    assert grade(town, other, "B").status_code == 303
    assert reviews_saved()[0].reviewer_id == w.town_staff.id


def test_a_post_without_the_csrf_token_is_refused(q3, login_as):
    c = login_as(q3.group_chief)
    r = c.post(f"/points/reviews/{q3.neighbor_chief.id}?period={Q3}",
               data={"grade": "A", "comment": ""})
    assert r.status_code == 400
    r = c.post("/points/reviews/settings", data={"excellent_min": 80, "competent_min": 70,
                                                 "basic_min": 60, "excellent_max_breaches": 0})
    assert r.status_code in (400, 403)
    assert reviews_saved() == [] and count(ReviewSettings) == 0


# -- thresholds ---------------------------------------------------------------------------------
GOOD = {"excellent_min": "80", "competent_min": "70", "basic_min": "55",
        "excellent_max_breaches": "1"}


@pytest.mark.parametrize("change, message", [
    ({"excellent_min": "八十"}, "优秀分数线应为 0 到 100 之间的整数。"),
    ({"excellent_min": "85.5"}, "优秀分数线应为 0 到 100 之间的整数。"),
    ({"competent_min": ""}, "称职分数线应为 0 到 100 之间的整数。"),
    ({"basic_min": "-1"}, "基本称职分数线应为 0 到 100 之间的整数。"),
    ({"excellent_min": "101"}, "优秀分数线应为 0 到 100 之间的整数。"),
    ({"competent_min": "85"}, "分数线应依次降低"),
    ({"excellent_max_breaches": "11"}, "评为优秀允许的负面清单次数应为 0 到 10。"),
    ({"excellent_max_breaches": "x"}, "评为优秀允许的负面清单次数应为 0 到 10。"),
])
def test_bad_thresholds_are_refused_and_nothing_is_saved(q3, login_as, change, message):
    b = Browser(login_as(q3.town_staff))
    r = b.post("/points/reviews/settings", **{**GOOD, **change})
    assert r.status_code == 422
    assert message in page(r)
    assert count(ReviewSettings) == 0
    assert count(AuditEntry, AuditEntry.action == "review_settings.update") == 0


def test_town_staff_edit_the_thresholds(q3, login_as):
    w = q3
    b = Browser(login_as(w.town_staff))
    html = page(b.get("/points/reviews/settings"))
    assert "测试镇 · 履职评议分数线" in html and 'value="90"' in html
    r = b.post("/points/reviews/settings", **GOOD)
    assert r.status_code == 303
    assert r.headers["Location"] == f"/points/reviews/settings?town={w.town.id}"
    s = db.session.scalar(select(ReviewSettings).execution_options(populate_existing=True))
    assert (s.town_id, s.excellent_min, s.competent_min, s.basic_min,
            s.excellent_max_breaches) == (w.town.id, 80, 70, 55, 1)
    assert "评议分数线已保存" in page(b.get(r.headers["Location"]))
    assert count(AuditEntry, AuditEntry.action == "review_settings.update") == 1
    # the admin too; everyone else is refused
    assert Browser(login_as(w.admin)).post(
        f"/points/reviews/settings?town={w.town.id}", **GOOD).status_code == 303
    for who in (w.village_staff, w.group_chief, w.neighbor_chief, w.volunteer):
        c = Browser(login_as(who))
        assert c.get("/points/reviews/settings").status_code == 403, who.name
        assert c.post("/points/reviews/settings", **GOOD).status_code == 403, who.name
    # no post in any town: there is no town to show
    assert Browser(login_as(w.nobody)).get("/points/reviews/settings").status_code == 404


def test_a_town_cadre_cannot_edit_another_towns_thresholds(q3, login_as, make_region):
    other = make_region("别的镇")
    b = Browser(login_as(q3.town_staff))
    assert b.get(f"/points/reviews/settings?town={other.id}").status_code == 404
    assert b.post(f"/points/reviews/settings?town={other.id}", **GOOD).status_code == 404
    assert count(ReviewSettings) == 0


def test_changed_thresholds_change_the_result_of_the_next_grading(q3, login_as):
    w = q3
    chief = Browser(login_as(w.group_chief))
    assert grade(chief, w.neighbor_chief, "A").status_code == 303
    assert reviews_saved()[0].result == "competent"  # 85 < 90
    staff = Browser(login_as(w.town_staff))
    assert staff.post("/points/reviews/settings", **{**GOOD, "excellent_min": "85"}) \
        .status_code == 303
    # the earlier result stands until graded again
    assert reviews_saved()[0].result == "competent"
    html = page(chief.get(f"/points/reviews/{w.neighbor_chief.id}?period={Q3}"))
    assert "优秀 ≥ 85 分" in html
    assert grade(chief, w.neighbor_chief, "A").status_code == 303
    assert reviews_saved()[0].result == "excellent"


# -- the 优秀 list and its export -----------------------------------------------------------------
@pytest.fixture
def excellent(q3, login_as):
    """邻长 graded 优秀 for 2026Q3 by the 组长 (thresholds lowered to 80), with a comment that
    starts like a formula."""
    w = q3
    assert Browser(login_as(w.town_staff)).post("/points/reviews/settings", **GOOD) \
        .status_code == 303
    assert grade(Browser(login_as(w.group_chief)), w.neighbor_chief, "A",
                 "=1+1 走访到位，群众满意。").status_code == 303
    assert grade(Browser(login_as(w.town_staff)), w.neighbor_chief2, "D").status_code == 303
    return w


def test_the_excellent_list(excellent, login_as):
    w = excellent
    html = page(login_as(w.village_staff).get("/points/reviews/excellent"))
    assert "村1 · 优秀邻长名单" in html and "后备干部" in html and "好邻" in html
    assert "1. 邻长" in html and "村1 · 组1 · 邻11" in html and "85 分" in html
    assert "=1+1 走访到位，群众满意。" in html and "邻长二" not in html
    assert "/points/reviews/excellent.xlsx?region=" in html
    # a 组长 sees the list without the export
    html = page(login_as(w.group_chief).get("/points/reviews/excellent"))
    assert "1. 邻长" in html and "excellent.xlsx" not in html
    # another quarter has no one yet
    html = page(login_as(w.village_staff).get("/points/reviews/excellent?period=2026Q2"))
    assert "还没有评为优秀的邻长" in html


def test_the_export_matches_the_database(excellent, login_as):
    w = excellent
    c = login_as(w.village_staff)
    r = c.get(f"/points/reviews/excellent.xlsx?region={w.village1.id}&period={Q3}")
    assert r.status_code == 200
    assert r.mimetype == XLSX
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="reserve_pool_2026Q3.xlsx"')
    assert "filename*=UTF-8''%E4%BC%98%E7%A7%80" in disposition  # 优秀…
    assert r.headers["Cache-Control"] == "private, no-store"

    ws = load_workbook(io.BytesIO(r.data)).active
    assert ws.title == "优秀邻长（后备干部人选）"
    assert ws["A1"].value == "村1 2026 年第 3 季度 优秀邻长名单（村级后备干部人选）"
    assert ws.freeze_panes == "A3"
    headers = [c.value for c in ws[2]]
    assert headers == ["序号", "姓名", "村(社区)", "组", "邻", "得分", "评议结果", "积分",
                       "联系按时率", "评语", "评议人", "评议时间"]
    saved = reviews_saved(user_id=w.neighbor_chief.id)[0]
    row = [c.value for c in ws[3]]
    assert row == [1, "邻长", "村1", "组1", "邻11", saved.score, "优秀", saved.points, 0.5,
                   "=1+1 走访到位，群众满意。", "组长",
                   to_local(saved.reviewed_at).replace(tzinfo=None)]
    assert isinstance(ws["L3"].value, datetime) and ws["L3"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["J3"].data_type == "s"  # never a formula
    assert ws["I3"].number_format == "0%"
    assert ws.max_row == 3  # 邻长二 is 不称职 and of village 2
    assert ws.column_dimensions["J"].width >= 30
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "review.export"))
    assert (entry.user_id, entry.region_path) == (w.village_staff.id, w.village1.path)
    assert entry.detail_dict == {"period": "2026 年第 3 季度", "people": 1, "region": "村1"}


def test_only_staff_over_the_region_export(excellent, login_as):
    w = excellent
    url = "/points/reviews/excellent.xlsx?period=2026Q3"
    for who in (w.group_chief, w.area_chief, w.neighbor_chief, w.volunteer, w.nobody):
        assert login_as(who).get(url).status_code == 403, who.name
    staff = login_as(w.village_staff)
    assert staff.get(f"{url}&region={w.village2.id}").status_code == 404
    assert staff.get(f"{url}&region={w.group1.id}").status_code == 200
    town = login_as(w.town_staff)
    r = town.get(url)  # the town: both villages' 优秀 (only 邻长 here)
    assert r.status_code == 200
    assert load_workbook(io.BytesIO(r.data)).active.max_row == 3
    assert count(AuditEntry, AuditEntry.action == "review.export") == 2


# -- SQL statements per page ----------------------------------------------------------------------
def test_queries_per_page(excellent, login_as, count_queries):
    w = excellent
    staff = login_as(w.town_staff)
    chief = login_as(w.group_chief)
    pages = [
        ("reviews", staff, f"/points/reviews?period={Q3}"),
        ("reviews of a village", staff, f"/points/reviews?region={w.village1.id}&period={Q3}"),
        ("review, graded", chief, f"/points/reviews/{w.neighbor_chief.id}?period={Q3}"),
        ("review, not graded", chief, f"/points/reviews/{w.neighbor_chief.id}?period=2026Q2"),
        ("review, own", login_as(w.neighbor_chief), f"/points/reviews/{w.neighbor_chief.id}"),
        ("review_settings", staff, "/points/reviews/settings"),
        ("reserve_pool", staff, f"/points/reviews/excellent?period={Q3}"),
    ]
    counts = {}
    for name, c, url in pages:
        with count_queries() as n:
            assert c.get(url).status_code == 200, name
        counts[name] = n.count
    path = w.town.path
    with count_queries() as n:
        svc.review_metrics(path, START, END, NOW)
    metrics = n.count
    print(f"queries: {counts}, review_metrics alone: {metrics}")
    assert counts["review_settings"] <= 3
    assert counts["reserve_pool"] <= 4
    assert counts["review, graded"] <= 3
    # the pages that compute figures: review_metrics plus the page's own statements
    assert counts["review, not graded"] <= 2 + metrics <= MAX_QUERIES, counts
    assert counts["review, own"] <= 2 + metrics, counts
    # the list: the region and its children, and the reviews already saved
    assert counts["reviews"] <= 3 + metrics <= MAX_QUERIES, counts
    assert counts["reviews of a village"] <= 3 + metrics <= MAX_QUERIES, counts


def test_the_page_shows_the_service_default_thresholds(q3):
    defaults = svc.review_settings(q3.town.id)
    shown = reviews.SETTINGS_DEFAULTS
    assert shown == {k: getattr(defaults, k) for k in shown}
    assert set(shown) == {"excellent_min", "competent_min", "basic_min",
                          "excellent_max_breaches"}
