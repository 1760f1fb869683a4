"""The resident's view of one request through the household link: what it shows (and never
shows), the timeline, rating and reopening, and that the link reads nothing of another household.

The resident's views run at a controlled instant (``clock``); requests are made at NOW."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.regions.models import Household
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.models import Request, RequestEvent
from portal.extensions import db
from tests.conftest import csrf_from
from tests.requests.conftest import HOUR, NOW

NO_SUCH = "找不到这条诉求"




@pytest.fixture
def fresh():
    """fresh(req) → the request as stored now."""
    def get(req):
        db.session.expire_all()
        return db.session.get(Request, req.id)

    return get


@pytest.fixture
def close(world, scope_of, fresh):
    """close(req, at, answer=…): the 邻长 of hood1 answers and closes it."""
    def do(req, at=NOW + HOUR, answer="灯已经换好了，谢谢反映。"):
        req = fresh(req)
        svc.close(world.neighbor_chief, scope_of(world.neighbor_chief), req, at, answer)
        db.session.commit()
        return req

    return do


def link(household) -> str:
    db.session.expire_all()
    return f"/r/{db.session.get(Household, household.id).intake_token}"


def events(req) -> list[str]:
    return list(db.session.scalars(select(RequestEvent.kind).where(
        RequestEvent.request_id == req.id).order_by(RequestEvent.at, RequestEvent.id)))


def text(html: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


# -- what the page shows -------------------------------------------------------------------------
def test_detail_shows_the_request_and_the_time_left(world, client, clock, new_request):
    req = new_request(world.hh1, description="楼道灯坏了\n晚上看不见。", contact_phone="13800138000")
    clock["now"] = NOW + HOUR
    r = client.get(f"{link(world.hh1)}/{req.id}")
    assert r.status_code == 200
    html = r.data.decode()
    page = text(html)
    assert req.number in page and "安全隐患" in page and "楼道灯坏了\n晚上看不见。" in html
    assert "待响应" in page and "现在由邻级办理" in page
    assert "等待邻长答复：还剩 3 小时 0 分钟（11月16日 14:00 前）" in page
    # the timeline: label, local time, who
    assert "提交诉求 2026-11-16 10:00 · 居民" in page
    # no phone of anyone: the contact's, the household's, the chief's login
    for phone in ("13800138000", "138****8000", "13912345678", "139****5678",
                  world.neighbor_chief.phone):
        assert phone not in html
    assert "甲家" in page and "甲1" not in page
    # nothing to rate or reopen yet
    assert "提交评价" not in page and "重新打开" not in page
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_escalation_shows_the_level_it_is_at_now(world, client, clock, new_request):
    req = new_request(world.hh1)
    url = f"{link(world.hh1)}/{req.id}"
    clock["now"] = NOW + 5 * HOUR  # the 邻's 4 hours passed, no tick yet: right on every read
    page = text(client.get(url).data.decode())
    assert "现在由组级办理" in page and "等待组长答复：还剩 23 小时 0 分钟" in page
    svc.tick(NOW + 5 * HOUR)
    page = text(client.get(url).data.decode())
    assert "超时自动上报 2026-11-16 14:00 · 系统" in page and "转到组级" in page
    clock["now"] = NOW + 1000 * HOUR  # past every level's deadline
    page = text(client.get(url).data.decode())
    assert "已超过答复时限" in page and "还剩" not in page


def test_timeline_names_the_level_and_the_people_not_their_phones(world, client, clock,
                                                                 new_request, scope_of, fresh):
    req = new_request(world.hh1, actor=world.neighbor_chief)
    req = fresh(req)
    svc.offer_to_helpers(world.neighbor_chief, scope_of(world.neighbor_chief), req,
                         NOW + HOUR, "请志愿者帮忙")
    db.session.commit()
    req = fresh(req)
    svc.claim(world.volunteer, scope_of(world.volunteer), req, NOW + 2 * HOUR)
    db.session.commit()
    html = client.get(f"{link(world.hh1)}/{req.id}").data.decode()
    page = text(html)
    assert "提交诉求 2026-11-16 10:00 · 邻长（代录）" in page and "邻长代录" in page
    assert "发布接单 2026-11-16 11:00 · 邻级 · 邻长" in page and "请志愿者帮忙" in page
    assert "接单 2026-11-16 12:00 · 接单人 志愿者" in page
    assert "办理中" in page
    for user in (world.neighbor_chief, world.volunteer):
        assert user.phone not in html


# -- another household's request -----------------------------------------------------------------
def test_the_link_cannot_read_another_households_request(world, client, clock, new_request,
                                                         close, fresh):
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (20, 20)).save(out, "JPEG")
    theirs = close(new_request(world.hh1x, description="邻居家的秘密", photo=out.getvalue()))
    mine = link(world.hh1)
    for url in (f"{mine}/{theirs.id}", f"{mine}/999999"):
        r = client.get(url)
        assert r.status_code == 404
        html = r.data.decode()
        assert NO_SUCH in html and "邻居家的秘密" not in html
    assert client.get(f"{mine}/{theirs.id}/photo").status_code == 404
    csrf = csrf_from(client.get(mine))
    r = client.post(f"{mine}/{theirs.id}/rate", data={"csrf_token": csrf, "rating": "satisfied"})
    assert r.status_code == 404
    r = client.post(f"{mine}/{theirs.id}/reopen", data={"csrf_token": csrf,
                                                        "reason": "我想重新打开它"})
    assert r.status_code == 404
    stored = fresh(theirs)
    assert (stored.status, stored.rating, stored.reopen_count) == ("closed", None, 0)
    assert events(theirs) == ["created", "closed"]
    # the right link reads it
    r = client.get(f"{link(world.hh1x)}/{theirs.id}")
    assert r.status_code == 200 and "邻居家的秘密" in r.data.decode()


def test_a_bad_token_cannot_rate(world, client, clock, new_request, close, fresh):
    req = close(new_request(world.hh1))
    csrf = csrf_from(client.get(link(world.hh1)))
    r = client.post(f"/r/{'y' * 22}/{req.id}/rate", data={"csrf_token": csrf,
                                                          "rating": "satisfied"})
    assert r.status_code == 404 and "链接无效或已更换" in r.data.decode()
    assert fresh(req).rating is None


# -- rating --------------------------------------------------------------------------------------
def test_rate_once(world, client, clock, new_request, close, fresh):
    req = close(new_request(world.hh1))
    clock["now"] = NOW + 2 * HOUR
    url = f"{link(world.hh1)}/{req.id}"
    page = client.get(url)
    html = page.data.decode()
    assert "灯已经换好了，谢谢反映。" in html and "邻级办结" in html
    assert "提交评价" in html and ">基本满意</label>" in html
    r = client.post(f"{url}/rate", data={"csrf_token": csrf_from(page), "rating": "basic",
                                         "note": "  修得挺快  "})
    assert r.status_code == 303 and r.headers["Location"] == url
    stored = fresh(req)
    assert (stored.rating, stored.rating_note, stored.rated_at) == ("basic", "修得挺快",
                                                                    NOW + 2 * HOUR)
    assert events(req)[-1] == "rated"
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "request.rated"))
    assert audit.user_id is None and audit.object_id == req.id
    page = client.get(url)
    html = text(page.data.decode())
    assert "谢谢您的评价" in html and "您的评价：基本满意，修得挺快" in html
    assert "提交评价" not in html
    # a second rating is refused, with the reason on the page
    r = client.post(f"{url}/rate", data={"csrf_token": csrf_from(page),
                                         "rating": "unsatisfied"})
    assert r.status_code == 422 and "这次答复已经评价过了。" in r.data.decode()
    assert fresh(req).rating == "basic"
    assert events(req).count("rated") == 1


def test_rating_needs_a_choice_and_a_closed_request(world, client, clock, new_request, close,
                                                   fresh):
    open_req = new_request(world.hh1)
    url = f"{link(world.hh1)}/{open_req.id}"
    csrf = csrf_from(client.get(url))
    r = client.post(f"{url}/rate", data={"csrf_token": csrf, "rating": "satisfied"})
    assert r.status_code == 422 and "办结后才能评价。" in r.data.decode()
    assert fresh(open_req).rating is None
    req = close(new_request(world.hh1, description="另一件事情要办"))
    url = f"{link(world.hh1)}/{req.id}"
    for data in ({}, {"rating": "great"}, {"rating": "satisfied", "note": "长" * 201}):
        r = client.post(f"{url}/rate", data={"csrf_token": csrf, **data})
        assert r.status_code == 422
        assert ("请选择满意、基本满意或不满意。" if "note" not in data else "意见最多 200 字。") \
            in r.data.decode()
    assert fresh(req).rating is None
    # without the CSRF token nothing happens
    assert client.post(f"{url}/rate", data={"rating": "satisfied"}).status_code == 400
    assert fresh(req).rating is None


# -- reopening -----------------------------------------------------------------------------------
def test_reopen_within_the_window(world, client, clock, new_request, close, fresh):
    req = close(new_request(world.hh1), at=NOW + HOUR)
    until = NOW + HOUR + 7 * 24 * HOUR
    clock["now"] = until  # the last moment it may be reopened
    url = f"{link(world.hh1)}/{req.id}"
    page = client.get(url)
    assert "2026年11月23日 11:00 前可以重新打开" in page.data.decode()
    r = client.post(f"{url}/reopen", data={"csrf_token": csrf_from(page),
                                           "reason": "灯又坏了，还是不亮"})
    assert r.status_code == 303 and r.headers["Location"] == url
    stored = fresh(req)
    assert (stored.status, stored.level, stored.answer, stored.reopen_count) == ("new", 0, None, 1)
    assert stored.due_0 == until + 4 * HOUR
    assert events(req)[-1] == "reopened"
    page = text(client.get(url).data.decode())
    assert "已重新打开" in page and "居民重新打开" in page and "灯又坏了，还是不亮" in page
    assert "待响应" in page and "等待邻长答复：还剩 4 小时 0 分钟" in page
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "request.reopened")) == 1


def test_reopen_outside_the_window_is_refused(world, client, clock, new_request, close, fresh):
    req = close(new_request(world.hh1), at=NOW + HOUR)
    clock["now"] = NOW + HOUR + 7 * 24 * HOUR + HOUR / 60
    url = f"{link(world.hh1)}/{req.id}"
    page = client.get(url)
    assert "重新打开" not in page.data.decode()
    r = client.post(f"{url}/reopen", data={"csrf_token": csrf_from(page),
                                           "reason": "灯又坏了，还是不亮"})
    assert r.status_code == 422
    assert "已超过 7 天的重新打开期限" in r.data.decode()
    stored = fresh(req)
    assert (stored.status, stored.reopen_count) == ("closed", 0)
    assert events(req)[-1] == "closed"


def test_reopen_needs_a_reason(world, client, clock, new_request, close, fresh):
    req = close(new_request(world.hh1))
    url = f"{link(world.hh1)}/{req.id}"
    r = client.post(f"{url}/reopen", data={"csrf_token": csrf_from(client.get(url)),
                                           "reason": "不"})
    assert r.status_code == 422
    html = r.data.decode()
    assert "至少 4 个字" in html and "<details class=\"box\" open>" in html
    assert fresh(req).status == "closed"


def test_an_open_request_cannot_be_reopened(world, client, clock, new_request, fresh):
    req = new_request(world.hh1)
    url = f"{link(world.hh1)}/{req.id}"
    r = client.post(f"{url}/reopen", data={"csrf_token": csrf_from(client.get(url)),
                                           "reason": "想重新打开"})
    assert r.status_code == 422 and "只有已办结的诉求可以重新打开。" in r.data.decode()
    assert fresh(req).reopen_count == 0


# -- budgets -------------------------------------------------------------------------------------
def test_detail_query_count(world, client, clock, new_request, close, fresh, scope_of,
                            count_queries):
    req = new_request(world.hh1, actor=world.neighbor_chief)
    req = fresh(req)
    svc.acknowledge(world.neighbor_chief, scope_of(world.neighbor_chief), req, NOW + HOUR,
                    "马上去看")
    db.session.commit()
    close(req, at=NOW + 2 * HOUR)
    clock["now"] = NOW + 3 * HOUR
    url = f"{link(world.hh1)}/{req.id}"
    with count_queries() as n:
        r = client.get(url)
    assert r.status_code == 200 and "提交评价" in r.data.decode()
    assert n.count <= 8, n.statements
