"""The 邻长's duty log through the client: home, the htmx and no-JS flows, double submits,
CSRF, bad input, photos, history, who may log, 三张清单 and the contact-rules editor.

The duties views run at the frozen instant NOW (Wed 2026-01-21 12:00 Asia/Shanghai).
"""

import io
import re
from datetime import datetime

import pytest
from PIL import ExifTags, Image
from sqlalchemy import insert, select

from portal.blueprints.duties import services as svc
from portal.blueprints.duties.models import ChecklistItem, ContactRule, DutyLog
from portal.clock import to_local
from portal.extensions import db

NOW = datetime(2026, 1, 21, 4, 0)
SPECIAL = datetime(2025, 1, 1)
HTMX_PARTIAL_BUDGET = 4 * 1024


def local(dt: datetime) -> str:
    """The datetime-local value a browser in Shanghai sends for a stored UTC instant."""
    return to_local(dt).strftime("%Y-%m-%dT%H:%M")


def hx(household) -> dict:
    return {"HX-Request": "true", "HX-Target": f"hh-{household.id}"}


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="hh-(\d+)"', html)]


def row_html(html: str, household) -> str:
    m = re.search(rf'<li id="hh-{household.id}".*?</li>', html, re.S)
    assert m, f"no row for household {household.id}"
    return m.group(0)


def duty_item(town, title="民情联络员") -> ChecklistItem:
    return db.session.scalar(select(ChecklistItem).where(
        ChecklistItem.town_id == town.id, ChecklistItem.kind == "duty",
        ChecklistItem.title == title))


def loaded(household):
    """The household fresh from the database with its 邻 loaded, as the views load it."""
    from sqlalchemy.orm import joinedload

    db.session.expire_all()
    return db.session.scalar(select(type(household)).options(
        joinedload(type(household).neighborhood)).where(type(household).id == household.id))


def columns(household):
    db.session.expire_all()
    h = db.session.get(type(household), household.id)
    return h.last_visit_at, h.last_contact_at, h.last_contact_method


@pytest.fixture
def chief(world, login_as, frozen_now, upload_dir):
    """A logged-in client of the 邻长 of hood1 (households hh1 and hh1x)."""
    return login_as(world.neighbor_chief)


# -- the 邻长's home -----------------------------------------------------------------------------
def test_home_lists_own_households_most_overdue_first(world, chief, make_household,
                                                      set_contacts):
    hood = world.hood1
    set_contacts(world.hh1, special=SPECIAL, visit=datetime(2026, 1, 19, 2))  # ok
    set_contacts(world.hh1x, visit=datetime(2026, 1, 2))  # ok, this quarter
    never = set_contacts(make_household(hood, "从未户"), created=datetime(2024, 1, 1))
    old_visit = set_contacts(make_household(hood, "去年户"), created=datetime(2024, 1, 1),
                             visit=datetime(2025, 6, 10))
    called = set_contacts(make_household(hood, "电话户", tags=("留守儿童",)), special=SPECIAL,
                          visit=datetime(2025, 12, 20), contact=datetime(2026, 1, 13, 2))
    q4_visit = set_contacts(make_household(hood, "四季户"), visit=datetime(2025, 11, 1))
    new = set_contacts(make_household(hood, "新户"), created=datetime(2026, 1, 10))
    visited = set_contacts(make_household(hood, "走访户", tags=("低保户",)), special=SPECIAL,
                           visit=datetime(2026, 1, 20, 2))

    r = chief.get("/duties/")
    assert r.status_code == 200
    html = r.data.decode()
    assert row_ids(html) == [h.id for h in (
        never, old_visit,  # overdue, longest waiting first
        called, q4_visit, new,  # due: soonest deadline first, then longest waiting
        world.hh1, visited, world.hh1x,  # ok
    )]
    for h in (world.hh1b, world.hh2, world.hh2x, world.hh2b):
        assert f'id="hh-{h.id}"' not in html
    assert re.search(r'<b class="bad-cell">2</b>逾期', html)
    assert re.search(r"<b>3</b>待联系", html) and re.search(r"<b>3</b>已联系", html)
    assert 'class="hh overdue"' in row_html(html, never) and "从未联系" in row_html(html, never)
    # days left counted in Shanghai calendar days, today included
    assert "11天内" in row_html(html, called)  # by 31 Jan (the monthly-visit rule)
    assert "70天内" in row_html(html, new)  # by 31 Mar
    assert "逾期" in row_html(html, old_visit)
    assert "已联系" in row_html(html, visited)
    assert "上次 1月19日 · 上门" in row_html(html, world.hh1)
    assert "上次 1月13日 · 电话" in row_html(html, called)


def test_due_on_the_last_day_reads_today(world, login_as, monkeypatch, set_contacts):
    from portal.blueprints.duties import views

    late = datetime(2026, 3, 31, 15, 0)  # 31 Mar 23:00 Shanghai
    monkeypatch.setattr(views, "utcnow", lambda: late)
    set_contacts(world.hh1x, visit=datetime(2025, 12, 1))
    html = login_as(world.neighbor_chief).get("/duties/").data.decode()
    row = row_html(html, world.hh1x)
    assert "待联系" in row and "今天内" in row and "0天" not in row


# -- htmx flow ----------------------------------------------------------------------------------
def test_htmx_flow_swaps_form_then_row(world, chief, log_form, post_log, duty_logs):
    h = world.hh1  # special: a phone call this week is enough
    r, form = log_form(chief, h, hx(h))
    body = r.data.decode()
    assert body.startswith(f'<li id="hh-{h.id}" class="logform">')
    assert "<html" not in body and "<body" not in body
    assert len(r.data) <= HTMX_PARTIAL_BUDGET
    assert r.headers["Cache-Control"] == "no-store"
    # error pages land in #msg at the top of the page: the form scrolls there when one comes
    assert "hx-on::after-request=\"event.detail.failed&amp;&amp;document.getElementById('msg')" \
        ".scrollIntoView()\"" in body
    # defaults: 民情联络员, a visit, now in Shanghai time, a fresh one-time token
    assert form.value("duty_item_id") == str(duty_item(world.town).id)
    assert form.value("method") == "visit"
    assert form.value("occurred_at") == "2026-01-21T12:00"
    assert re.fullmatch(r"[0-9a-f-]{36}", form.value("token"))
    assert len(form.options("duty_item_id")) == 7
    assert form.options("method") == ["visit", "phone", "wechat", "other"]

    r = post_log(chief, h, headers=hx(h), form=form, method="phone", note="电话问候，身体好")
    assert r.status_code == 303
    assert r.headers["Location"] == f"/duties/households/{h.id}/row"

    r = chief.get(r.headers["Location"], headers=hx(h))
    assert r.status_code == 200
    body = r.data.decode()
    assert body.startswith(f'<li id="hh-{h.id}"><a class="hh ok"')
    assert "已联系" in body and "今天 12:00 · 电话" in body
    assert len(r.data) <= HTMX_PARTIAL_BUDGET
    # the confirmation reaches the page through an out-of-band swap of the message area …
    assert re.search(r'<div id="msg"[^>]*hx-swap-oob="true"[^>]*>\s*<p class="flash">'
                     r"已记录：甲1家 · 电话", body)
    # … and is not shown again on the next full page
    assert "已记录" not in chief.get("/duties/").data.decode()

    [entry] = duty_logs()
    assert (entry.household_id, entry.neighborhood_id, entry.user_id) == (
        h.id, world.hood1.id, world.neighbor_chief.id)
    assert (entry.method, entry.occurred_at, entry.note) == ("phone", NOW, "电话问候，身体好")
    assert entry.duty_item_id == duty_item(world.town).id
    assert entry.created_at == NOW
    assert columns(h) == (None, NOW, "phone")  # a call is a contact, not a visit


def test_htmx_cancel_returns_the_row(world, chief):
    h = world.hh1
    r = chief.get(f"/duties/households/{h.id}/row", headers=hx(h))
    assert r.status_code == 200
    assert r.data.decode().startswith(f'<li id="hh-{h.id}"><a class="hh ')
    assert "hx-swap-oob" not in r.data.decode()
    # without htmx (or aimed elsewhere) the row URL leads to the household page
    r = chief.get(f"/duties/households/{h.id}/row")
    assert r.status_code == 302 and r.headers["Location"] == f"/duties/households/{h.id}"
    r = chief.get(f"/duties/households/{h.id}/row", headers={"HX-Request": "true",
                                                            "HX-Target": "main"})
    assert r.status_code == 302


def test_form_targeting_another_element_gets_the_full_page(world, chief):
    r = chief.get(f"/duties/households/{world.hh1.id}/log",
                  headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in r.data.decode()


# -- no-JS flow ---------------------------------------------------------------------------------
def test_no_js_flow_full_page_then_redirect_with_flash(world, chief, log_form, post_log,
                                                       duty_logs):
    h = world.hh1
    r, form = log_form(chief, h)
    page = r.data.decode()
    assert "<html" in page
    assert re.search(rf'<form method="post" action="/duties/households/{h.id}/log" '
                     r'enctype="multipart/form-data"', page)
    r = post_log(chief, h, form=form, note="上门看望")
    assert r.status_code == 303
    assert r.headers["Location"] == f"/duties/#hh-{h.id}"
    page = chief.get("/duties/").data.decode()
    assert '<p class="flash">已记录：甲1家 · 上门</p>' in page
    assert 'class="hh ok"' in row_html(page, h)
    assert columns(h) == (NOW, NOW, "visit")
    assert len(duty_logs(h)) == 1


def test_back_dated_log_in_shanghai_time(world, chief, post_log, duty_logs):
    # 2026-01-01 00:30 Shanghai is 2025-12-31 16:30 UTC
    r = post_log(chief, world.hh1x, occurred_at="2026-01-01T00:30")
    assert r.status_code == 303
    assert duty_logs()[0].occurred_at == datetime(2025, 12, 31, 16, 30)
    # a later log keeps the latest contact; an earlier back-dated one does not move it back
    post_log(chief, world.hh1x, occurred_at="2026-01-20T09:00", method="wechat")
    post_log(chief, world.hh1x, occurred_at="2026-01-10T09:00", method="visit")
    assert columns(world.hh1x) == (datetime(2026, 1, 10, 1), datetime(2026, 1, 20, 1), "wechat")


def test_time_typed_with_a_space_or_seconds_is_accepted(world, chief, post_log, duty_logs):
    """Browsers without a date-time picker show a text box; the hint says 2026-01-21 09:30."""
    assert post_log(chief, world.hh1x, occurred_at="2026-01-21 09:30").status_code == 303
    assert post_log(chief, world.hh1x, occurred_at="2026-01-21T09:45:00").status_code == 303
    assert [e.occurred_at for e in duty_logs()] == [datetime(2026, 1, 21, 1, 30),
                                                    datetime(2026, 1, 21, 1, 45)]


def test_note_of_500_characters_with_line_breaks_is_accepted(world, chief, post_log,
                                                             duty_logs):
    """A textarea with maxlength=500 counts a line break as one character but the browser
    sends CR LF; 500 typed characters must be accepted."""
    note = "\r\n".join(["字" * 49] * 10)  # 490 characters + 9 line breaks typed = 499
    note += "\r\n"  # 500 as typed, 510 as sent
    assert post_log(chief, world.hh1x, note=note).status_code == 303
    assert duty_logs()[0].note == note.replace("\r\n", "\n").strip()


# -- double submit ------------------------------------------------------------------------------
def test_same_form_posted_twice_logs_once(world, chief, log_form, post_log, duty_logs):
    h = world.hh1
    _, form = log_form(chief, h)
    first = post_log(chief, h, form=form)
    second = post_log(chief, h, form=form)
    assert first.status_code == second.status_code == 303
    assert len(duty_logs()) == 1
    page = chief.get("/duties/").data.decode()
    assert "已经记录过了，没有重复保存" in page  # the second tap is told, not ignored silently


def test_same_token_from_two_clients_logs_once(world, chief, login_as, log_form, post_log,
                                               duty_logs):
    h = world.hh1
    _, form = log_form(chief, h)
    token = form.value("token")
    other_tab = login_as(world.neighbor_chief)
    group_chief = login_as(world.group_chief)
    assert post_log(chief, h, form=form).status_code == 303
    assert post_log(other_tab, h, token=token, headers=hx(h)).status_code == 303
    assert post_log(group_chief, h, token=token, method="phone").status_code == 303
    [entry] = duty_logs()
    assert (entry.user_id, entry.method) == (world.neighbor_chief.id, "visit")


def test_token_of_another_households_form_is_refused(world, chief, log_form, post_log,
                                                     duty_logs):
    _, form = log_form(chief, world.hh1)
    assert post_log(chief, world.hh1, form=form).status_code == 303
    r = post_log(chief, world.hh1x, token=form.value("token"))
    assert r.status_code == 422 and "表单已失效" in r.data.decode()
    assert len(duty_logs()) == 1 and columns(world.hh1x) == (None, None, None)


def test_concurrent_double_tap_logs_once(world, frozen_now, upload_dir):
    """Two requests with the same token race past the look-up; the unique index decides."""
    from sqlalchemy import event

    h = world.hh1
    item = duty_item(world.town)
    token = "0f0e0d0c-0b0a-4908-8706-050403020100"

    fired = []

    def other_request_commits_first(session, flush_context, instances):
        if fired:
            return
        fired.append(True)
        with db.engine.begin() as conn:
            conn.execute(insert(DutyLog).values(
                household_id=h.id, neighborhood_id=h.neighborhood_id,
                user_id=world.neighbor_chief.id, duty_item_id=item.id, method="phone",
                occurred_at=NOW, note="先到", form_token=token, created_at=NOW))

    household = loaded(h)
    event.listen(db.session, "before_flush", other_request_commits_first)
    try:
        entry, created = svc.log_duty(world.neighbor_chief, household, duty_item_id=item.id,
                                      method="visit", occurred_at=NOW, note="后到",
                                      photo=svc.process_photo(None), token=token, now=NOW)
    finally:
        event.remove(db.session, "before_flush", other_request_commits_first)
    assert fired
    assert created is False and entry.note == "先到"
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(DutyLog)) == 1
    assert not list(upload_dir.iterdir())


# -- CSRF ---------------------------------------------------------------------------------------
def test_post_without_csrf_token_is_refused(world, chief, post_log, duty_logs):
    h = world.hh1
    r = post_log(chief, h, csrf_token=None)
    assert r.status_code == 400
    assert "安全校验失败" in r.data.decode()
    r = post_log(chief, h, csrf_token="forged", headers=hx(h))
    assert r.status_code == 400
    assert "<html" not in r.data.decode() and "安全校验失败" in r.data.decode()
    assert duty_logs() == [] and columns(h) == (None, None, None)


def test_csrf_token_in_header_as_htmx_sends_it(world, chief, log_form, post_log, duty_logs):
    h = world.hh1
    r, form = log_form(chief, h, hx(h))
    page = chief.get("/duties/").data.decode()
    header_token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    r = post_log(chief, h, form=form, csrf_token=None,
                 headers={**hx(h), "X-CSRFToken": header_token})
    assert r.status_code == 303
    assert len(duty_logs()) == 1


# -- bad input ----------------------------------------------------------------------------------
BAD_INPUT = [
    ("empty duty item", {"duty_item_id": ""}, "请选择一项七员职责。"),
    ("no duty item", {"duty_item_id": None}, "请选择一项七员职责。"),
    ("duty item not a number", {"duty_item_id": "abc"}, "请选择一项七员职责。"),
    ("unknown duty item", {"duty_item_id": "999999"}, "请选择一项七员职责。"),
    ("unknown method", {"method": "fax"}, "请选择联系方式。"),
    ("no method", {"method": None}, "请选择联系方式。"),
    ("missing time", {"occurred_at": ""}, "请填写时间"),
    ("no time field", {"occurred_at": None}, "请填写时间"),
    ("garbled time", {"occurred_at": "明天上午"}, "时间格式不对"),
    ("impossible date", {"occurred_at": "2026-02-30T10:00"}, "时间格式不对"),
    ("time in the future", {"occurred_at": "2026-01-21T13:00"}, "时间不能晚于现在。"),
    ("more than 3 months back", {"occurred_at": "2025-10-01T12:00"}, "只能补记三个月内的履职。"),
    ("note of 501 characters", {"note": "记" * 501}, "记录最多 500 字。"),
    ("garbled token", {"token": "not-a-token"}, "表单已失效，请重新打开。"),
    ("no token", {"token": None}, "表单已失效，请重新打开。"),
    ("photo that is not an image", {"photo": (b"just some text", "x.jpg")},
     "照片无法识别，请选择 JPG 或 PNG 图片。"),
    ("truncated JPEG", {"photo": "truncated"}, "照片无法识别，请选择 JPG 或 PNG 图片。"),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize("overrides, message", [c[1:] for c in BAD_INPUT],
                         ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_with_a_clear_message(world, chief, log_form, post_log, duty_logs,
                                                   upload_dir, make_image, overrides, message,
                                                   htmx):
    h = world.hh1
    before = columns(h)
    overrides = dict(overrides)
    if overrides.get("photo") == "truncated":
        overrides["photo"] = (make_image((800, 600))[:600], "cut.jpg")
    if "photo" in overrides:
        data, name = overrides["photo"]
        overrides["photo"] = (io.BytesIO(data), name, "image/jpeg")
    _, form = log_form(chief, h)
    r = post_log(chief, h, form=form, headers=hx(h) if htmx else None, **overrides)
    assert r.status_code == 422
    body = r.data.decode()
    assert ("<html" in body) is not htmx
    fragment = body[body.index(f'<li id="hh-{h.id}" class="logform">'):]
    fragment = fragment[:fragment.index("</form>")]
    assert message in fragment  # on the form itself
    assert not re.search(r"Not a valid|Invalid|could not|This field", body)
    # the form keeps its one-time token and what was typed
    assert f'value="{form.value("token")}"' in fragment or "token" in overrides
    if overrides.get("note"):
        assert overrides["note"] in fragment
    assert duty_logs() == []
    assert columns(h) == before
    assert not list(upload_dir.iterdir())


def test_duty_item_of_another_town_is_refused(world, chief, make_region, post_log, duty_logs):
    other = make_region("外镇")
    r = post_log(chief, world.hh1, duty_item_id=str(duty_item(other).id))
    assert r.status_code == 422 and "请选择一项七员职责。" in r.data.decode()
    assert duty_logs() == []


def test_deactivated_duty_item_is_neither_offered_nor_accepted(world, chief, log_form, post_log,
                                                               duty_logs):
    _, form = log_form(chief, world.hh1)
    retired = duty_item(world.town, "廉情观察员")
    retired.active = False
    db.session.commit()
    r = post_log(chief, world.hh1, form=form, duty_item_id=str(retired.id))
    assert r.status_code == 422 and "请选择一项七员职责。" in r.data.decode()
    assert duty_logs() == []
    _, form = log_form(chief, world.hh1)
    assert str(retired.id) not in form.options("duty_item_id")


def test_direct_service_call_refuses_other_towns_item(world, make_region, frozen_now):
    from portal.errors import ServiceError

    other = make_region("外镇")
    with pytest.raises(ServiceError, match="七员"):
        svc.log_duty(world.neighbor_chief, loaded(world.hh1),
                     duty_item_id=duty_item(other).id, method="visit", occurred_at=NOW,
                     note="", photo=None, token="0f0e0d0c-0b0a-4908-8706-050403020101",
                     now=NOW)


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_twenty_megabyte_upload_is_refused(world, chief, log_form, post_log, duty_logs,
                                           upload_dir, htmx):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    h = world.hh1
    _, form = log_form(chief, h)
    fields = {name: form.value(name) for name in
              ("csrf_token", "token", "duty_item_id", "method", "occurred_at")}
    # encoded in memory (the test client would spool it to a temporary file it never closes)
    boundary, body = encode_multipart({**fields, "photo": FileStorage(
        io.BytesIO(b"\xff\xd8\xff" + b"0" * (20 * 1024 * 1024)), "big.jpg",
        content_type="image/jpeg")})
    assert len(body) > 20 * 1024 * 1024
    r = chief.post(f"/duties/households/{h.id}/log", data=body,
                   content_type=f"multipart/form-data; boundary={boundary}",
                   headers=hx(h) if htmx else None)
    assert r.status_code == 413
    body = r.data.decode()
    assert "文件太大" in body and "8 MB" in body
    # htmx gets only the message (its config swaps 4xx into #msg); a browser the full page
    assert ("<html" in body) is not htmx
    assert duty_logs() == [] and columns(h) == (None, None, None)
    assert not list(upload_dir.iterdir())


# -- photos -------------------------------------------------------------------------------------
def _exif_with_location(orientation=None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretPhoneMaker"
    exif[ExifTags.Base.Model] = "Model-X1"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (28.0, 11.0, 42.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (113.0, 12.0, 7.0)
    return exif


@pytest.mark.parametrize("orientation, expected", [(None, (1280, 853)), (6, (853, 1280))])
def test_photo_is_downscaled_and_stripped(world, chief, post_log, duty_logs, upload_dir,
                                          make_image, orientation, expected):
    original = make_image((3000, 2000), exif=_exif_with_location(orientation),
                          comment=b"GPS 28.19N 113.20E")
    with Image.open(io.BytesIO(original)) as check:  # the fixture really carries the data
        assert check.getexif()[ExifTags.Base.Make] == "SecretPhoneMaker"
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    r = post_log(chief, world.hh1, photo=(io.BytesIO(original), "IMG_0001.jpg", "image/jpeg"))
    assert r.status_code == 303
    [entry] = duty_logs()
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", entry.photo)
    assert [p.name for p in upload_dir.iterdir()] == [entry.photo]  # no temp file left
    stored = (upload_dir / entry.photo).read_bytes()
    assert len(stored) < len(original)
    with Image.open(io.BytesIO(stored)) as img:
        assert img.format == "JPEG"
        assert img.size == expected
        assert max(img.size) <= 1280
        assert not img.getexif()
        assert "exif" not in img.info and "comment" not in img.info and "xmp" not in img.info
    for secret in (b"SecretPhoneMaker", b"Model-X1", b"GPS 28.19N", b"Exif"):
        assert secret not in stored


def test_png_photo_is_stored_as_jpeg(world, chief, post_log, duty_logs, upload_dir, make_image):
    png = make_image((640, 480), fmt="PNG", mode="RGBA")
    assert post_log(chief, world.hh1, photo=(io.BytesIO(png), "a.png", "image/png")) \
        .status_code == 303
    [entry] = duty_logs()
    with Image.open(upload_dir / entry.photo) as img:
        assert (img.format, img.size, img.mode) == ("JPEG", (640, 480), "RGB")


def test_empty_file_field_means_no_photo(world, chief, post_log, duty_logs, upload_dir):
    r = post_log(chief, world.hh1, photo=(io.BytesIO(b""), "", "application/octet-stream"))
    assert r.status_code == 303
    assert duty_logs()[0].photo is None and not list(upload_dir.iterdir())


def _status(client, url):
    with client.get(url) as r:  # a served file stays open until the response is closed
        return r.status_code


@pytest.fixture
def photo_log(world, chief, post_log, duty_logs, make_image):
    """A duty log with a photo for hh1 (hood1), logged by its 邻长."""
    jpg = make_image((400, 300))
    assert post_log(chief, world.hh1, photo=(io.BytesIO(jpg), "a.jpg", "image/jpeg")) \
        .status_code == 303
    return duty_logs()[0]


def test_photo_is_served_to_the_households_chief(world, chief, photo_log, post_log, duty_logs):
    url = f"/duties/logs/{photo_log.id}/photo"
    with chief.get(url) as r:
        assert r.status_code == 200 and r.mimetype == "image/jpeg"
        assert r.data[:3] == b"\xff\xd8\xff"
        assert "private" in r.headers["Cache-Control"]
    post_log(chief, world.hh1x)  # no photo
    without = duty_logs()[-1]
    assert _status(chief, f"/duties/logs/{without.id}/photo") == 404
    assert _status(chief, "/duties/logs/999999/photo") == 404


@pytest.mark.parametrize("who, expected", [
    ("group_chief", 200), ("area_chief", 200), ("village_staff", 200), ("town_staff", 200),
    ("admin", 200), ("chief_of_hood1b", 404), ("neighbor_chief2", 404), ("volunteer", 404),
    ("nobody", 404),
])
def test_photo_is_served_only_to_who_sees_the_household(world, photo_log, login_as, make_user,
                                                        who, expected):
    if who == "chief_of_hood1b":  # same group, another 邻
        user = make_user("邻长一B", role="neighbor_chief", region=world.hood1b)
    else:
        user = getattr(world, who)
    assert _status(login_as(user), f"/duties/logs/{photo_log.id}/photo") == expected


# -- history ------------------------------------------------------------------------------------
def test_history_lists_the_logs_newest_first(world, chief, login_as, post_log, make_image):
    h = world.hh1
    post_log(chief, h, occurred_at="2026-01-05T10:00", note="第一次上门")
    post_log(chief, h, occurred_at="2026-01-20T18:30", method="wechat", note="微信问候",
             duty_item_id=str(duty_item(world.town, "政策宣传员").id),
             photo=(io.BytesIO(make_image((200, 100))), "p.jpg", "image/jpeg"))
    r = chief.get(f"/duties/households/{h.id}")
    assert r.status_code == 200
    html = r.data.decode()
    assert html.index("微信问候") < html.index("第一次上门")
    assert "2026-01-20 18:30</b> · 微信 · 政策宣传员" in html
    assert "2026-01-05 10:00</b> · 上门 · 民情联络员" in html
    assert html.count("查看照片") == 1 and "邻长" in html
    assert "已联系" in html
    # the 组长 sees the same history; a 邻长 of another 邻 does not
    assert "微信问候" in login_as(world.group_chief).get(f"/duties/households/{h.id}").data \
        .decode()
    assert login_as(world.neighbor_chief2).get(f"/duties/households/{h.id}").status_code == 404


# -- who may log ---------------------------------------------------------------------------------
def test_group_chief_may_log_in_his_group(world, login_as, frozen_now, upload_dir, post_log,
                                          duty_logs):
    h = world.hh1b  # 邻 hood1b has no 邻长 of its own in the fixture
    c = login_as(world.group_chief)
    r = post_log(c, h, method="phone")
    assert r.status_code == 303
    assert r.headers["Location"] == f"/duties/households/{h.id}"
    [entry] = duty_logs()
    assert (entry.user_id, entry.household_id, entry.neighborhood_id) == (
        world.group_chief.id, h.id, world.hood1b.id)


@pytest.mark.parametrize("who", ["neighbor_chief", "neighbor_chief2", "volunteer", "nobody"])
def test_outsiders_may_not_log(world, login_as, frozen_now, log_form, duty_logs, who):
    h = world.hh1b  # in hood1b: not the 邻 of either 邻长
    _, form = log_form(login_as(world.neighbor_chief), world.hh1)
    c = login_as(getattr(world, who))
    assert c.get(f"/duties/households/{h.id}/log").status_code == 404
    r = c.post(f"/duties/households/{h.id}/log", headers={"X-CSRFToken": _page_csrf(c)}, data={
        "token": form.value("token"), "duty_item_id": form.value("duty_item_id"),
        "method": "visit", "occurred_at": "2026-01-21T11:00"})
    assert r.status_code == 404
    assert duty_logs() == []


def _page_csrf(client) -> str:
    """The CSRF token of the client's session, from any page (error pages included)."""
    html = client.get("/duties/checklists").data.decode()
    return re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)


# -- 三张清单 -------------------------------------------------------------------------------------
ROLES = ["neighbor_chief", "group_chief", "area_chief", "village_staff", "town_staff",
         "volunteer", "admin"]


@pytest.mark.parametrize("who", ROLES)
def test_checklists_readable_by_every_role(world, login_as, who):
    r = login_as(getattr(world, who)).get("/duties/checklists")
    assert r.status_code == 200
    html = r.data.decode()
    for text in ("权责清单 · 七员", "议事清单 · 六议", "负面清单 · 六不得", "政策宣传员",
                 "矛盾调解员", "不得谋取私利", "人居环境整治", "常态化联系机制",
                 "每月上门走访至少 1 次", "每周上门或电话/微信联系至少 1 次",
                 "每季度上门走访至少 1 次"):
        assert text in html, text
    editor = who in ("town_staff", "admin")
    assert ("修改联系规则" in html) is editor
    assert ("/duties/checklists/new" in html) is editor


def test_checklists_of_another_town_are_not_shown(world, login_as, make_region):
    other = make_region("外镇")
    assert login_as(world.neighbor_chief).get(
        f"/duties/checklists?town={other.id}").status_code == 404


def _checklist_post(client, url, **data):
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, data={"csrf_token": re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.data.decode()).group(1), **data})


def test_town_staff_adds_edits_and_deactivates_items(world, login_as, frozen_now, log_form,
                                                     audit_actions):
    staff = login_as(world.town_staff)
    town = world.town
    r = _checklist_post(staff, f"/duties/checklists/new?town={town.id}&kind=duty",
                        kind="duty", title="环境监督员", description="督促门前三包。",
                        active="y")
    assert r.status_code == 303
    assert r.headers["Location"] == f"/duties/checklists?town={town.id}"
    item = duty_item(town, "环境监督员")
    assert (item.kind, item.description, item.active, item.sort) == ("duty", "督促门前三包。",
                                                                     True, 7)
    assert audit_actions("checklist.") == [("checklist.create",
                                            {"kind": "duty", "title": "环境监督员"})]
    _, form = log_form(login_as(world.neighbor_chief), world.hh1)
    assert str(item.id) in form.options("duty_item_id")

    r = _checklist_post(staff, f"/duties/checklists/{item.id}/edit", title="环境卫生监督员",
                        description="督促门前三包。", active="y")
    assert r.status_code == 303
    assert audit_actions("checklist.")[-1] == ("checklist.update",
                                               {"title": ["环境监督员", "环境卫生监督员"]})
    # deactivate (the box left unticked)
    r = _checklist_post(staff, f"/duties/checklists/{item.id}/edit", title="环境卫生监督员",
                        description="督促门前三包。")
    assert r.status_code == 303
    db.session.expire_all()
    assert db.session.get(ChecklistItem, item.id).active is False
    assert audit_actions("checklist.")[-1] == ("checklist.update", {"active": [True, False]})
    _, form = log_form(login_as(world.neighbor_chief), world.hh1)
    assert str(item.id) not in form.options("duty_item_id")
    assert "环境卫生监督员" not in login_as(world.neighbor_chief).get(
        "/duties/checklists").data.decode()
    assert "环境卫生监督员（已停用）" in re.sub(
        r"</b> <span class=\"muted\">", "", staff.get("/duties/checklists").data.decode())
    # saving without a change writes no audit row
    n = len(audit_actions())
    _checklist_post(staff, f"/duties/checklists/{item.id}/edit", title="环境卫生监督员",
                    description="督促门前三包。")
    assert len(audit_actions()) == n


def test_checklist_item_bad_input(world, login_as, audit_actions):
    staff = login_as(world.town_staff)
    item = duty_item(world.town, "政策宣传员")
    for title, message in (("", "请填写名称。"), ("长" * 41, "名称最多 40 字。")):
        r = _checklist_post(staff, f"/duties/checklists/{item.id}/edit", title=title,
                            description="", active="y")
        assert r.status_code == 422 and message in r.data.decode()
    r = _checklist_post(staff, f"/duties/checklists/{item.id}/edit", title="政策宣传员",
                        description="说" * 501, active="y")
    assert r.status_code == 422 and "说明最多 500 字。" in r.data.decode()
    r = _checklist_post(staff, f"/duties/checklists/new?town={world.town.id}", kind="secret",
                        title="x", active="y")
    assert r.status_code == 422 and "请选择清单" in r.data.decode()
    db.session.expire_all()
    assert db.session.get(ChecklistItem, item.id).title == "政策宣传员"
    assert audit_actions("checklist.") == []


def test_last_active_duty_item_cannot_be_deactivated(world, login_as, audit_actions):
    items = list(db.session.scalars(select(ChecklistItem).where(
        ChecklistItem.town_id == world.town.id, ChecklistItem.kind == "duty")))
    for item in items[1:]:
        item.active = False
    db.session.commit()
    last = items[0]
    staff = login_as(world.town_staff)
    r = _checklist_post(staff, f"/duties/checklists/{last.id}/edit", title=last.title,
                        description=last.description)
    assert r.status_code == 422
    assert "至少要保留一项启用的七员职责" in r.data.decode()
    db.session.expire_all()
    assert db.session.get(ChecklistItem, last.id).active is True
    assert audit_actions("checklist.") == []
    # the last 六议 item may go: only duty logs need an active item
    deliberation = db.session.scalar(select(ChecklistItem).where(
        ChecklistItem.town_id == world.town.id, ChecklistItem.kind == "deliberation"))
    r = _checklist_post(staff, f"/duties/checklists/{deliberation.id}/edit",
                        title=deliberation.title, description="")
    assert r.status_code == 303


@pytest.mark.parametrize("who", ["neighbor_chief", "group_chief", "village_staff", "volunteer"])
def test_only_town_staff_edit_checklists_and_rules(world, login_as, who, audit_actions):
    c = login_as(getattr(world, who))
    item = duty_item(world.town)
    token = _page_csrf(c)
    for url in (f"/duties/checklists/new?town={world.town.id}",
                f"/duties/checklists/{item.id}/edit", f"/duties/rules?town={world.town.id}"):
        assert c.get(url).status_code == 403, url
        r = c.post(url, headers={"X-CSRFToken": token},
                   data={"title": "改", "kind": "duty", "active": "y"})
        assert r.status_code == 403, url
    db.session.expire_all()
    assert db.session.get(ChecklistItem, item.id).title == "民情联络员"
    assert audit_actions("checklist.") == [] and audit_actions("contact_rule.") == []


def test_town_staff_of_another_town_cannot_edit(world, login_as, make_region, make_user):
    other = make_region("外镇")
    staff = make_user("外镇干部", role="town_staff", region=other)
    c = login_as(staff)
    assert c.get(f"/duties/checklists/{duty_item(world.town).id}/edit").status_code == 404
    assert c.get(f"/duties/rules?town={world.town.id}").status_code == 404
    assert c.get(f"/duties/checklists/{duty_item(other).id}/edit").status_code == 200


# -- contact rules editor -------------------------------------------------------------------------
def _rules_data(client, town, parse, change=None):
    """The rules page's form as the browser would post it, after ``change(rows)``."""
    page = client.get(f"/duties/rules?town={town.id}")
    assert page.status_code == 200
    form = parse(page.data.decode())
    n = len({k.split("-")[1] for k in form.names if k.startswith("rules-")})
    rows = [{f: form.value(f"rules-{i}-{f}") for f in ("id", "category", "period", "method",
                                                       "active", "delete")}
            for i in range(n)]
    if change:
        change(rows)
    data = {"csrf_token": form.value("csrf_token")}
    for i, row in enumerate(rows):
        for f, v in row.items():
            if v is not None and v is not False:
                data[f"rules-{i}-{f}"] = "y" if v is True else v
    return rows, data


def _rule(rows, category, method):
    return next(r for r in rows if r["id"] and r["category"] == category
                and r["method"] == method)


def test_rules_page_saves_edits_and_states_follow(world, login_as, frozen_now, set_contacts,
                                                  audit_actions, form_parser):
    # visited on Mon 5 Jan: fine under "monthly visit", overdue under "weekly contact" alone
    set_contacts(world.hh1, special=SPECIAL, visit=datetime(2026, 1, 5, 2))
    chief = login_as(world.neighbor_chief)
    assert 'class="hh ok"' in row_html(chief.get("/duties/").data.decode(), world.hh1)

    staff = login_as(world.town_staff)
    rows, data = _rules_data(staff, world.town, form_parser)
    assert len(rows) == 4 and rows[-1]["id"] == ""  # three rules and a blank row to add one
    monthly = _rule(rows, "special", "visit")
    assert (monthly["period"], monthly["active"]) == ("month", "y")

    def deactivate_monthly(rows):
        _rule(rows, "special", "visit")["active"] = None

    _, data = _rules_data(staff, world.town, form_parser, deactivate_monthly)
    r = staff.post(f"/duties/rules?town={world.town.id}", data=data)
    assert r.status_code == 303
    assert r.headers["Location"] == f"/duties/checklists?town={world.town.id}#rules"
    assert audit_actions("contact_rule.") == [("contact_rule.update", {"active": [True, False]})]
    assert "已按新规则计算" in staff.get("/duties/checklists").data.decode()
    html = chief.get("/duties/").data.decode()
    assert 'class="hh overdue"' in row_html(html, world.hh1)
    checklists = chief.get("/duties/checklists").data.decode()
    assert "每月上门走访" not in checklists and "每周上门或电话/微信联系至少 1 次" in checklists

    # switch it back on as "every quarter": the 5 Jan visit is within Q1 → ok again
    def quarterly(rows):
        rule = _rule(rows, "special", "visit")
        rule["active"], rule["period"] = "y", "quarter"

    _, data = _rules_data(staff, world.town, form_parser, quarterly)
    assert staff.post(f"/duties/rules?town={world.town.id}", data=data).status_code == 303
    assert audit_actions("contact_rule.")[-1] == (
        "contact_rule.update", {"active": [False, True], "period": ["month", "quarter"]})
    assert 'class="hh ok"' in row_html(chief.get("/duties/").data.decode(), world.hh1)


def test_rules_page_refuses_a_category_without_active_rule(world, login_as, audit_actions,
                                                           form_parser):
    staff = login_as(world.town_staff)

    def no_special(rows):
        for r in rows:
            if r["category"] == "special" and r["id"]:
                r["active"] = None

    _, data = _rules_data(staff, world.town, form_parser, no_special)
    r = staff.post(f"/duties/rules?town={world.town.id}", data=data)
    assert r.status_code == 422
    assert "“特殊人群户”至少要有一条启用的联系规则。" in r.data.decode()

    def delete_ordinary(rows):
        _rule(rows, "ordinary", "visit")["delete"] = "y"

    _, data = _rules_data(staff, world.town, form_parser, delete_ordinary)
    r = staff.post(f"/duties/rules?town={world.town.id}", data=data)
    assert r.status_code == 422
    assert "“其他联系户”至少要有一条启用的联系规则。" in r.data.decode()
    db.session.expire_all()
    assert all(rule.active for rule in db.session.scalars(select(ContactRule).where(
        ContactRule.town_id == world.town.id)))
    assert len(svc.town_rules(world.town.id)) == 3
    assert audit_actions("contact_rule.") == []


def test_rules_page_adds_and_deletes_rules(world, login_as, audit_actions, form_parser):
    staff = login_as(world.town_staff)

    def add_monthly_call_for_ordinary(rows):
        rows[-1].update(category="ordinary", period="month", method="any", active="y")

    _, data = _rules_data(staff, world.town, form_parser, add_monthly_call_for_ordinary)
    assert staff.post(f"/duties/rules?town={world.town.id}", data=data).status_code == 303
    assert [(r.category, r.method, r.period) for r in svc.town_rules(world.town.id)][-1] == (
        "ordinary", "any", "month")
    assert audit_actions("contact_rule.") == [("contact_rule.create", {
        "active": True, "category": "ordinary", "method": "any", "period": "month"})]

    def delete_quarterly(rows):
        rule = next(r for r in rows if r["id"] and r["period"] == "quarter")
        rule["delete"] = "y"

    _, data = _rules_data(staff, world.town, form_parser, delete_quarterly)
    assert staff.post(f"/duties/rules?town={world.town.id}", data=data).status_code == 303
    assert [(r.category, r.period) for r in svc.town_rules(world.town.id)
            if r.category == "ordinary"] == [("ordinary", "month")]
    assert audit_actions("contact_rule.")[-1] == ("contact_rule.delete",
                                                  {"rule": "每季度上门走访至少 1 次"})


def test_rules_of_another_town_cannot_be_posted(world, login_as, make_region, form_parser):
    other = make_region("外镇")
    foreign = svc.town_rules(other.id)[0]
    staff = login_as(world.town_staff)

    def smuggle(rows):
        rows[0]["id"] = str(foreign.id)
        rows[0]["active"] = None

    _, data = _rules_data(staff, world.town, form_parser, smuggle)
    r = staff.post(f"/duties/rules?town={world.town.id}", data=data)
    assert r.status_code == 422 and "规则不存在" in r.data.decode()
    db.session.expire_all()
    assert db.session.get(ContactRule, foreign.id).active is True


# -- budgets --------------------------------------------------------------------------------------
def test_duty_pages_stay_within_the_query_budget(world, chief, count_queries, make_household,
                                                 post_log, log_form):
    for i in range(12):
        make_household(world.hood1, f"户{i}", tags=("独居老人",) if i % 2 else ())
    h = world.hh1
    _, form = log_form(chief, h)
    pages = [
        ("home", lambda: chief.get("/duties/")),
        ("form", lambda: chief.get(f"/duties/households/{h.id}/log", headers=hx(h))),
        ("save", lambda: post_log(chief, h, form=form, headers=hx(h))),
        ("row", lambda: chief.get(f"/duties/households/{h.id}/row", headers=hx(h))),
        ("history", lambda: chief.get(f"/duties/households/{h.id}")),
        ("checklists", lambda: chief.get("/duties/checklists")),
    ]
    for name, fetch in pages:
        with count_queries() as n:
            r = fetch()
        assert r.status_code in (200, 303), name
        assert n.count <= 8, (name, n.count, [" ".join(s.split())[:80] for s in n.statements])


def test_account_without_post_is_told_so(world, login_as):
    c = login_as(world.nobody)
    r = c.get("/", follow_redirects=True)
    assert r.status_code == 200
    assert "您的账号还没有岗位" in r.data.decode()
    assert c.get(f"/duties/checklists?town={world.town.id}").status_code == 404
