"""The public 公示 of a campaign (objections without an account) and the honour wall."""

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from portal.blueprints.commendations import services as svc
from portal.blueprints.commendations.models import Objection
from portal.extensions import db
from tests.commendations.test_services import NOW, chief_post, scope
from tests.conftest import csrf_from

DEEDS = "常年照看独居老人<script>alert(1)</script>，组织邻里清理山塘，三年走访不断。"


@pytest.fixture
def clock(monkeypatch):
    box = {"now": NOW}
    monkeypatch.setattr(svc, "utcnow", lambda: box["now"])
    return box


@pytest.fixture
def published(world, clock):
    town = scope(world.town_staff)
    c = svc.create_campaign(world.town_staff, town, world.town, {
        "title": "2026 年度测试镇好邻", "honour": "测试好邻", "quota": 2,
        "period_start": date(2026, 1, 1), "period_end": date(2027, 1, 1),
        "notice_start": date(2026, 11, 21), "notice_end": date(2026, 11, 27)}, now=NOW)
    n = svc.nominate(world.village_staff, scope(world.village_staff), c,
                     chief_post(world.neighbor_chief), DEEDS, now=NOW)
    svc.open_notice(world.town_staff, town, c, now=NOW)
    db.session.commit()
    return c, n


def objections() -> int:
    return db.session.scalar(select(func.count()).select_from(Objection))


def test_an_unpublished_campaign_is_not_shown(world, client, clock):
    c = svc.create_campaign(world.town_staff, scope(world.town_staff), world.town, {
        "title": "2026 年度测试镇好邻", "honour": "测试好邻", "quota": 2,
        "period_start": date(2026, 1, 1), "period_end": date(2027, 1, 1),
        "notice_start": date(2026, 11, 21), "notice_end": date(2026, 11, 27)}, now=NOW)
    db.session.commit()
    assert client.get(f"/gongshi/haolin/{c.id}").status_code == 404


def test_anyone_objects_during_the_notice(world, client, published, clock):
    c, n = published
    page = client.get(f"/gongshi/haolin/{c.id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and world.neighbor_chief.name in body
    assert "&lt;script&gt;" in body and "<script>alert" not in body
    assert "13912345678" not in body and world.hh1.head_name not in body
    assert "公示期还没开始" in body and "提交异议" not in body  # (20 Nov)
    clock["now"] = datetime(2026, 11, 22, 2)
    page = client.get(f"/gongshi/haolin/{c.id}")
    assert "提交异议" in page.get_data(as_text=True)
    url = f"/gongshi/haolin/{c.id}/{n.id}/object"
    token = csrf_from(page)
    short = client.post(url, data={"reason": "不属实", "csrf_token": token})
    assert short.status_code == 422 and "至少 10 个字" in short.get_data(as_text=True)
    assert objections() == 0
    assert client.post(url, data={"reason": "走访记录是补记的，很多户没有去过。"}).status_code == 400
    done = client.post(url, data={"reason": "走访记录是补记的，很多户没有去过。",
                                  "contact": "王先生 139****0000", "csrf_token": token})
    assert done.status_code == 303 and objections() == 1
    clock["now"] = datetime(2026, 11, 28, 2)  # after the notice
    late = client.post(url, data={"reason": "走访记录是补记的，很多户没有去过。",
                                  "csrf_token": token})
    assert late.status_code == 422 and "不在公示期" in late.get_data(as_text=True)
    assert objections() == 1


def test_the_honour_wall_shows_the_approved_only(world, client, published, clock):
    c, n = published
    wall = client.get(f"/rongyu/{world.town.id}")
    assert wall.status_code == 200 and world.neighbor_chief.name not in wall.get_data(True)
    assert client.get(f"/rongyu/entry/{n.id}").status_code == 404
    svc.decide(world.town_staff, scope(world.town_staff), c, n, True,
               now=datetime(2026, 11, 28, 2))
    db.session.commit()
    for url in (f"/rongyu/{world.town.id}", f"/rongyu/{world.village1.id}"):
        assert world.neighbor_chief.name in client.get(url).get_data(as_text=True)
    assert world.neighbor_chief.name not in client.get(
        f"/rongyu/{world.village2.id}").get_data(as_text=True)
    entry = client.get(f"/rongyu/entry/{n.id}").get_data(as_text=True)
    assert "测试好邻" in entry and "村1" in entry and "&lt;script&gt;" in entry
    assert client.get(f"/rongyu/{world.group1.id}").status_code == 404  # town or village only
