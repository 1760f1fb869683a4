"""民情诉求 settings of a town: response hours per level, the reopen window, categories and
departments."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.requests.models import (
    Department,
    Request,
    RequestCategory,
    RequestSettings,
)
from portal.extensions import db
from tests.conftest import csrf_from
from tests.requests.conftest import HOUR, NOW

GOOD = {"hours_neighborhood": "2", "hours_group": "12", "hours_village": "36",
        "hours_town": "96", "reopen_days": "14"}


def text(r) -> str:
    return re.sub(r"\s+", " ", r.data.decode())


def settings_row(town_id) -> tuple:
    row = db.session.get(RequestSettings, town_id, populate_existing=True)
    return (*row.hours, row.reopen_days)


def audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


def category(town_id, name):
    return db.session.scalar(select(RequestCategory).where(
        RequestCategory.town_id == town_id, RequestCategory.name == name)
        .execution_options(populate_existing=True))


@pytest.fixture
def staff(world, login_as):
    c = login_as(world.town_staff)
    page = c.get(f"/requests/settings?town={world.town.id}")
    c.token = csrf_from(page)
    return c


def test_settings_page_for_town_staff(world, staff, count_queries):
    with count_queries() as n:
        r = staff.get(f"/requests/settings?town={world.town.id}")
    assert r.status_code == 200 and n.count <= 8
    page = text(r)
    for name, value in (("hours_neighborhood", 4), ("hours_group", 24), ("hours_village", 48),
                        ("hours_town", 72), ("reopen_days", 7)):
        assert re.search(rf'name="{name}"[^>]*value="{value}"', page), name
    for name in ("安全隐患", "邻里纠纷", "其他", "农业综合服务中心", "就业服务站"):
        assert f'value="{name}"' in page
    # the link from the 清单 page
    assert f"/requests/settings?town={world.town.id}" in text(staff.get("/duties/checklists"))


def test_others_in_the_town_read_it(world, login_as):
    for user in (world.village_staff, world.neighbor_chief, world.volunteer):
        c = login_as(user)
        r = c.get("/requests/settings")
        assert r.status_code == 200
        page = text(r)
        assert "4 小时" in page and "72 小时" in page and "7 天" in page
        assert "<form method=\"post\" action=\"/requests/settings" not in page
        assert "农业综合服务中心" in page
        token = csrf_from(r)
        r = c.post(f"/requests/settings?town={world.town.id}", data={**GOOD, "csrf_token": token})
        assert r.status_code == 403
        cat = category(world.town.id, "其他")
        r = c.post(f"/requests/settings/categories/{cat.id}",
                   data={f"c{cat.id}-name": "改名", f"c{cat.id}-csrf_token": token})
        assert r.status_code == 403
    assert settings_row(world.town.id) == (4, 24, 48, 72, 7)
    assert category(world.town.id, "其他") is not None
    assert login_as(world.nobody).get("/requests/settings").status_code == 404


def test_other_towns_are_not_found(world, staff, make_region):
    other = make_region("别的镇")
    assert staff.get(f"/requests/settings?town={other.id}").status_code == 404
    assert staff.get(f"/requests/settings?town={world.village1.id}").status_code == 404
    r = staff.post(f"/requests/settings?town={other.id}", data={**GOOD,
                                                                 "csrf_token": staff.token})
    assert r.status_code == 404
    cat = category(other.id, "其他")
    r = staff.post(f"/requests/settings/categories/{cat.id}",
                   data={f"c{cat.id}-name": "改名", f"c{cat.id}-csrf_token": staff.token})
    assert r.status_code == 404
    r = staff.post("/requests/settings/departments/999999",
                   data={"d999999-name": "改名", "d999999-csrf_token": staff.token})
    assert r.status_code == 404
    assert category(other.id, "其他") is not None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("hours_neighborhood", "0", "邻级响应时限须是 1 到 720 之间的整数"),
    ("hours_group", "721", "组级响应时限须是 1 到 720 之间的整数"),
    ("hours_village", "abc", "村级响应时限须是 1 到 720 之间的整数"),
    ("hours_town", "", "镇级响应时限须是 1 到 720 之间的整数"),
    ("hours_town", "2.5", "镇级响应时限须是 1 到 720 之间的整数"),
    ("reopen_days", "91", "重新打开期限须是 0 到 90 之间的整数"),
    ("reopen_days", "-1", "重新打开期限须是 0 到 90 之间的整数"),
])
def test_bad_settings_save_nothing(world, staff, field, value, message):
    before = audit_count()
    r = staff.post(f"/requests/settings?town={world.town.id}",
                   data={**GOOD, field: value, "csrf_token": staff.token})
    assert r.status_code == 422
    page = text(r)
    assert message in page
    assert f'name="{field}"' in page and 'class="field bad"' in page
    assert settings_row(world.town.id) == (4, 24, 48, 72, 7)
    assert audit_count() == before


def test_settings_without_csrf_are_refused(world, staff):
    r = staff.post(f"/requests/settings?town={world.town.id}", data=GOOD)
    assert r.status_code == 400
    assert settings_row(world.town.id) == (4, 24, 48, 72, 7)


def test_new_hours_apply_to_new_requests(world, staff, make_request, load_household):
    old = make_request(load_household(world.hh1.id), at=NOW)
    r = staff.post(f"/requests/settings?town={world.town.id}",
                   data={**GOOD, "csrf_token": staff.token})
    assert r.status_code == 303
    assert r.headers["Location"] == f"/requests/settings?town={world.town.id}"
    assert settings_row(world.town.id) == (2, 12, 36, 96, 14)
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "request_settings.update"))
    assert entry.user_id == world.town_staff.id
    assert entry.detail_dict == {"hours": [[4, 24, 48, 72], [2, 12, 36, 96]],
                                 "reopen_days": [7, 14]}
    assert "时限已保存" in text(staff.get(r.headers["Location"]))
    new = make_request(load_household(world.hh1x.id), at=NOW)
    new = db.session.get(Request, new.id)
    assert new.dues == (NOW + 2 * HOUR, NOW + 14 * HOUR, NOW + 50 * HOUR, NOW + 146 * HOUR)
    old = db.session.get(Request, old.id, populate_existing=True)
    assert old.dues == (NOW + 4 * HOUR, NOW + 28 * HOUR, NOW + 76 * HOUR, NOW + 148 * HOUR)


def test_add_rename_and_deactivate_a_category(world, staff, make_request, load_household):
    r = staff.post(f"/requests/settings/categories?town={world.town.id}",
                   data={"cnew-name": " 噪音扰民 ", "cnew-is_dispute": "y",
                         "cnew-csrf_token": staff.token})
    assert r.status_code == 303
    assert r.headers["Location"] == f"/requests/settings?town={world.town.id}#categories"
    cat = category(world.town.id, "噪音扰民")
    assert (cat.is_dispute, cat.active) == (True, True)
    # used by a request, then renamed and switched off: the request keeps it
    req = make_request(load_household(world.hh1.id), category="噪音扰民")
    r = staff.post(f"/requests/settings/categories/{cat.id}",
                   data={f"c{cat.id}-name": "噪声扰民", f"c{cat.id}-is_dispute": "y",
                         f"c{cat.id}-csrf_token": staff.token})  # "active" unticked
    assert r.status_code == 303
    cat = category(world.town.id, "噪声扰民")
    assert (cat.is_dispute, cat.active) == (True, False)
    assert db.session.get(Request, req.id).category_id == cat.id
    page = text(staff.get(f"/requests/settings?town={world.town.id}"))
    assert 'class="opt off"' in page and 'value="噪声扰民"' in page
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action.like("category.%")).order_by(AuditEntry.id)))
    assert actions == ["category.create", "category.update"]
    # the figures still name it
    from datetime import datetime

    from portal.blueprints.requests import services as svc

    fig = svc.figures(world.town, datetime(2026, 11, 1), datetime(2026, 12, 1), NOW)
    assert fig.by_category == [("噪声扰民", 1, 0)]


def test_add_and_switch_off_a_department(world, staff):
    r = staff.post(f"/requests/settings/departments?town={world.town.id}",
                   data={"dnew-name": "水利站", "dnew-csrf_token": staff.token})
    assert r.status_code == 303
    dept = db.session.scalar(select(Department).where(Department.name == "水利站"))
    r = staff.post(f"/requests/settings/departments/{dept.id}",
                   data={f"d{dept.id}-name": "水利站", f"d{dept.id}-csrf_token": staff.token})
    assert r.status_code == 303
    db.session.refresh(dept)
    assert dept.active is False


@pytest.mark.parametrize(("kind", "name", "message"), [
    ("categories", "", "请填写名称"),
    ("categories", "邻里纠纷", "已有“邻里纠纷”"),
    ("categories", "很" * 21, "名称最多 20 字"),
    ("departments", "民政办", "已有“民政办”"),
    ("departments", "很" * 41, "名称最多 40 字"),
])
def test_bad_option_saves_nothing(world, staff, kind, name, message):
    model = RequestCategory if kind == "categories" else Department
    before = (db.session.scalar(select(func.count()).select_from(model)), audit_count())
    r = staff.post(f"/requests/settings/{kind}?town={world.town.id}",
                   data={f"{kind[0]}new-name": name, f"{kind[0]}new-csrf_token": staff.token})
    assert r.status_code == 422
    assert message in text(r)
    assert (db.session.scalar(select(func.count()).select_from(model)), audit_count()) == before


def test_rename_clash_and_the_last_category(world, staff):
    cats = list(db.session.scalars(select(RequestCategory).where(
        RequestCategory.town_id == world.town.id).order_by(RequestCategory.sort)))
    first, second = cats[0], cats[1]
    r = staff.post(f"/requests/settings/categories/{first.id}",
                   data={f"c{first.id}-name": second.name, f"c{first.id}-active": "y",
                         f"c{first.id}-csrf_token": staff.token})
    assert r.status_code == 422 and f"已有“{second.name}”" in text(r)
    # the failed row shows what was typed, the others their saved names
    row = re.search(rf'action="/requests/settings/categories/{first.id}".*?</form>', text(r))
    assert f'value="{second.name}"' in row.group(0) and "err" in row.group(0)
    assert category(world.town.id, first.name).name == first.name
    # switch all off but one, then the last one is refused
    for c in cats[1:]:
        r = staff.post(f"/requests/settings/categories/{c.id}",
                       data={f"c{c.id}-name": c.name, f"c{c.id}-csrf_token": staff.token})
        assert r.status_code == 303
    r = staff.post(f"/requests/settings/categories/{first.id}",
                   data={f"c{first.id}-name": first.name, f"c{first.id}-csrf_token": staff.token})
    assert r.status_code == 422 and "至少要保留一个启用的诉求类别" in text(r)
    assert category(world.town.id, first.name).active is True
