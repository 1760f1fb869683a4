"""通知公告: publishing to a scope, recipients fixed at publication, read receipts per person,
the unread badge, withdrawal."""

import re

from sqlalchemy import func, select

from portal.audit import ACTION_LABELS, AuditEntry, describe
from portal.blueprints.notices.models import Notice, NoticeRecipient
from portal.extensions import db
from tests.conftest import Browser
from tests.notices.factories import publish


def badge(html: str) -> int:
    """The unread count in the nav (0 when no badge)."""
    m = re.search(r'<b class="badge">(\d+)</b>', html)
    return int(m.group(1)) if m else 0


def recipients(notice_id: int) -> set[int]:
    return set(db.session.scalars(select(NoticeRecipient.user_id).where(
        NoticeRecipient.notice_id == notice_id)))


def test_publish_through_the_form_reaches_the_village_subtree_only(world, login_as):
    b = Browser(login_as(world.village_staff))
    page = b.get("/notices/new")
    assert page.status_code == 200
    # the picker offers the village and the two levels below it, nothing above or beside it
    html = page.data.decode()
    assert f'value="{world.village1.id}"' in html and f'value="{world.group1.id}"' in html
    assert f'value="{world.village2.id}"' not in html and f'value="{world.town.id}"' not in html
    assert f'value="{world.hood1.id}"' not in html  # not single 邻
    r = b.post("/notices/new", region_id=str(world.village1.id), title="冬季防火安全检查",
               body="第一行\n<script>alert(1)</script>")
    assert r.status_code == 303
    notice = db.session.scalar(select(Notice))
    assert notice.recipient_count == 4
    # every active post inside 村1 but the publisher: 片长, 组长, 邻长, 志愿者; nobody of 村2,
    # nor the town cadre (above the village), nor the admin
    assert recipients(notice.id) == {world.area_chief.id, world.group_chief.id,
                                     world.neighbor_chief.id, world.volunteer.id}
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "notice.publish"))
    label, items = describe(entry)
    assert label == "发布通知" and ("收件人数", 4) in items
    # the body is shown escaped with its line breaks kept
    page = login_as(world.neighbor_chief).get(f"/notices/{notice.id}").data.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert '<div class="pre">第一行\n' in page


def test_read_receipts_per_person_and_the_badge(world, login_as):
    notice = publish(world.village_staff, world.village1)
    a = login_as(world.neighbor_chief)
    b = login_as(world.group_chief)
    assert badge(a.get("/duties/").data.decode()) == 1
    assert badge(b.get("/duties/dashboard").data.decode()) == 1
    listing = a.get("/notices/").data.decode()
    assert "冬季防火安全检查" in listing and "未读" in listing

    # A opens it: read once, the badge drops on that very page
    page = a.get(f"/notices/{notice.id}")
    assert page.status_code == 200 and badge(page.data.decode()) == 0
    first = db.session.scalar(select(NoticeRecipient.read_at).where(
        NoticeRecipient.notice_id == notice.id, NoticeRecipient.user_id == world.neighbor_chief.id))
    assert first is not None
    a.get(f"/notices/{notice.id}")
    db.session.expire_all()
    assert db.session.scalar(select(NoticeRecipient.read_at).where(
        NoticeRecipient.notice_id == notice.id,
        NoticeRecipient.user_id == world.neighbor_chief.id)) == first  # first time only
    assert badge(a.get("/duties/").data.decode()) == 0
    assert badge(b.get("/duties/dashboard").data.decode()) == 1  # B has not read it

    # the publisher sees exactly that
    staff = login_as(world.village_staff)
    page = staff.get(f"/notices/{notice.id}/receipts").data.decode()
    assert "已读 <b>1</b> 人，未读 <b>3</b> 人，共 4 人" in page
    rows = dict(re.findall(r"<li><span>(\S+) <small[^>]*>[^<]*</small></span>"
                           r"<span class=\"state (\w+)\">", page))
    assert rows == {"邻长": "ok", "组长": "due", "片长": "due", "志愿者": "due"}
    assert "邻长</small>" in page and "组长</small>" in page  # roles, no phones
    assert "13800000105" not in page and "1380****" not in page
    assert "片1" in page  # grouped by the node below the village
    sent = staff.get("/notices/sent").data.decode()
    assert "已读 1/4" in sent


def test_inbox_lists_unread_first_then_newest_and_pages(world, login_as):
    for i in range(22):
        publish(world.village_staff, world.village1, title=f"通知{i:02d}")
    c = login_as(world.neighbor_chief)
    oldest = db.session.scalar(select(Notice.id).where(Notice.title == "通知00"))
    c.get(f"/notices/{oldest + 21}")  # read the newest
    page1 = c.get("/notices/").data.decode()
    titles = re.findall(r"<b>(通知\d\d)</b>", page1)
    assert titles[:3] == ["通知20", "通知19", "通知18"] and len(titles) == 20
    assert "下一页" in page1
    page2 = c.get("/notices/?page=2").data.decode()
    assert re.findall(r"<b>(通知\d\d)</b>", page2) == ["通知00", "通知21"]  # read one last


def test_scope_village_one_does_not_reach_village_two(world, login_as):
    notice = publish(world.village_staff, world.village1)
    other = login_as(world.neighbor_chief2)
    assert "冬季防火安全检查" not in other.get("/notices/").data.decode()
    assert other.get(f"/notices/{notice.id}").status_code == 404
    assert other.get(f"/notices/{notice.id}/receipts").status_code == 404
    assert badge(other.get("/duties/").data.decode()) == 0


def test_area_chief_publishes_to_their_area_not_above(world, login_as):
    b = Browser(login_as(world.area_chief))
    before = db.session.scalar(select(func.count()).select_from(Notice))
    assert b.post("/notices/new", region_id=str(world.village1.id), title="越级通知",
                  body="不应该发出去。").status_code == 404
    assert b.post("/notices/new", region_id=str(world.town.id), title="越级通知",
                  body="不应该发出去。").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(Notice)) == before
    r = b.post("/notices/new", region_id=str(world.group1.id), title="组里的通知",
               body="周五开民情恳谈会。")
    assert r.status_code == 303
    assert recipients(db.session.scalar(select(Notice.id))) == {world.group_chief.id,
                                                                world.neighbor_chief.id}


def test_who_may_not_publish(world, login_as):
    for who in (world.neighbor_chief, world.group_chief, world.volunteer, world.nobody):
        b = Browser(login_as(who))
        assert b.get("/notices/new").status_code == 403, who.name
        assert b.post("/notices/new", region_id=str(world.hood1.id), title="通知",
                      body="不应该发出去。").status_code == 403
        assert b.get("/notices/sent").status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Notice)) == 0


def test_bad_input_is_refused_on_the_form(world, login_as):
    b = Browser(login_as(world.village_staff))
    r = b.post("/notices/new", region_id=str(world.village1.id), title="", body="短")
    assert r.status_code == 422 and "请填写标题" in r.data.decode()
    r = b.post("/notices/new", region_id=str(world.village1.id), title="标题" * 40, body="正文五个字")
    assert r.status_code == 422 and "最多 60 字" in r.data.decode()
    r = b.post("/notices/new", region_id="abc", title="标题", body="正文五个字")
    assert r.status_code == 422 and "请选择发给哪里" in r.data.decode()
    assert db.session.scalar(select(func.count()).select_from(Notice)) == 0
    assert db.session.scalar(select(func.count()).select_from(NoticeRecipient)) == 0


def test_a_region_without_anyone_else_is_refused(world, login_as, make_region):
    lonely = make_region("空片", world.village1)
    b = Browser(login_as(world.village_staff))
    r = b.post("/notices/new", region_id=str(lonely.id), title="没人收", body="这里没有人在岗。")
    assert r.status_code == 422 and "没有人能收到" in r.data.decode()
    assert db.session.scalar(select(func.count()).select_from(Notice)) == 0


def test_withdraw_with_confirmation(world, login_as):
    notice = publish(world.village_staff, world.village1)
    staff = Browser(login_as(world.village_staff))
    page = staff.get(f"/notices/{notice.id}/withdraw")
    assert page.status_code == 200 and "确认撤回" in page.data.decode()
    assert db.session.get(Notice, notice.id).withdrawn_at is None  # the GET changed nothing
    chief = login_as(world.neighbor_chief)
    assert badge(chief.get("/duties/").data.decode()) == 1
    r = staff.post(f"/notices/{notice.id}/withdraw", confirm="y")
    assert r.status_code == 303
    db.session.expire_all()
    assert db.session.get(Notice, notice.id).withdrawn_at is not None
    assert badge(chief.get("/duties/").data.decode()) == 0
    assert "冬季防火安全检查" not in chief.get("/notices/").data.decode()
    assert chief.get(f"/notices/{notice.id}").status_code == 404
    # the publisher still sees it, marked, with its receipts
    assert "已撤回" in staff.get(f"/notices/{notice.id}").data.decode()
    assert staff.get(f"/notices/{notice.id}/receipts").status_code == 200
    # a second withdrawal is refused
    r = staff.post(f"/notices/{notice.id}/withdraw", confirm="y")
    assert r.status_code == 422 and "已经撤回" in r.data.decode()
    entries = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "notice")))
    assert sorted(entries) == ["notice.publish", "notice.withdraw"]
    assert ACTION_LABELS["notice.withdraw"] == "撤回通知"


def test_town_wide_notice_is_one_insert(world, login_as, make_region, make_user, count_queries):
    """A town-wide notice to many people: the receipts are one INSERT … SELECT."""
    for k in range(60):
        make_user(f"邻长{k}", f"1370000{k:04d}", role="neighbor_chief", region=world.hood2b)
    b = Browser(login_as(world.town_staff))
    with count_queries() as n:
        r = b.post("/notices/new", region_id=str(world.town.id), title="全镇通知",
                   body="全镇的三长请注意。")
    assert r.status_code == 303
    inserts = [s for s in n.statements if s.lstrip().upper().startswith("INSERT INTO NOTICE_RECIPIENTS")]
    assert len(inserts) == 1
    assert n.count <= 8, n.statements
    assert db.session.scalar(select(Notice.recipient_count)) == 60 + 6  # 6 world posts below the town (not the publisher, not the admin)


def test_pages_within_eight_queries(world, login_as, count_queries):
    notice = publish(world.village_staff, world.village1)
    publish(world.area_chief, world.area1, title="片里的通知")
    for who, url in ((world.neighbor_chief, "/notices/"),
                     (world.neighbor_chief, f"/notices/{notice.id}"),
                     (world.village_staff, "/notices/sent"),
                     (world.village_staff, f"/notices/{notice.id}"),
                     (world.village_staff, f"/notices/{notice.id}/receipts"),
                     (world.village_staff, f"/notices/{notice.id}/withdraw"),
                     (world.village_staff, "/notices/new")):
        c = login_as(who)
        with count_queries() as n:
            r = c.get(url)
        assert r.status_code == 200, url
        assert n.count <= 8, (url, n.count, n.statements)


def test_the_badge_costs_no_query_of_its_own(world, login_as, count_queries):
    """The unread count comes with the user in the login's one query: a page's number of
    statements is the same with and without unread notices."""
    c = login_as(world.neighbor_chief)
    with count_queries() as before:
        html = c.get("/duties/checklists").data.decode()
    assert badge(html) == 0
    publish(world.village_staff, world.village1)
    publish(world.area_chief, world.area1, title="片里的通知")
    with count_queries() as after:
        html = c.get("/duties/checklists").data.decode()
    assert badge(html) == 2
    assert after.count == before.count
    assert "notice_recipients" in after.statements[0]  # in the user's query
