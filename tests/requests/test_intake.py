"""点单 intake: the household link's form (no account), double submits, bad tokens, bad input,
photos, the rate limits, a 邻长 recording a request for a household, and the link's QR code.

The resident's views run at the fixed instant NOW (see ``clock``)."""

import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.regions.models import Household
from portal.blueprints.requests.models import Request, RequestCategory, RequestEvent
from portal.extensions import db
from tests.conftest import csrf_from
from tests.requests.conftest import HOUR, NOW

INVALID = "链接无效或已更换，请向您的邻长索取新的二维码"




@pytest.fixture
def upload_dir(upload_folder):
    """The request-photo folder, emptied before and after the test."""
    return upload_folder("requests")


def category(town, name="安全隐患") -> int:
    return db.session.scalar(select(RequestCategory.id).where(
        RequestCategory.town_id == town.id, RequestCategory.name == name))


def open_form(client, url: str) -> dict:
    """GET the form; the fields a browser sends back unchanged (CSRF and one-time token)."""
    r = client.get(url)
    assert r.status_code == 200, r.data.decode()[:500]
    m = re.search(r'name="token" type="hidden" value="([0-9a-f-]{36})"', r.data.decode())
    assert m, "no form token on the page"
    return {"csrf_token": csrf_from(r), "token": m.group(1)}


def fill(world, base: dict, **changes) -> dict:
    data = {**base, "category_id": category(world.town), "description": "楼道的灯坏了一个星期了",
            "contact_name": "甲阿姨", "contact_phone": "13800138000", "contact_note": "晚上在家"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def requests_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Request))


def png(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def link(household) -> str:
    db.session.expire_all()
    return f"/r/{db.session.get(Household, household.id).intake_token}"


# -- the form ------------------------------------------------------------------------------------
def test_form_shows_only_the_family_name_and_the_neighborhood(world, client, clock,
                                                              new_request):
    other = new_request(world.hh1x, description="隔壁家的诉求内容")
    mine = new_request(world.hh1, description="我家的诉求内容")
    r = client.get(link(world.hh1))
    assert r.status_code == 200
    html = r.data.decode()
    assert "甲家" in html and "邻11" in html
    assert "甲1" not in html  # the full name is not shown to whoever holds the link
    assert "13912345678" not in html and "139****5678" not in html
    assert "测试路" not in html  # nor the address
    for name in ("安全隐患", "邻里纠纷", "物业管理", "环境卫生", "政策咨询", "生活求助", "其他"):
        assert f">{name}</label>" in html
    assert "4 小时内答复" in html
    # this household's requests, not the neighbours'
    assert mine.number in html and f"/r/{world.hh1.intake_token}/{mine.id}" in html
    assert other.number not in html and "隔壁家" not in html
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in r.headers["X-Robots-Tag"]
    # the staff navigation is not there for a visitor
    assert "退出" not in html


def test_inactive_categories_are_not_offered(world, client, clock):
    cat = db.session.get(RequestCategory, category(world.town, "其他"))
    cat.active = False
    db.session.commit()
    html = client.get(link(world.hh1)).data.decode()
    assert ">其他</label>" not in html and ">安全隐患</label>" in html


def test_submit_without_an_account(world, client, clock, upload_dir):
    url = link(world.hh1)
    data = fill(world, open_form(client, url))
    r = client.post(url, data=data)
    assert r.status_code == 303
    req = db.session.scalar(select(Request))
    assert r.headers["Location"] == f"{url}/{req.id}"
    assert (req.household_id, req.source, req.created_by_id) == (world.hh1.id, "resident", None)
    assert (req.status, req.level, req.description) == ("new", 0, "楼道的灯坏了一个星期了")
    assert (req.contact_name, req.contact_phone, req.contact_note) == (
        "甲阿姨", "13800138000", "晚上在家")
    assert req.form_token == data["token"] and req.photo is None
    assert req.due_0 == NOW + 4 * HOUR
    events = list(db.session.scalars(select(RequestEvent).where(
        RequestEvent.request_id == req.id)))
    assert [(e.kind, e.user_id, e.to_status) for e in events] == [("created", None, "new")]
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "request.create"))
    assert audit.user_id is None and audit.object_id == req.id
    assert "13800138000" not in audit.detail  # the phone only masked in the audit
    page = client.get(r.headers["Location"])
    html = page.data.decode()
    assert f"已提交，编号 {req.number}。邻长将在 4 小时内答复" in html
    assert not list(upload_dir.iterdir())


def test_the_promise_uses_the_towns_hours_and_the_entry_level(world, client, clock):
    from portal.blueprints.regions.models import Post
    from portal.blueprints.requests.models import RequestSettings

    settings = db.session.get(RequestSettings, world.town.id)
    settings.hours_neighborhood, settings.hours_group = 6, 30
    db.session.commit()
    url = link(world.hh1)
    assert "6 小时内答复" in client.get(url).data.decode()
    r = client.post(url, data=fill(world, open_form(client, url)))
    assert "邻长将在 6 小时内答复" in client.get(r.headers["Location"]).data.decode()
    # a 邻 without a 邻长: the 组 answers, and the message says so
    db.session.execute(Post.__table__.update().where(Post.region_id == world.hood1.id)
                       .values(ended_at=NOW))
    db.session.commit()
    r = client.post(url, data=fill(world, open_form(client, url)))
    assert "组长将在 30 小时内答复" in client.get(r.headers["Location"]).data.decode()


def test_double_submit_creates_one_request(world, client, clock):
    url = link(world.hh1)
    data = fill(world, open_form(client, url))
    first = client.post(url, data=data)
    second = client.post(url, data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert requests_count() == 1
    assert "已经提交过了" in client.get(second.headers["Location"]).data.decode()
    # the same form token sent through another household's link is refused
    other = link(world.hh1x)
    r = client.post(other, data={**data, "csrf_token": open_form(client, other)["csrf_token"]})
    assert r.status_code == 422 and "表单已失效" in r.data.decode()
    assert requests_count() == 1


@pytest.mark.parametrize("token", ["x" * 22, "x" * 40, "abc"])
def test_a_bad_token_gets_a_clear_404(world, client, clock, token):
    r = client.get(f"/r/{token}")
    assert r.status_code == 404
    assert INVALID in r.data.decode()
    assert client.get(f"/r/{token}/1").status_code == 404
    r = client.post(f"/r/{token}", data={"csrf_token": csrf_from(r)})
    assert r.status_code == 404 and INVALID in r.data.decode()


def test_missing_category_and_description(world, client, clock, upload_dir):
    url = link(world.hh1)
    data = fill(world, open_form(client, url), category_id=None, description="  ")
    r = client.post(url, data={**data, "photo": (io.BytesIO(png()), "a.png")})
    assert r.status_code == 422
    html = r.data.decode()
    assert "请选择诉求类别。" in html and "请写一下遇到的问题。" in html
    assert 'value="甲阿姨"' in html  # what was typed is kept
    assert requests_count() == 0 and not list(upload_dir.iterdir())
    # the same form, corrected, goes through (its token was not used up)
    r = client.post(url, data=fill(world, data))
    assert r.status_code == 303 and requests_count() == 1


@pytest.mark.parametrize("changes, message", [
    ({"contact_phone": "12345"}, "手机号应为 11 位数字"),
    ({"description": "灯坏"}, "至少 4 个字"),
    ({"description": "长" * 1001}, "最多 1000 字"),
    ({"category_id": "999999"}, "请选择诉求类别"),
    ({"token": "not-a-token"}, "表单已失效"),
])
def test_bad_input_is_refused_and_nothing_saved(world, client, clock, changes, message):
    url = link(world.hh1)
    r = client.post(url, data=fill(world, open_form(client, url), **changes))
    assert r.status_code == 422
    assert message in r.data.decode()
    assert requests_count() == 0


def test_a_category_of_another_town_is_refused(world, client, clock, make_region):
    other_town = make_region("别的镇")
    url = link(world.hh1)
    r = client.post(url, data=fill(world, open_form(client, url),
                                   category_id=category(other_town)))
    assert r.status_code == 422 and "请选择诉求类别" in r.data.decode()
    assert requests_count() == 0


def test_photo_is_stored_and_shown_only_through_its_link(world, client, clock, upload_dir):
    url = link(world.hh1)
    r = client.post(url, data={**fill(world, open_form(client, url)),
                               "photo": (io.BytesIO(png((3000, 2000))), "big.png")})
    assert r.status_code == 303
    req = db.session.scalar(select(Request))
    assert req.photo and (upload_dir / req.photo).exists()
    html = client.get(r.headers["Location"]).data.decode()
    photo_url = f"{url}/{req.id}/photo"
    assert f'src="{photo_url}"' in html
    with client.get(photo_url) as got:
        assert got.status_code == 200 and got.mimetype == "image/jpeg"
        assert "private" in got.headers["Cache-Control"]
        with Image.open(io.BytesIO(got.data)) as img:
            assert max(img.size) == 1280
    assert client.get(f"{link(world.hh1x)}/{req.id}/photo").status_code == 404


def test_a_file_that_is_not_an_image_is_refused(world, client, clock, upload_dir):
    url = link(world.hh1)
    r = client.post(url, data={**fill(world, open_form(client, url)),
                               "photo": (io.BytesIO(b"%PDF-1.4 not a photo"), "a.jpg")})
    assert r.status_code == 422
    assert "照片无法识别，请选择 JPG 或 PNG 图片。" in r.data.decode()
    assert requests_count() == 0 and not list(upload_dir.iterdir())


def test_an_oversized_photo_is_refused_with_a_clear_message(world, client, clock, upload_dir):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    url = link(world.hh1)
    # encoded in memory (the test client would spool it to a temporary file it never closes)
    boundary, body = encode_multipart({**fill(world, open_form(client, url)), "photo": FileStorage(
        io.BytesIO(b"\xff\xd8\xff" + b"0" * (9 * 1024 * 1024)), "big.jpg",
        content_type="image/jpeg")})
    r = client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 413
    html = r.data.decode()
    assert "照片太大，没有提交" in html and "8 MB" in html
    assert f'href="{url}"' in html  # the way back to the form, not to the staff login
    assert "回到首页" not in html
    assert requests_count() == 0 and not list(upload_dir.iterdir())


def test_an_oversized_photo_on_the_staff_form_gets_the_usual_page(world, login_as, upload_dir):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    chief = login_as(world.neighbor_chief)
    url = f"/households/{world.hh1.id}/requests/new"
    boundary, body = encode_multipart({**fill(world, open_form(chief, url)), "photo": FileStorage(
        io.BytesIO(b"\xff\xd8\xff" + b"0" * (9 * 1024 * 1024)), "big.jpg",
        content_type="image/jpeg")})
    r = chief.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 413
    html = r.data.decode()
    assert "文件太大" in html and "8 MB" in html and "回到首页" in html
    assert requests_count() == 0 and not list(upload_dir.iterdir())


# -- rate limits ---------------------------------------------------------------------------------
def test_the_form_is_rate_limited_per_address(world, app, client, clock):
    assert app.config["PUBLIC_REQUEST_RATE_LIMIT"] == "5 per minute;30 per day"
    url = link(world.hh1)
    base = open_form(client, url)
    for i in range(5):
        r = client.post(url, data=fill(world, base, token=f"00000000-0000-0000-0000-{i:012d}"))
        assert r.status_code == 303
    r = client.post(url, data=fill(world, base, token="00000000-0000-0000-0000-000000000099"))
    assert r.status_code == 429
    html = r.data.decode()
    assert "提交或打开得太频繁了" in html and "请 1 分钟后再试" in html
    assert requests_count() == 5
    # the page still opens; another address may still submit
    assert client.get(url).status_code == 200
    other = app.test_client()
    base = open_form(other, url)
    r = other.post(url, environ_base={"REMOTE_ADDR": "10.1.2.3"},
                   data=fill(world, base))
    assert r.status_code == 303


def test_opening_links_is_rate_limited_per_address(world, app, client, clock):
    assert app.config["PUBLIC_LINK_RATE_LIMIT"] == "30 per minute"
    url = link(world.hh1)
    for i in range(30):
        assert client.get(url if i % 2 else f"/r/guess{i:017d}").status_code in (200, 404)
    r = client.get(url)
    assert r.status_code == 429
    assert "请 1 分钟后再试" in r.data.decode()
    # the staff pages are not counted against it
    assert client.get("/login").status_code == 200


# -- a 邻长 records a request for a household -----------------------------------------------------
def test_chief_records_for_own_household(world, login_as, clock, upload_dir):
    chief = login_as(world.neighbor_chief)
    url = f"/households/{world.hh1.id}/requests/new"
    r = chief.get(url)
    assert r.status_code == 200
    html = r.data.decode()
    assert "为甲1家代录诉求" in html and ">邻里纠纷</label>" in html
    data = fill(world, open_form(chief, url), contact_phone="")
    r = chief.post(url, data={**data, "photo": (io.BytesIO(png()), "p.png")})
    assert r.status_code == 303
    req = db.session.scalar(select(Request))
    assert r.headers["Location"] == f"/requests/{req.id}"
    assert (req.source, req.created_by_id, req.household_id) == (
        "chief", world.neighbor_chief.id, world.hh1.id)
    assert req.contact_phone is None and (upload_dir / req.photo).exists()
    ev = db.session.scalar(select(RequestEvent).where(RequestEvent.request_id == req.id))
    assert (ev.kind, ev.user_id) == ("created", world.neighbor_chief.id)
    assert db.session.scalar(select(AuditEntry.user_id).where(
        AuditEntry.action == "request.create")) == world.neighbor_chief.id
    # a second click on the same form saves nothing more
    assert chief.post(url, data=data).status_code == 303
    assert requests_count() == 1


def test_chief_record_bad_input(world, login_as, clock):
    chief = login_as(world.neighbor_chief)
    url = f"/households/{world.hh1.id}/requests/new"
    r = chief.post(url, data=fill(world, open_form(chief, url), category_id=None))
    assert r.status_code == 422 and "请选择诉求类别。" in r.data.decode()
    assert requests_count() == 0


@pytest.mark.parametrize("who, household, status", [
    ("neighbor_chief", "hh1b", 404),  # another 邻 of the same group
    ("neighbor_chief", "hh2", 404),  # another village
    ("neighbor_chief2", "hh1", 404),
    ("volunteer", "hh1", 404),
    ("nobody", "hh1", 404),
    ("group_chief", "hh1b", 200),
    ("village_staff", "hh1", 200),
    ("village_staff", "hh2", 404),
])
def test_who_may_record_for_a_household(world, login_as, clock, who, household, status):
    c = login_as(getattr(world, who))
    url = f"/households/{getattr(world, household).id}/requests/new"
    assert c.get(url).status_code == status
    if status == 404:
        csrf = csrf_from(c.get("/account/password"))
        r = c.post(url, data=fill(world, {"csrf_token": csrf,
                                          "token": "00000000-0000-0000-0000-000000000001"}))
        assert r.status_code == 404
        assert requests_count() == 0


def test_record_needs_login(world, client):
    r = client.get(f"/households/{world.hh1.id}/requests/new")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


# -- the link and its QR code --------------------------------------------------------------------
def test_qr_page_shows_the_link_as_svg_without_phone(world, login_as):
    chief = login_as(world.neighbor_chief)
    r = chief.get(f"/households/{world.hh1.id}/qr")
    assert r.status_code == 200
    html = r.data.decode()
    assert "<svg" in html and "扫码向邻长反映问题" in html
    assert f"http://localhost/r/{world.hh1.intake_token}" in html
    assert "甲1家" in html and "邻11" in html
    assert "13912345678" not in html and "139****5678" not in html
    assert "更换链接" not in html  # the 邻长 may not renew it
    assert chief.get(f"/households/{world.hh1b.id}/qr").status_code == 404
    staff = login_as(world.village_staff)
    assert "更换链接" in staff.get(f"/households/{world.hh1.id}/qr").data.decode()


def test_qr_makes_a_link_for_a_household_without_one(world, login_as):
    h = db.session.get(Household, world.hh1.id)
    h.intake_token = None
    db.session.commit()
    chief = login_as(world.neighbor_chief)
    r = chief.get(f"/households/{world.hh1.id}/qr")
    assert r.status_code == 200
    db.session.expire_all()
    token = db.session.get(Household, world.hh1.id).intake_token
    assert token and len(token) >= 22 and f"/r/{token}" in r.data.decode()
    # stable: a second visit shows the same link
    chief.get(f"/households/{world.hh1.id}/qr")
    db.session.expire_all()
    assert db.session.get(Household, world.hh1.id).intake_token == token


def test_renewing_the_link_invalidates_the_old_one(world, login_as, client, clock,
                                                   new_request):
    req = new_request(world.hh1)
    old = link(world.hh1)
    assert client.get(f"{old}/{req.id}").status_code == 200
    chief = login_as(world.neighbor_chief)
    url = f"/households/{world.hh1.id}/qr/renew"
    assert chief.get(url).status_code == 403
    assert chief.post(url, data={"csrf_token": csrf_from(chief.get("/account/password"))}
                      ).status_code == 403
    assert link(world.hh1) == old
    staff = login_as(world.village_staff)
    page = staff.get(url)
    assert page.status_code == 200 and "旧链接和已经贴出、发出的旧二维码都会失效" in page.data.decode()
    assert link(world.hh1) == old  # the confirmation page changes nothing
    renewed = staff.post(url, data={"csrf_token": csrf_from(page)})
    assert renewed.status_code == 303
    assert renewed.headers["Location"] == f"/households/{world.hh1.id}/qr"
    new = link(world.hh1)
    assert new != old
    r = client.get(old)
    assert r.status_code == 404 and INVALID in r.data.decode()
    assert client.get(f"{old}/{req.id}").status_code == 404
    assert client.get(new).status_code == 200 and client.get(f"{new}/{req.id}").status_code == 200
    audit = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "household.renew_link"))
    assert audit.user_id == world.village_staff.id and audit.object_id == world.hh1.id
    assert old[3:] not in audit.detail and new[3:] not in audit.detail
    qr_page = staff.get(renewed.headers["Location"]).data.decode()
    assert new[3:] in qr_page and "旧二维码已失效" in qr_page
    # staff of another village cannot see it at all
    other = login_as(world.neighbor_chief2)
    assert other.get(url).status_code == 404


# -- budgets -------------------------------------------------------------------------------------
def test_form_page_query_count(world, client, clock, new_request, count_queries):
    for i in range(5):
        new_request(world.hh1, description=f"第{i}条诉求内容", at=NOW - i * HOUR)
    url = link(world.hh1)
    with count_queries() as n:
        r = client.get(url)
    assert r.status_code == 200 and r.data.decode().count("待响应") == 5
    assert n.count <= 8, n.statements


def test_qr_page_query_count(world, login_as, count_queries):
    staff = login_as(world.village_staff)
    with count_queries() as n:
        r = staff.get(f"/households/{world.hh1.id}/qr")
    assert r.status_code == 200
    assert n.count <= 8, n.statements
