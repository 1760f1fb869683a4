"""The handlers' side of 民情诉求 through the web pages: the queue (我的诉求), a request's page and
its actions (响应, 上报, 转交, 发布接单, 办结, 调解; the helper's 进展, 办完, 退回), the 接单 board,
scope, refusals (422 with the message, nothing saved), and queries per page.

The views read the clock through ``utcnow``; the ``clock`` fixture sets it (no sleeping)."""

import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.requests.models import Department, Mediation, Request, RequestEvent
from portal.extensions import db
from tests.conftest import Browser as SignedIn
from tests.requests.conftest import HOUR, NOW

MINUTE = timedelta(minutes=1)
IRRIGATION = "山塘输水洞堵塞，蓄水困难，春耕马上要灌溉。"
ANSWER = "镇农业综合服务中心和村里安排专人修复了输水洞，已恢复蓄水，保障了农田灌溉。"


@pytest.fixture
def clock(monkeypatch):
    """The handlers' pages see ``clock.now`` (starts at NOW) as the current time."""
    from portal.blueprints.duties import views as duty_views
    from portal.blueprints.requests import services, views

    box = SimpleNamespace(now=NOW)
    for module in (views, duty_views, services):
        monkeypatch.setattr(module, "utcnow", lambda: box.now)
    return box


class Browser(SignedIn):
    """A logged-in client with the request actions."""

    def act(self, request_id, action, **data):
        return self.post(f"/requests/{request_id}/{action}", **data)

    def claim(self, request_id):
        return self.post(f"/requests/{request_id}/claim")


@pytest.fixture
def browser(login_as):
    return lambda user: Browser(login_as(user))


@pytest.fixture
def new_request(make_request, load_household):
    """new_request(household, **kw) → the request's id (submitted at clock NOW unless ``at``)."""

    def make(household, **kw):
        return make_request(load_household(household.id), **kw).id

    return make


def fresh(request_id) -> Request:
    """The request as saved (ends the test's own read transaction first)."""
    db.session.rollback()
    return db.session.get(Request, request_id)


def state(request_id) -> tuple:
    """Everything a refused action must leave unchanged."""
    db.session.rollback()
    with db.engine.connect() as conn:
        row = conn.execute(select(Request.__table__).where(Request.id == request_id)).one()
        events = conn.scalar(select(func.count()).select_from(RequestEvent))
        audit = conn.scalar(select(func.count()).select_from(AuditEntry))
        mediations = conn.scalar(select(func.count()).select_from(Mediation))
    return tuple(row), events, audit, mediations


def kinds(request_id) -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(select(RequestEvent.kind).where(
        RequestEvent.request_id == request_id).order_by(RequestEvent.at, RequestEvent.id)))


def audit_actions(request_id) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "request", AuditEntry.object_id == request_id)
        .order_by(AuditEntry.id)))


def text(response) -> str:
    """The page's text without tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def department_id(town_id, name="农业综合服务中心") -> int:
    return db.session.scalar(select(Department.id).where(Department.town_id == town_id,
                                                         Department.name == name))


# -- the whole loop, seeds' irrigation example ----------------------------------------------------
def test_respond_escalate_to_village_route_and_answer(world, clock, browser, new_request):
    rid = new_request(world.hh1, description=IRRIGATION, category="生活求助")
    chief = browser(world.neighbor_chief)

    page = chief.get("/requests/")
    assert page.status_code == 200
    assert "山塘输水洞堵塞" in text(page) and "还剩 4 小时" in text(page)

    clock.now = NOW + 20 * MINUTE
    r = chief.act(rid, "acknowledge", note="我马上去看看。")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/requests/{rid}")
    req = fresh(rid)
    assert (req.status, req.level, req.handler_id) == ("working", 0, world.neighbor_chief.id)
    assert "已响应" in text(chief.get(f"/requests/{rid}"))

    clock.now = NOW + HOUR
    r = chief.act(rid, "escalate", reason="输水洞堵在山塘底部，需要村里协调专人和设备。")
    assert r.status_code == 303
    req = fresh(rid)
    assert (req.status, req.level, req.handler_id) == ("new", 1, None)
    assert req.due_1 == NOW + HOUR + 24 * HOUR

    # the 邻长 may read it still, but no longer act at 组
    before = state(rid)
    r = chief.act(rid, "acknowledge", note="")
    assert r.status_code == 422
    assert "这条诉求现在由组级办理" in text(r)
    assert state(rid) == before
    assert "上报" not in re.findall(r"<summary[^>]*>([^<]+)</summary>",
                                   chief.get(f"/requests/{rid}").get_data(as_text=True))

    group = browser(world.group_chief)
    queue = text(group.get("/requests/"))
    assert "山塘输水洞堵塞" in queue and "组级" in queue
    clock.now = NOW + 3 * HOUR
    assert group.act(rid, "escalate", reason="组里解决不了，需要镇农业综合服务中心。") \
        .status_code == 303
    assert fresh(rid).level == 2
    assert "山塘输水洞堵塞" not in text(group.get("/requests/"))

    staff = browser(world.village_staff)
    assert "山塘输水洞堵塞" in text(staff.get("/requests/"))
    page = staff.get(f"/requests/{rid}")
    assert "转交部门" in text(page) and "农业综合服务中心" in text(page)
    clock.now = NOW + 4 * HOUR
    r = staff.act(rid, "route", department_id=str(department_id(world.town.id)),
                  note="请中心派人修复。")
    assert r.status_code == 303
    req = fresh(rid)
    assert (req.status, req.level) == ("working", 2)
    assert req.department_id == department_id(world.town.id)
    assert req.handler_id == world.village_staff.id

    clock.now = NOW + 30 * HOUR
    r = staff.act(rid, "close", answer=ANSWER)
    assert r.status_code == 303
    req = fresh(rid)
    assert (req.status, req.closed_level, req.answer) == ("closed", 2, ANSWER)
    assert req.closed_by_id == world.village_staff.id

    assert kinds(rid) == ["created", "acknowledged", "escalated", "escalated", "routed", "closed"]
    assert audit_actions(rid) == ["request.create", "request.acknowledged", "request.escalated",
                                  "request.escalated", "request.routed", "request.closed"]
    page = text(staff.get(f"/requests/{rid}"))
    assert "已在村级办结" in page and "输水洞" in page and "转交农业综合服务中心" in page
    # closed: no more actions, and not in anyone's queue
    assert "<summary" not in staff.get(f"/requests/{rid}").get_data(as_text=True)
    assert "山塘输水洞堵塞" not in text(staff.get("/requests/"))


def test_deadline_passed_moves_it_up_and_tells_the_chief_why(world, clock, browser, new_request):
    rid = new_request(world.hh1)
    chief = browser(world.neighbor_chief)
    clock.now = NOW + 3 * HOUR + 50 * MINUTE
    page = text(chief.get("/requests/"))
    assert "还剩 10 分钟" in page
    assert 'class="hh overdue"' in chief.get("/requests/").get_data(as_text=True)  # red: < 1 h

    clock.now = NOW + 4 * HOUR + MINUTE  # no tick ran: the pages are right anyway
    assert "楼道灯坏了" not in text(chief.get("/requests/"))
    page = text(chief.get(f"/requests/{rid}"))
    assert "现在由组级办理" in page and "自动上报" in page and "等待组级响应" in page
    before = state(rid)
    r = chief.act(rid, "acknowledge")
    assert r.status_code == 422 and "现在由组级办理" in text(r)
    assert state(rid) == before  # not even the timeout event: the refusal saved nothing

    group = browser(world.group_chief)
    assert "楼道灯坏了" in text(group.get("/requests/"))
    assert group.act(rid, "acknowledge").status_code == 303
    assert kinds(rid) == ["created", "timeout", "acknowledged"]
    req = fresh(rid)
    assert (req.level, req.status, req.missed) == (1, "working", 1)


def test_home_banner_household_list_and_nav(world, clock, browser, new_request):
    chief = browser(world.neighbor_chief)
    home = chief.get("/duties/").get_data(as_text=True)
    assert "待响应诉求" not in home
    assert 'href="/requests/"' in home and 'href="/requests/board"' in home  # nav
    rid = new_request(world.hh1)
    new_request(world.hh1x)
    home = text(chief.get("/duties/"))
    assert "待响应诉求 2 件" in home
    page = chief.get(f"/duties/households/{world.hh1.id}").get_data(as_text=True)
    assert f'href="/requests/{rid}"' in page
    assert f'href="/households/{world.hh1.id}/requests/new"' in page  # 代录诉求
    assert f'href="/households/{world.hh1.id}/qr"' in page  # 点单二维码
    chief.act(rid, "acknowledge")
    assert "待响应诉求 1 件" in text(chief.get("/duties/"))

    volunteer = browser(world.volunteer)
    page = volunteer.get("/requests/board").get_data(as_text=True)
    assert 'href="/requests/board"' in page and 'href="/requests/"' not in page
    r = volunteer.get("/requests/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/requests/board")
    assert browser(world.nobody).get("/requests/board").status_code == 403


def test_queue_empty_state_and_staff_links(world, clock, browser):
    chief = text(browser(world.neighbor_chief).get("/requests/"))
    assert "居民扫码点单或您代录后，会出现在这里" in chief
    assert "逾期" not in chief
    staff = browser(world.village_staff).get("/requests/").get_data(as_text=True)
    assert 'href="/requests/overdue"' in staff and 'href="/requests/stats"' in staff


# -- scope --------------------------------------------------------------------------------------
def test_neighbor_chief_sees_only_their_households(world, clock, browser, new_request):
    mine = new_request(world.hh1, description="我家门口的下水道堵了。")
    other = new_request(world.hh1b, description="隔壁邻的路灯坏了。")  # same 组, another 邻
    chief = browser(world.neighbor_chief)
    queue = text(chief.get("/requests/"))
    assert "下水道" in queue and "隔壁邻" not in queue
    assert chief.get(f"/requests/{mine}").status_code == 200
    assert chief.get(f"/requests/{other}").status_code == 404
    before = state(other)
    assert chief.act(other, "acknowledge").status_code == 404
    assert state(other) == before
    # the group chief sees both; 邻-level ones are not in their queue, but the other 邻 has no
    # 邻长, so its request starts at 组
    group = browser(world.group_chief)
    assert group.get(f"/requests/{other}").status_code == 200
    queue = text(group.get("/requests/"))
    assert "隔壁邻" in queue and "下水道" not in queue


def test_village_staff_queue_holds_what_reached_village(world, clock, browser, new_request):
    low = new_request(world.hh1, description="刚提交的诉求，还在邻级。", at=NOW + 27 * HOUR)
    high = new_request(world.hh1x, description="两级都没响应，到了村级。")
    far = new_request(world.hh2, description="二村的诉求。")
    clock.now = NOW + 28 * HOUR + MINUTE  # past 邻 (4 h) and 组 (24 h) for ``high``
    staff = browser(world.village_staff)
    queue = text(staff.get("/requests/"))
    assert "到了村级" in queue and "还在邻级" not in queue and "二村" not in queue
    assert staff.get(f"/requests/{low}").status_code == 200  # may read it, not theirs yet
    assert staff.get(f"/requests/{far}").status_code == 404
    assert staff.act(far, "close", answer=ANSWER).status_code == 404
    # they may step in below their level: answer the 邻-level one themselves
    assert staff.act(low, "acknowledge").status_code == 303
    assert fresh(high).status == "new"


def test_volunteer_sees_only_offered_or_claimed(world, clock, browser, new_request):
    rid = new_request(world.hh1, contact_phone="13912345678", description="老人家水管爆了。")
    far = new_request(world.hh2, contact_phone="13912345678", description="二村的水管。")
    volunteer = browser(world.volunteer)
    assert volunteer.get(f"/requests/{rid}").status_code == 404
    assert "水管" not in text(volunteer.get("/requests/board"))

    chief = browser(world.neighbor_chief)
    assert chief.act(rid, "offer", note="需要会修水管的志愿者。").status_code == 303
    chief2 = browser(world.neighbor_chief2)
    assert chief2.act(far, "offer").status_code == 303

    board = volunteer.get("/requests/board").get_data(as_text=True)
    assert "老人家水管爆了" in board and "二村的水管" not in board
    assert "13912345678" not in board and "5678" not in board  # no phone on the board
    page = volunteer.get(f"/requests/{rid}").get_data(as_text=True)
    assert "13912345678" not in page and "139****5678" in page
    assert volunteer.get(f"/requests/{far}").status_code == 404
    assert volunteer.claim(far).status_code == 404

    assert volunteer.claim(rid).status_code == 303
    page = volunteer.get(f"/requests/{rid}").get_data(as_text=True)
    assert 'href="tel:13912345678"' in page  # the helper calls the resident
    assert f'href="/duties/households/{world.hh1.id}"' not in page  # but sees no household page
    # handlers' actions are not the volunteer's: refused outright
    before = state(rid)
    assert volunteer.act(rid, "close", answer=ANSWER).status_code == 403
    assert volunteer.act(rid, "escalate", reason="我不想办了啊").status_code == 403
    assert state(rid) == before
    # another volunteer of the village no longer sees it (taken)
    from portal.blueprints.regions.models import Post

    other = browser(_volunteer(world))
    assert other.get(f"/requests/{rid}").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(Post)) > 0


def _volunteer(world, name="志愿者二", phone="13800000199"):
    from portal.blueprints.auth.services import create_user
    from portal.blueprints.regions.models import Post
    from tests.conftest import PASSWORD

    user = create_user(None, phone, name, PASSWORD)
    db.session.add(Post(user_id=user.id, region_id=world.village1.id, role="volunteer"))
    db.session.commit()
    return user


# -- 接单 -----------------------------------------------------------------------------------------
def test_claim_progress_done_and_confirm(world, clock, browser, new_request):
    rid = new_request(world.hh1, description="独居老人家里灯泡坏了，够不着。")
    chief = browser(world.neighbor_chief)
    volunteer = browser(world.volunteer)
    assert chief.act(rid, "offer").status_code == 303
    assert fresh(rid).status == "working"  # offering counts as the response

    clock.now = NOW + HOUR
    r = volunteer.claim(rid)
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/requests/{rid}")
    board = text(volunteer.get("/requests/board"))
    assert "独居老人家里灯泡" in board.split("我接的单")[1]
    assert "独居老人家里灯泡" not in board.split("我接的单")[0]

    # the handler cannot close it while the helper works on it
    before = state(rid)
    r = chief.act(rid, "close", answer="已经修好了灯泡。")
    assert r.status_code == 422 and "接单人还没有报告办完" in text(r)
    assert state(rid) == before

    assert volunteer.act(rid, "progress", note="买好灯泡了，下午上门。").status_code == 303
    clock.now = NOW + 3 * HOUR
    assert volunteer.act(rid, "done", note="已上门换好灯泡，老人说很亮。").status_code == 303
    assert "接单人已办完，待确认" in text(chief.get("/requests/"))

    page = chief.get(f"/requests/{rid}").get_data(as_text=True)
    assert "确认办结" in page
    assert "已上门换好灯泡，老人说很亮。</textarea>" in page  # the answer's draft
    assert chief.act(rid, "close", answer="志愿者已上门换好灯泡。").status_code == 303
    req = fresh(rid)
    assert (req.status, req.helper_id, req.answer) == ("closed", world.volunteer.id,
                                                        "志愿者已上门换好灯泡。")
    assert kinds(rid) == ["created", "helpers", "claimed", "progress", "helper_done", "closed"]
    assert audit_actions(rid)[1:] == ["request.helpers", "request.claimed", "request.progress",
                                      "request.helper_done", "request.closed"]
    # the helper still finds it; it left their open list
    assert volunteer.get(f"/requests/{rid}").status_code == 200
    assert "灯泡" not in text(volunteer.get("/requests/board"))


def test_release_asks_first(world, clock, browser, new_request):
    rid = new_request(world.hh1)
    browser(world.neighbor_chief).act(rid, "offer")
    volunteer = browser(world.volunteer)
    volunteer.claim(rid)
    page = volunteer.get(f"/requests/{rid}").get_data(as_text=True)
    assert f'href="/requests/{rid}?confirm=release#release"' in page
    assert "确认退回" not in page

    before = state(rid)
    r = volunteer.act(rid, "release", note="临时出差")  # without the second step: asks
    assert r.status_code == 200 and "确认退回" in text(r)
    assert state(rid) == before
    page = volunteer.get(f"/requests/{rid}?confirm=release")
    assert "确定把这一单退回接单栏吗" in text(page)

    other = browser(_volunteer(world))  # sees it on no board (taken), cannot give it back
    chief = browser(world.neighbor_chief)  # sees it, is not its helper: told so
    before = state(rid)
    assert other.act(rid, "release", confirm="yes").status_code == 404
    r = chief.act(rid, "release", note="我来退")
    assert r.status_code == 422 and "只有接单人可以这样做" in text(r)
    assert state(rid) == before

    assert volunteer.act(rid, "release", note="临时出差", confirm="yes").status_code == 303
    req = fresh(rid)
    assert (req.helper_id, req.open_to_helpers) == (None, True)
    assert "楼道灯坏了" in text(volunteer.get("/requests/board")).split("我接的单")[0]


# -- mediation ----------------------------------------------------------------------------------
def test_mediation_of_a_dispute_records_the_agreement(world, clock, browser, new_request):
    rid = new_request(world.hh1, category="邻里纠纷",
                      description="周奶奶86岁，六个子女因财产分配不和，赡养没人管。")
    plain = new_request(world.hh1x)
    chief = browser(world.neighbor_chief)
    assert "记录调解" not in text(chief.get(f"/requests/{plain}"))
    assert "记录调解" in text(chief.get(f"/requests/{rid}"))

    form = {"parties": "周奶奶及六名子女", "mediators": "邻长、社区工作人员",
            "held_at": "2026-11-16 12:00", "outcome": "agreed", "agreement_title": "赡养协议",
            "agreement_terms": "六名子女轮流照顾母亲，每人每月出赡养费500元。", "signed_on": ""}
    clock.now = NOW + 3 * HOUR
    before = state(rid)
    r = chief.act(rid, "mediation", **form)
    assert r.status_code == 422 and "请填写签订日期" in text(r)
    assert state(rid) == before
    assert 'id="mediation" open' in r.get_data(as_text=True)  # the refused form, reopened

    r = chief.act(rid, "mediation", **(form | {"signed_on": "2026-11-16"}))
    assert r.status_code == 303
    db.session.rollback()
    m = db.session.scalar(select(Mediation).where(Mediation.request_id == rid))
    assert (m.outcome, m.agreement_title, m.signed_on) == ("agreed", "赡养协议", date(2026, 11, 16))
    assert m.held_at == NOW + 2 * HOUR  # 12:00 in Asia/Shanghai
    page = text(chief.get(f"/requests/{rid}"))
    assert "《赡养协议》" in page and "调解记录" in page and "周奶奶及六名子女" in page
    assert kinds(rid) == ["created", "mediation"]
    assert audit_actions(rid)[-1] == "request.mediation"


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input_is_refused_on_the_form(world, clock, browser, new_request, make_region):
    rid = new_request(world.hh1)
    chief = browser(world.neighbor_chief)

    before = state(rid)
    r = chief.act(rid, "escalate", reason="")
    assert r.status_code == 422 and "请填写上报原因" in text(r)
    assert 'id="escalate" open' in r.get_data(as_text=True)
    assert state(rid) == before

    r = chief.act(rid, "close", answer="  ")
    assert r.status_code == 422 and "请填写答复" in text(r)
    assert state(rid) == before

    r = chief.act(rid, "route", department_id=str(department_id(world.town.id)))
    assert r.status_code == 422 and "到村级或镇级后才能转交部门" in text(r)
    assert state(rid) == before

    assert chief.act(rid, "delete").status_code == 404
    assert chief.act(rid, "claimx").status_code == 404
    assert chief.get(f"/requests/{rid}/acknowledge").status_code in (404, 405)
    assert state(rid) == before

    # 村 staff: a department of another town
    town2 = make_region("第二镇")
    staff = browser(world.village_staff)
    clock.now = NOW + 28 * HOUR + MINUTE  # at 村 now
    before = state(rid)
    r = staff.act(rid, "route", department_id=str(department_id(town2.id)))
    assert r.status_code == 422 and "请选择承办部门" in text(r)
    r = staff.act(rid, "route", department_id="abc")
    assert r.status_code == 422 and "请选择承办部门" in text(r)
    assert state(rid) == before

    # a closed request
    assert staff.act(rid, "close", answer=ANSWER).status_code == 303
    before = state(rid)
    for action, data in (("acknowledge", {}), ("escalate", {"reason": "再往上报一次"}),
                         ("close", {"answer": ANSWER}), ("offer", {})):
        r = staff.act(rid, action, **data)
        assert r.status_code == 422, action
        assert "这条诉求已经办结" in text(r), action
    assert state(rid) == before


def test_stale_page_is_refused_not_a_500(world, clock, browser, new_request):
    """Two handlers answer from the same page: the second is told, not shown an error page."""
    rid = new_request(world.hh1)
    chief, staff = browser(world.neighbor_chief), browser(world.village_staff)
    assert chief.act(rid, "acknowledge").status_code == 303
    r = staff.act(rid, "acknowledge")
    assert r.status_code == 422 and "已经有人响应了" in text(r)


# -- queries per page ---------------------------------------------------------------------------
def test_queries_per_page(world, clock, browser, new_request, count_queries):
    ids = [new_request(h, contact_phone="13912345678") for h in (world.hh1, world.hh1x)
           for _ in range(3)]
    chief, volunteer = browser(world.neighbor_chief), browser(world.volunteer)
    staff = browser(world.village_staff)
    chief.act(ids[0], "offer")
    chief.act(ids[1], "acknowledge")
    volunteer.claim(ids[0])
    volunteer.act(ids[0], "done", note="已经办好了这件事。")
    dispute = new_request(world.hh1, category="邻里纠纷")
    chief.act(dispute, "mediation", parties="张家和李家", outcome="not_agreed")
    clock.now = NOW + 28 * HOUR + MINUTE
    pages = [("queue", chief, "/requests/"), ("queue (staff)", staff, "/requests/"),
             ("detail (helper done)", chief, f"/requests/{ids[0]}"),
             ("detail (dispute)", chief, f"/requests/{dispute}"),
             ("detail (staff, at 村)", staff, f"/requests/{ids[2]}"),
             ("detail (volunteer)", volunteer, f"/requests/{ids[0]}"),
             ("board", volunteer, "/requests/board"), ("board (chief)", chief, "/requests/board"),
             ("household", chief, f"/duties/households/{world.hh1.id}"),
             ("home", chief, "/duties/")]
    counts = {}
    for name, who, url in pages:
        with count_queries() as n:
            r = who.get(url)
        assert r.status_code == 200, name
        counts[name] = n.count
    assert all(v <= 8 for v in counts.values()), counts
