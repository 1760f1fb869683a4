"""The 积分 ledger pages through the real client: my points with links to the records that
earned them, a person's ledger (supervisors in scope; a 邻长 only their own), reversal by staff
(confirmation, reason, once), the rule table (town staff add a version; others read), the
ranking of the user's village or town, and the public 公示 pages (no login, names and totals and
record numbers, never residents' data); the query budget of each page."""

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.blueprints.duties import services as duties
from portal.blueprints.points import services as svc
from portal.blueprints.points.ledger import PUBLIC_NOTE, parse_period
from portal.blueprints.points.models import PointsEntry, PointsRule
from portal.clock import local_today, utcnow
from portal.errors import ServiceError
from portal.extensions import db
from tests.conftest import Browser
from tests.points.conftest import count, item

MAX_QUERIES = 8
RESIDENT_DATA = ("甲1", "乙1", "丙1", "甲2", "13912345678", "测试路", "电话问候甲家",
                 "楼道灯坏了")


@pytest.fixture
def browser(login_as):
    return lambda user: Browser(login_as(user))


def text(r) -> str:
    return r.data.decode()


def month_key() -> str:
    today = local_today()
    return f"{today.year}-{today.month:02d}"


def balance(user) -> int:
    db.session.rollback()
    return svc.balance(user.id)


@pytest.fixture
def ledger(world, make_request, load_household):
    """This month: 邻长 23 (a real duty log +1, a request answered on time +2, a commendation
    +20); 邻长二 23 (commendation +20, an agenda item +3); 组长 20. Ties at the town: 1, 1, 3."""
    at = utcnow()
    log, _ = duties.log_duty(world.neighbor_chief, load_household(world.hh1.id),
                             duty_item_id=item(world.town, "duty", 0).id, method="phone",
                             occurred_at=at, note="电话问候甲家", photo=None,
                             token=str(uuid.uuid4()), now=at)
    db.session.commit()
    req = make_request(load_household(world.hh1.id), at=at)
    ids = {"log": log.id, "request": req.id}
    ids["on_time"] = svc.award(world.neighbor_chief.id, "request_on_time", "request", req.id,
                               at=at, path=world.hood1.path)
    ids["commendation"] = svc.award(world.neighbor_chief.id, "commendation", "commendation", 1,
                                    at=at, path=world.hood1.path)
    ids["other"] = svc.award(world.neighbor_chief2.id, "commendation", "commendation", 2,
                             at=at, path=world.hood2.path)
    svc.award(world.neighbor_chief2.id, "agenda_raise", "agenda_item", 77, at=at,
              path=world.hood2.path)
    svc.award(world.group_chief.id, "commendation", "commendation", 3, at=at,
              path=world.group1.path)
    db.session.commit()
    ids["log_entry"] = db.session.scalar(select(PointsEntry.id).where(
        PointsEntry.source_type == "duty_log", PointsEntry.source_id == log.id))
    return ids


# -- my points -----------------------------------------------------------------------------------
def test_my_points_show_balance_month_and_sources(world, ledger, browser):
    b = browser(world.neighbor_chief)
    r = b.get("/points/")
    assert r.status_code == 200
    page = text(r)
    assert "我的积分" in page and "<b>23</b>现有积分" in page and "+23" in page
    assert "记录履职（按七员职责）" in page and item(world.town, "duty", 0).title in page
    assert "按时响应诉求" in page and "获评表彰" in page
    # links to where each point came from
    assert f'href="/duties/households/{world.hh1.id}"' in page
    assert f"履职记录 #{ledger['log']}" in page
    assert f'href="/requests/{ledger["request"]}"' in page
    assert "/points/ranking" in page and "/points/rules" in page
    # newest written first
    assert page.index(f'id="e{ledger["commendation"]}"') < page.index(f'id="e{ledger["on_time"]}"')
    # no reverse buttons on one's own page, no search for a 邻长
    assert "/reverse" not in page and 'name="q"' not in page


def test_my_points_page_by_page(world, browser, give):
    give(world.neighbor_chief, world.hood1, utcnow(), n=55)
    b = browser(world.neighbor_chief)
    page = text(b.get("/points/"))
    assert page.count('class="hhline"') == 50 and "更多" in page and "?page=2" in page
    page2 = text(b.get("/points/?page=2"))
    assert page2.count('class="hhline"') == 5 and "更多" not in page2
    assert "没有更早的记录" in text(b.get("/points/?page=9"))


def test_empty_ledger_says_what_to_do(world, browser):
    page = text(browser(world.volunteer).get("/points/"))
    assert "还没有积分记录" in page and "<b>0</b>现有积分" in page


def test_staff_find_a_person_in_their_scope(world, ledger, browser):
    b = browser(world.village_staff)
    page = text(b.get("/points/?q=邻长"))
    assert f"/points/people/{world.neighbor_chief.id}" in page
    assert f"/points/people/{world.neighbor_chief2.id}" not in page  # the other village
    assert "没有叫" in text(b.get("/points/?q=nobody%25"))


# -- a person's ledger ---------------------------------------------------------------------------
@pytest.mark.parametrize("who, whose, status", [
    ("neighbor_chief", "neighbor_chief", 200),
    ("neighbor_chief", "neighbor_chief2", 404),
    ("neighbor_chief", "group_chief", 404),
    ("volunteer", "neighbor_chief", 404),
    ("group_chief", "neighbor_chief", 200),
    ("group_chief", "neighbor_chief2", 404),
    ("area_chief", "neighbor_chief", 200),
    ("village_staff", "neighbor_chief", 200),
    ("village_staff", "neighbor_chief2", 404),
    ("town_staff", "neighbor_chief2", 200),
    ("admin", "neighbor_chief2", 200),
])
def test_who_sees_whose_ledger(world, ledger, browser, who, whose, status):
    r = browser(getattr(world, who)).get(f"/points/people/{getattr(world, whose).id}")
    assert r.status_code == status
    if status == 200:
        assert getattr(world, whose).name in text(r)


def test_unknown_person_is_not_found(world, browser):
    assert browser(world.town_staff).get("/points/people/999999").status_code == 404


def test_reverse_buttons_for_staff_only(world, ledger, browser):
    url = f"/points/people/{world.neighbor_chief.id}"
    staff = text(browser(world.village_staff).get(url))
    assert f"/points/entries/{ledger['commendation']}/reverse" in staff
    assert f"/points/entries/{ledger['log_entry']}/reverse" in staff
    chief = text(browser(world.group_chief).get(url))
    assert "/reverse" not in chief


# -- reversal ------------------------------------------------------------------------------------
@pytest.mark.parametrize("who, whose, status", [
    ("neighbor_chief", "commendation", 403),   # own entry: visible, not allowed
    ("neighbor_chief", "other", 404),          # another village's 邻长
    ("group_chief", "commendation", 403),
    ("volunteer", "commendation", 404),
    ("village_staff", "other", 404),
])
def test_reverse_refused_outside_staff_scope(world, ledger, browser, who, whose, status):
    b = browser(getattr(world, who))
    url = f"/points/entries/{ledger[whose]}/reverse"
    assert b.get(url).status_code == status
    assert b.post(url, reason="重复登记").status_code == status
    assert count(PointsEntry, PointsEntry.kind == "reversal") == 0


def test_staff_reverse_with_a_reason_once(world, ledger, browser):
    b = browser(world.village_staff)
    entry_id = ledger["commendation"]
    url = f"/points/entries/{entry_id}/reverse"
    page = text(b.get(url))
    assert "确认冲正" in page and "邻长" in page and "-20" in page

    # no reason: 422, nothing saved
    r = b.post(url, reason=" ")
    assert r.status_code == 422 and "请填写冲正理由" in text(r)
    assert count(PointsEntry, PointsEntry.kind == "reversal") == 0
    assert balance(world.neighbor_chief) == 23

    r = b.post(url, reason="重复登记，表彰已在上月计过")
    assert r.status_code == 303
    back = db.session.scalar(select(PointsEntry).where(PointsEntry.reverses_id == entry_id))
    assert r.headers["Location"].endswith(f"/points/people/{world.neighbor_chief.id}#e{back.id}")
    assert (back.kind, back.delta, back.operator_id) == ("reversal", -20, world.village_staff.id)
    assert back.reason == "重复登记，表彰已在上月计过"
    assert balance(world.neighbor_chief) == 3
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "points.reverse"))
    page = text(b.get(f"/points/people/{world.neighbor_chief.id}"))
    assert "已冲正" in page and "重复登记" in page
    assert f"/points/entries/{entry_id}/reverse" not in page
    assert f"/points/entries/{back.id}/reverse" not in page

    # a second time: the rule's message, nothing saved
    assert "已经冲正过了" in text(b.get(url))
    r = b.post(url, reason="再冲一次")
    assert r.status_code == 422 and "这条积分已经冲正过了" in text(r)
    r = b.post(f"/points/entries/{back.id}/reverse", reason="冲正冲正")
    assert r.status_code == 422 and "冲正记录不能再冲正" in text(r)
    assert count(PointsEntry, PointsEntry.kind == "reversal") == 1
    assert balance(world.neighbor_chief) == 3


def test_reverse_without_csrf_is_refused(world, ledger, login_as):
    c = login_as(world.village_staff)
    r = c.post(f"/points/entries/{ledger['commendation']}/reverse",
               data={"reason": "重复登记"})
    assert r.status_code == 400
    assert count(PointsEntry, PointsEntry.kind == "reversal") == 0


# -- rules ---------------------------------------------------------------------------------------
def rule_data(world, k=0, event="duty_log", **over):
    it = item(world.town, "negative" if event == "breach" else "duty", k)
    data = {"rule": f"{event}:{it.id}", "points": "4", "daily_cap": "8", "monthly_cap": "",
            "effective_from": (local_today() + timedelta(days=1)).isoformat(), "active": "y"}
    data.update(over)
    return it, data


def test_rules_page_read_only_for_the_town_and_editable_for_town_staff(world, browser):
    town = text(browser(world.town_staff).get("/points/rules"))
    assert "积分规则" in town and "保存为新版本" in town
    assert item(world.town, "duty", 0).title in town and "按时响应诉求" in town
    assert "违反负面清单（六不得）" in town and "-10 分" in town
    for who in ("village_staff", "neighbor_chief", "volunteer"):
        page = text(browser(getattr(world, who)).get("/points/rules"))
        assert "积分规则" in page and "保存为新版本" not in page
        assert 'action="/points/rules' not in page
    assert browser(world.nobody).get("/points/rules").status_code == 404


def test_town_staff_add_a_rule_version(world, browser):
    b = browser(world.town_staff)
    it, data = rule_data(world)
    before = count(PointsRule)
    r = b.post("/points/rules", **data)
    assert r.status_code == 303, text(r)
    assert count(PointsRule) == before + 1
    new = db.session.scalar(select(PointsRule).order_by(PointsRule.id.desc()).limit(1))
    assert (new.event, new.item_id, new.points, new.daily_cap, new.monthly_cap, new.active,
            new.effective_from, new.created_by_id) == (
        "duty_log", it.id, 4, 8, None, True, local_today() + timedelta(days=1),
        world.town_staff.id)
    page = text(b.get("/points/rules"))
    assert "待生效的规则" in page and "+4 分" in page
    # today the old version still prices duty logs
    assert svc.rule_for(world.town.id, "duty_log", it.id, local_today()).points == 1


@pytest.mark.parametrize("over, message", [
    ({"points": "0"}, "非零整数"),
    ({"points": "abc"}, "分值应为整数"),
    ({"points": ""}, "请填写分值"),
    ({"points": "5000"}, "非零整数"),
    ({"daily_cap": "-3"}, "上限应为正整数"),
    ({"effective_from": "2000-01-01"}, "生效日期不能早于今天"),
    ({"rule": "nonsense:1"}, "未知的积分事项"),
    ({"rule": "duty_log:"}, "请选择对应的清单条目"),
])
def test_bad_rule_input_is_refused(world, browser, over, message):
    _, data = rule_data(world, **over)
    before = count(PointsRule)
    r = browser(world.town_staff).post("/points/rules", **data)
    assert r.status_code == 422 and message in text(r)
    assert count(PointsRule) == before


def test_breach_rule_must_deduct(world, browser):
    _, data = rule_data(world, event="breach", points="5")
    before = count(PointsRule)
    r = browser(world.town_staff).post("/points/rules", **data)
    assert r.status_code == 422 and "负面清单扣分填负数" in text(r)
    assert count(PointsRule) == before
    _, data = rule_data(world, event="breach", points="-15")
    assert browser(world.town_staff).post("/points/rules", **data).status_code == 303
    assert count(PointsRule) == before + 1


@pytest.mark.parametrize("who", ["village_staff", "group_chief", "neighbor_chief"])
def test_rule_change_by_others_is_forbidden(world, browser, who):
    _, data = rule_data(world)
    before = count(PointsRule)
    assert browser(getattr(world, who)).post("/points/rules", **data).status_code == 403
    assert count(PointsRule) == before


def test_rules_of_another_town(world, browser, make_region):
    other = make_region("别的镇")
    _, data = rule_data(world)
    before = count(PointsRule)
    staff = browser(world.town_staff)
    assert staff.get(f"/points/rules?town={other.id}").status_code == 404
    assert staff.post(f"/points/rules?town={other.id}", **data).status_code == 404
    assert count(PointsRule) == before
    # the admin picks the town; a rule key of one town is refused in another
    admin = browser(world.admin)
    page = text(admin.get(f"/points/rules?town={other.id}"))
    assert "别的镇 · 积分规则" in page and f'<option value="{world.town.id}">' in page
    r = admin.post(f"/points/rules?town={other.id}", **data)
    assert r.status_code == 422 and "请选择对应的清单条目" in text(r)
    assert count(PointsRule) == before


def test_rule_change_without_csrf_is_refused(world, login_as):
    _, data = rule_data(world)
    before = count(PointsRule)
    assert login_as(world.town_staff).post("/points/rules", data=data).status_code == 400
    assert count(PointsRule) == before


# -- periods -------------------------------------------------------------------------------------
def test_periods():
    assert (parse_period("2026-11").start.isoformat(), parse_period("2026-11").end.isoformat()) \
        == ("2026-11-01", "2026-12-01")
    assert parse_period("2026-12").end.isoformat() == "2027-01-01"
    assert parse_period("2026q4").key == "2026Q4"
    assert parse_period("2026Q4").label == "2026 年第 4 季度"
    assert parse_period("2026").label == "2026 年度"
    for bad in ("2026-13", "2026Q5", "abc", "", "99999", "0000-01"):
        with pytest.raises(ServiceError):
            parse_period(bad)


# -- ranking (logged in) ---------------------------------------------------------------------------
def ranks(page: str) -> dict[int, int]:
    return {int(uid): int(rank) for uid, rank in
            re.findall(r'<tr id="p(\d+)"><td class="n">(\d+)</td>', page)}


def test_ranking_defaults_to_the_users_village(world, ledger, browser):
    page = text(browser(world.neighbor_chief).get("/points/ranking"))
    assert "积分排行 · 村1" in page
    assert ranks(page) == {world.neighbor_chief.id: 1, world.group_chief.id: 2}
    assert f'href="/points/people/{world.neighbor_chief.id}"' in page
    assert f'href="/points/people/{world.group_chief.id}"' not in page   # a 邻长 sees only self
    assert f"/points/gongshi/{world.village1.id}?period={month_key()}" in page


def test_ranking_of_the_town_links_the_people_in_scope(world, ledger, browser):
    url = f"/points/ranking?region={world.town.id}&period={month_key()}"
    page = text(browser(world.village_staff).get(url))
    assert ranks(page) == {world.neighbor_chief.id: 1, world.neighbor_chief2.id: 1,
                           world.group_chief.id: 3}
    assert f'href="/points/people/{world.neighbor_chief.id}"' in page
    assert f'href="/points/people/{world.neighbor_chief2.id}"' not in page
    town = text(browser(world.town_staff).get(url))
    assert f'href="/points/people/{world.neighbor_chief2.id}"' in town
    # per-event columns
    assert "履职" in page and "提议题" in page and "表彰" in page


def test_ranking_refuses_other_regions_and_bad_periods(world, ledger, browser, make_region):
    b = browser(world.neighbor_chief)
    assert b.get(f"/points/ranking?region={world.group1.id}").status_code == 404
    other = make_region("别的镇")
    assert b.get(f"/points/ranking?region={other.id}").status_code == 404
    r = b.get("/points/ranking?period=2026-13")
    assert r.status_code == 422 and "2026Q4" in text(r)
    assert "没有岗位" in text(browser(world.nobody).get("/points/ranking"))


def test_ranking_by_quarter_and_year(world, ledger, browser):
    today = local_today()
    b = browser(world.town_staff)
    for period in (svc.quarter_of(today), str(today.year)):
        page = text(b.get(f"/points/ranking?region={world.town.id}&period={period}"))
        assert ranks(page)[world.neighbor_chief.id] == 1
    page = text(b.get(f"/points/ranking?region={world.town.id}&period={today.year - 3}"))
    assert ranks(page) == {} and "还没有人得分" in page


# -- the public pages ------------------------------------------------------------------------------
def test_public_ranking_without_login(world, ledger, client):
    r = client.get(f"/points/gongshi/{world.town.id}?period={month_key()}")
    assert r.status_code == 200
    page = text(r)
    assert PUBLIC_NOTE in page and "测试镇" in page
    assert ranks(page) == {world.neighbor_chief.id: 1, world.neighbor_chief2.id: 1,
                           world.group_chief.id: 3}
    for name in ("邻长", "邻长二", "组长"):
        assert f">{name}</a>" in page
    assert "<b>23</b>" in page and "<b>20</b>" in page
    for secret in RESIDENT_DATA:
        assert secret not in page, secret
    assert "退出" not in page and "/points/people/" not in page
    assert r.headers["X-Robots-Tag"] == "noindex, nofollow"

    village = text(client.get(f"/points/gongshi/{world.village1.id}"))
    assert "测试镇 · 村1" in village and ranks(village) == {
        world.neighbor_chief.id: 1, world.group_chief.id: 2}
    assert f"/points/gongshi/{world.village1.id}/{world.neighbor_chief.id}?period=" in village


def test_public_ranking_only_for_villages_and_towns(world, client):
    for region in (world.group1, world.hood1, world.area1):
        assert client.get(f"/points/gongshi/{region.id}").status_code == 404
    assert client.get("/points/gongshi/999999").status_code == 404
    r = client.get(f"/points/gongshi/{world.town.id}?period=abc")
    assert r.status_code == 422 and "2026Q4" in text(r)


def test_public_person_lists_sources_without_resident_data(world, ledger, client):
    svc.reverse(db.session.get(PointsEntry, ledger["commendation"]), "甲1家重复登记",
                world.village_staff)
    db.session.commit()
    url = f"/points/gongshi/{world.village1.id}/{world.neighbor_chief.id}?period={month_key()}"
    r = client.get(url)
    assert r.status_code == 200
    page = text(r)
    assert PUBLIC_NOTE in page and "邻长" in page
    assert f"来源：履职记录 #{ledger['log']}" in page
    assert f"民情诉求 #{ledger['request']}" in page
    assert f'<a href="#e{ledger["commendation"]}">积分记录 #{ledger["commendation"]}</a>' in page
    assert "冲正 · 获评表彰" in page and item(world.town, "duty", 0).title in page
    assert "<b>3</b>合计" in page
    for secret in RESIDENT_DATA:
        assert secret not in page, secret
    assert "/duties/households/" not in page and "/requests/" not in page

    # the ranking links there and agrees
    ranking = text(client.get(f"/points/gongshi/{world.village1.id}?period={month_key()}"))
    assert ranks(ranking)[world.neighbor_chief.id] == 2


def test_public_person_not_found(world, ledger, client, make_user):
    key = month_key()
    # entries in village 2 only, no post in village 1
    assert client.get(f"/points/gongshi/{world.village1.id}/{world.neighbor_chief2.id}"
                      f"?period={key}").status_code == 404
    assert client.get(f"/points/gongshi/{world.village1.id}/{world.nobody.id}"
                      f"?period={key}").status_code == 404
    assert client.get(f"/points/gongshi/{world.group1.id}/{world.neighbor_chief.id}"
                      ).status_code == 404
    assert client.get(f"/points/gongshi/{world.village1.id}/999999").status_code == 404
    # a post there but nothing earned in the period: the page says so
    r = client.get(f"/points/gongshi/{world.village1.id}/{world.area_chief.id}?period={key}")
    assert r.status_code == 200 and "没有得分记录" in text(r)
    # another period: nothing, but the 邻长 still holds a post there
    r = client.get(f"/points/gongshi/{world.village1.id}/{world.neighbor_chief.id}?period=2001")
    assert r.status_code == 200 and "没有得分记录" in text(r)


# -- query budget ----------------------------------------------------------------------------------
def test_queries_per_page(world, ledger, login_as, client, count_queries, give):
    give(world.neighbor_chief, world.hood1, utcnow(), n=60)
    svc.reverse(db.session.get(PointsEntry, ledger["on_time"]), "核实有误", world.village_staff)
    db.session.commit()
    key = month_key()
    pages = [
        ("index", "neighbor_chief", "/points/"),
        ("index page 2", "neighbor_chief", "/points/?page=2"),
        ("index search", "village_staff", "/points/?q=邻"),
        ("person", "village_staff", f"/points/people/{world.neighbor_chief.id}"),
        ("reverse", "village_staff", f"/points/entries/{ledger['commendation']}/reverse"),
        ("rules", "town_staff", "/points/rules"),
        ("rules (read)", "neighbor_chief", "/points/rules"),
        ("rules (admin)", "admin", "/points/rules"),
        ("ranking", "neighbor_chief", "/points/ranking"),
        ("ranking town", "village_staff", f"/points/ranking?region={world.town.id}"),
        ("ranking quarter", "town_staff",
         f"/points/ranking?region={world.town.id}&period={svc.quarter_of(local_today())}"),
        ("public ranking", None, f"/points/gongshi/{world.town.id}?period={key}"),
        ("public ranking village", None, f"/points/gongshi/{world.village1.id}"),
        ("public person", None,
         f"/points/gongshi/{world.village1.id}/{world.neighbor_chief.id}?period={key}"),
        ("public person (logged in)", "neighbor_chief",
         f"/points/gongshi/{world.village1.id}/{world.neighbor_chief.id}"),
    ]
    clients = {None: client}
    failures = []
    for name, who, url in pages:
        if who not in clients:
            clients[who] = login_as(getattr(world, who))
        with count_queries() as n:
            r = clients[who].get(url)
        assert r.status_code == 200, (name, r.status_code)
        if n.count > MAX_QUERIES:
            failures.append(f"{name}: {n.count}\n" + "\n".join(
                s.split("\n")[0][:150] for s in n.statements))
    assert not failures, "\n\n".join(failures)
