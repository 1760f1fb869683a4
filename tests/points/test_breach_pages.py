"""六不得 pages through the real client: a supervisor records a breach against a 邻长 (points
deducted by the rule), the 邻长 sees it and answers, staff withdraw it with a reason (points
back); who sees what (404) and who may do what (403); bad input 422 with nothing saved."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import Breach, PointsEntry
from portal.clock import local_today
from portal.extensions import db
from tests.conftest import Browser
from tests.points.conftest import count, item, post_of

MAX_QUERIES = 8
EVIDENCE = "收受联系户礼品，有照片和两位村民证言。"


def text(r) -> str:
    return r.data.decode()


@pytest.fixture
def browser(login_as):
    return lambda user: Browser(login_as(user))


def form(world, chief=None, k=0, **over):
    chief = chief or world.neighbor_chief
    return {"post_id": post_of(chief, "neighbor_chief").id,
            "item_id": item(world.town, "negative", k).id,
            "occurred_on": (local_today() - timedelta(days=2)).isoformat(),
            "evidence": EVIDENCE, **over}


def recorded(world, scope_of, actor=None, chief=None, k=0, evidence=EVIDENCE) -> Breach:
    actor = actor or world.group_chief
    chief = chief or world.neighbor_chief
    b = svc.record_breach(actor, scope_of(actor), post_of(chief, "neighbor_chief"),
                          item(world.town, "negative", k).id, local_today(), evidence)
    db.session.commit()
    return b


# -- recording ---------------------------------------------------------------------------------
def test_a_group_chief_records_a_breach_and_points_go_down(world, browser):
    b = browser(world.group_chief)
    post = post_of(world.neighbor_chief, "neighbor_chief")
    page = text(b.get(f"/points/breaches/new?post={post.id}"))
    assert f'<option selected value="{post.id}">邻长（邻11）</option>' in page
    assert "邻长二" not in page  # village 2's 邻长 is not the group chief's
    assert item(world.town, "negative", 1).title in page
    assert f'value="{local_today().isoformat()}"' in page
    before = svc.balance(world.neighbor_chief.id)
    resp = b.post("/points/breaches/new", **form(world, k=1))
    assert resp.status_code == 303
    breach = db.session.scalar(select(Breach))
    assert resp.headers["Location"] == f"/points/breaches/{breach.id}"
    assert (breach.user_id, breach.recorded_by_id, breach.item_id, breach.path) == (
        world.neighbor_chief.id, world.group_chief.id, item(world.town, "negative", 1).id,
        world.hood1.path)
    # the default rule of a 六不得 item: -10
    assert svc.balance(world.neighbor_chief.id) == before - 10
    page = text(b.get(resp.headers["Location"]))
    assert "扣 10 分" in page and "-10 分" in page and EVIDENCE in page
    assert item(world.town, "negative", 1).title in page and "组长" in page
    assert "撤销这条记录" not in page  # a 组长 does not withdraw
    assert f"/points/people/{world.neighbor_chief.id}" in page
    assert f'action="/points/breaches/{breach.id}/answer"' not in page


def test_the_chief_sees_it_and_answers(world, scope_of, browser):
    breach = recorded(world, scope_of)
    chief = browser(world.neighbor_chief)
    page = text(chief.get("/points/breaches"))
    assert f"/points/breaches/{breach.id}" in page and "未说明" in page
    assert "记录负面清单" not in page
    page = text(chief.get(f"/points/breaches/{breach.id}"))
    assert f'action="/points/breaches/{breach.id}/answer"' in page
    assert "撤销这条记录" not in page
    resp = chief.post(f"/points/breaches/{breach.id}/answer", response="  礼品已当场退回。 ")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/points/breaches/{breach.id}"
    db.session.expire_all()
    assert db.session.get(Breach, breach.id).response == "礼品已当场退回。"
    page = text(chief.get("/points/breaches"))
    assert "已说明" in page
    # an empty answer: 422, the old one kept
    resp = chief.post(f"/points/breaches/{breach.id}/answer", response=" ")
    assert resp.status_code == 422 and "请填写说明" in text(resp)
    db.session.expire_all()
    assert db.session.get(Breach, breach.id).response == "礼品已当场退回。"
    # the supervisors read the answer
    assert "礼品已当场退回" in text(browser(world.group_chief).get(
        f"/points/breaches/{breach.id}"))


def test_another_chief_gets_404(world, scope_of, browser, make_user):
    breach = recorded(world, scope_of)
    # even a second 邻长 of the same 邻
    same_hood = make_user("邻长三", "13800000310", role="neighbor_chief", region=world.hood1)
    for user in (world.neighbor_chief2, same_hood):
        b = browser(user)
        assert b.get(f"/points/breaches/{breach.id}").status_code == 404
        assert b.post(f"/points/breaches/{breach.id}/answer",
                      response="不是我").status_code == 404
        assert f"/points/breaches/{breach.id}" not in text(b.get("/points/breaches"))
    assert browser(world.group_chief).get("/points/breaches/999999").status_code == 404
    db.session.expire_all()
    assert db.session.get(Breach, breach.id).response == ""


def test_supervisors_may_not_answer_for_the_chief(world, scope_of, browser):
    breach = recorded(world, scope_of)
    resp = browser(world.village_staff).post(f"/points/breaches/{breach.id}/answer",
                                              response="替他说明")
    assert resp.status_code == 403
    db.session.expire_all()
    assert db.session.get(Breach, breach.id).response == ""


@pytest.mark.parametrize("who", ["neighbor_chief", "neighbor_chief2", "volunteer", "nobody"])
def test_chiefs_and_others_may_not_record(world, browser, who):
    b = browser(getattr(world, who))
    assert b.get("/points/breaches/new").status_code == 403
    assert b.post("/points/breaches/new", **form(world)).status_code == 403
    assert count(Breach) == 0 and count(PointsEntry) == 0


def test_a_chief_outside_the_supervisors_subtree_is_404(world, browser):
    resp = browser(world.group_chief).post("/points/breaches/new",
                                           **form(world, chief=world.neighbor_chief2))
    assert resp.status_code == 404
    resp = browser(world.group_chief).post("/points/breaches/new",
                                           **form(world, post_id=999999))
    assert resp.status_code == 404
    assert count(Breach) == 0


@pytest.mark.parametrize("over, message", [
    ({"evidence": "收礼"}, "请写明事实和证据"),
    ({"occurred_on": (local_today() + timedelta(days=1)).isoformat()}, "发生日期不能晚于今天"),
    ({"occurred_on": "上周"}, "日期格式不对"),
    ({"occurred_on": ""}, "请填写发生日期"),
    ({"post_id": "0"}, "请选择邻长"),
    ({"item_id": "0"}, "请选择负面清单中的一项"),
    ({"item_id": "abc"}, "请选择负面清单中的一项"),
])
def test_bad_input_is_422_and_saves_nothing(world, browser, over, message):
    resp = browser(world.group_chief).post("/points/breaches/new", **form(world, **over))
    assert resp.status_code == 422
    assert message in text(resp)
    assert count(Breach) == 0 and count(PointsEntry) == 0
    assert count(AuditEntry, AuditEntry.action == "breach.create") == 0


def test_a_duty_item_or_a_group_chiefs_post_is_refused(world, browser):
    resp = browser(world.village_staff).post(
        "/points/breaches/new", **form(world, item_id=item(world.town, "duty", 0).id))
    assert resp.status_code == 422 and "负面清单（六不得）中的一项" in text(resp)
    resp = browser(world.village_staff).post(
        "/points/breaches/new", **form(world, post_id=post_of(world.group_chief).id))
    assert resp.status_code == 422 and "只能对在岗邻长" in text(resp)
    assert count(Breach) == 0


def test_recording_without_csrf_is_refused(world, login_as):
    assert login_as(world.group_chief).post("/points/breaches/new",
                                            data=form(world)).status_code == 400
    assert count(Breach) == 0


# -- the list ------------------------------------------------------------------------------------
def test_the_list_follows_the_scope(world, scope_of, browser):
    ours = recorded(world, scope_of)
    theirs = recorded(world, scope_of, actor=world.town_staff, chief=world.neighbor_chief2)
    seen = {
        "group_chief": {ours.id},
        "area_chief": {ours.id},
        "village_staff": {ours.id},
        "town_staff": {ours.id, theirs.id},
        "admin": {ours.id, theirs.id},
        "neighbor_chief": {ours.id},
        "neighbor_chief2": {theirs.id},
    }
    for who, ids in seen.items():
        page = text(browser(getattr(world, who)).get("/points/breaches"))
        for b in (ours, theirs):
            assert (f'href="/points/breaches/{b.id}"' in page) == (b.id in ids), (who, b.id)
    page = text(browser(world.group_chief).get("/points/breaches"))
    assert "记录负面清单" in page and "邻长" in page and EVIDENCE[:10] in page
    for who in ("volunteer", "nobody"):
        assert browser(getattr(world, who)).get("/points/breaches").status_code == 403


def test_empty_lists_say_what_to_do(world, browser):
    assert "还没有负面清单记录" in text(browser(world.group_chief).get("/points/breaches"))
    assert "请继续保持" in text(browser(world.neighbor_chief).get("/points/breaches"))


# -- withdrawing ---------------------------------------------------------------------------------
def test_staff_withdraw_with_a_reason_and_the_points_come_back(world, scope_of, browser):
    breach = recorded(world, scope_of)
    assert svc.balance(world.neighbor_chief.id) == -10
    staff = browser(world.village_staff)
    page = text(staff.get(f"/points/breaches/{breach.id}"))
    assert "撤销这条记录" in page and "确认撤销" in page
    url = f"/points/breaches/{breach.id}/withdraw"
    resp = staff.post(url, reason=" ")
    assert resp.status_code == 422 and "请填写撤销理由" in text(resp)
    assert svc.balance(world.neighbor_chief.id) == -10
    resp = staff.post(url, reason="复核查无实据")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/points/breaches/{breach.id}"
    assert svc.balance(world.neighbor_chief.id) == 0
    db.session.expire_all()
    assert db.session.get(Breach, breach.id).withdrawn_reason == "复核查无实据"
    page = text(staff.get(resp.headers["Location"]))
    assert "已撤销" in page and "复核查无实据" in page and "+10 分" in page
    assert "确认撤销" not in page
    # the 邻长 sees it withdrawn and no longer answers it
    page = text(browser(world.neighbor_chief).get(f"/points/breaches/{breach.id}"))
    assert "已撤销" in page and "/answer" not in page
    # twice: 422, nothing more reversed
    resp = browser(world.town_staff).post(url, reason="再撤一次")
    assert resp.status_code == 422 and "已经撤销" in text(resp)
    assert count(PointsEntry) == 2 and svc.balance(world.neighbor_chief.id) == 0


@pytest.mark.parametrize("who", ["group_chief", "area_chief", "neighbor_chief"])
def test_withdraw_by_a_chief_is_403(world, scope_of, browser, who):
    breach = recorded(world, scope_of)
    resp = browser(getattr(world, who)).post(f"/points/breaches/{breach.id}/withdraw",
                                             reason="查无实据")
    assert resp.status_code == 403
    assert svc.balance(world.neighbor_chief.id) == -10
    db.session.expire_all()
    assert db.session.get(Breach, breach.id).withdrawn_at is None


def test_withdraw_out_of_scope_is_404(world, scope_of, browser):
    breach = recorded(world, scope_of, actor=world.town_staff, chief=world.neighbor_chief2)
    resp = browser(world.village_staff).post(f"/points/breaches/{breach.id}/withdraw",
                                             reason="查无实据")
    assert resp.status_code == 404
    assert svc.balance(world.neighbor_chief2.id) == -10


# -- query budget --------------------------------------------------------------------------------
def test_breach_pages_stay_within_the_query_budget(world, scope_of, browser, count_queries,
                                                  make_user):
    for k in range(6):
        recorded(world, scope_of, k=k)
    last = recorded(world, scope_of, actor=world.village_staff, k=2)
    svc.answer_breach(world.neighbor_chief, last, "已整改。")
    svc.withdraw_breach(world.village_staff, scope_of(world.village_staff), last, "重复记录")
    db.session.commit()
    pages = [
        ("group_chief", "/points/breaches"),
        ("town_staff", "/points/breaches"),
        ("neighbor_chief", "/points/breaches"),
        ("group_chief", "/points/breaches/new"),
        ("village_staff", f"/points/breaches/{last.id}"),
        ("neighbor_chief", f"/points/breaches/{last.id}"),
        ("town_staff", f"/points/breaches/{last.id - 1}"),
    ]
    for who, url in pages:
        b = browser(getattr(world, who))
        with count_queries() as n:
            r = b.get(url)
        assert r.status_code == 200, (who, url)
        assert n.count <= MAX_QUERIES, (who, url, n.count, n.statements)
