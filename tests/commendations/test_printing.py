"""Printing approved 标兵: one poster as PDF (either design) or PNG, the campaign's batch print
with its progress, the photos on the public pages, nominating from the 履职评议 优秀 list, and
the campaign closing once every nomination is decided."""

import io
import shutil
import subprocess
from datetime import date, datetime

import pypdfium2 as pdfium
import pytest
from PIL import Image
from sqlalchemy import select

from portal import batch
from portal.blueprints.commendations import posters
from portal.blueprints.commendations import services as svc
from portal.blueprints.commendations.models import Campaign, Nomination
from portal.blueprints.points.models import Review
from portal.extensions import db
from tests.commendations.test_public import clock  # noqa: F401 (fixture)
from tests.commendations.test_services import DEEDS, NOW, chief_post, scope
from tests.conftest import Browser

AFTER = datetime(2026, 11, 28, 2)  # the day after the notice period


@pytest.fixture
def photos(upload_folder):
    return upload_folder("commendation")


def campaign_of(world, quota=2) -> Campaign:
    return svc.create_campaign(world.town_staff, scope(world.town_staff), world.town, {
        "title": "2026 年度测试镇好邻", "honour": "测试好邻", "quota": quota,
        "period_start": date(2026, 1, 1), "period_end": date(2027, 1, 1),
        "notice_start": date(2026, 11, 21), "notice_end": date(2026, 11, 27)}, now=NOW)


@pytest.fixture
def approved(world, clock, photos, make_image):  # noqa: F811
    """Two 标兵 of two villages, approved; the first with a photo."""
    c = campaign_of(world)
    (photos / "a.jpg").write_bytes(make_image((900, 1200)))
    first = svc.nominate(world.town_staff, scope(world.town_staff), c,
                         chief_post(world.neighbor_chief), DEEDS, "a.jpg", now=NOW)
    second = svc.nominate(world.town_staff, scope(world.town_staff), c,
                          chief_post(world.neighbor_chief2), DEEDS, now=NOW)
    svc.open_notice(world.town_staff, scope(world.town_staff), c, now=NOW)
    for n in (first, second):
        svc.decide(world.town_staff, scope(world.town_staff), c, n, True, now=AFTER)
    db.session.commit()
    return c, first, second


def pages(pdf: bytes) -> int:
    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def test_the_campaign_closes_once_every_nomination_is_decided(approved):
    campaign, *_ = approved
    assert db.session.get(Campaign, campaign.id).status == "closed"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
@pytest.mark.parametrize("design", ["red", "plain"])
def test_a_poster_prints_who_where_and_what(world, login_as, approved, design):
    _, first, _ = approved
    town = login_as(world.town_staff)
    got = town.get(f"/haolin/nominations/{first.id}/poster.pdf?design={design}")
    assert got.status_code == 200 and got.mimetype == "application/pdf"
    assert "filename*=UTF-8''" in got.headers["Content-Disposition"]
    text = subprocess.run(["pdftotext", "-", "-"], input=got.data, capture_output=True,
                          check=True).stdout.decode()
    for words in (world.neighbor_chief.name, "测试好邻", world.village1.name,
                  world.group1.name, "人民政府"):
        assert words in text.replace(" ", "")


def test_the_png_is_for_a_wechat_article(world, login_as, approved):
    _, first, _ = approved
    got = login_as(world.town_staff).get(f"/haolin/nominations/{first.id}/poster.png?download=1")
    assert got.status_code == 200 and got.mimetype == "image/png"
    assert got.headers["Content-Disposition"].startswith("attachment")
    with Image.open(io.BytesIO(got.data)) as image:
        assert image.width == posters.PNG_WIDTH


def test_who_prints_which_poster(world, login_as, approved, clock):  # noqa: F811
    campaign, first, second = approved
    village = login_as(world.village_staff)  # village1's cadre
    assert village.get(f"/haolin/nominations/{first.id}/poster.pdf").status_code == 200
    assert village.get(f"/haolin/nominations/{second.id}/poster.pdf").status_code == 404
    assert login_as(world.neighbor_chief).get(
        f"/haolin/nominations/{first.id}/poster.pdf").status_code in (403, 404)
    town = login_as(world.town_staff)
    assert town.get(f"/haolin/nominations/{first.id}/poster.pdf?design=gold").status_code == 404
    # not approved: no poster
    other = campaign_of(world)
    n = svc.nominate(world.town_staff, scope(world.town_staff), other,
                     chief_post(world.neighbor_chief), DEEDS, now=NOW)
    db.session.commit()
    assert town.get(f"/haolin/nominations/{n.id}/poster.pdf").status_code == 404


def test_the_batch_print_shows_progress_and_gives_one_pdf(world, login_as, approved):
    campaign, *_ = approved
    town = Browser(login_as(world.town_staff))
    early = town.get(f"/haolin/{campaign.id}/posters.pdf")
    assert early.status_code == 303  # nothing rendered yet: back to the page
    page = town.get(f"/haolin/{campaign.id}/posters").get_data(as_text=True)
    assert "已生成 <b>0</b> / 2 张" in page and "开始生成海报（2 张）" in page
    assert town.post(f"/haolin/{campaign.id}/posters").status_code == 303
    batch.wait_all(120)
    partial = town.get(f"/haolin/{campaign.id}/posters", headers={"HX-Target": "batch"})
    body = partial.get_data(as_text=True)
    assert body.startswith('<div id="batch"') and "<html" not in body
    assert "已生成 <b>2</b> / 2 张" in body and "hx-trigger" not in body  # done: no polling
    merged = town.get(f"/haolin/{campaign.id}/posters.pdf")
    assert merged.status_code == 200 and pages(merged.data) == 2
    # a village cadre prints their own village's 标兵 only
    village = login_as(world.village_staff)
    assert "已生成 <b>1</b> / 1 张" in village.get(f"/haolin/{campaign.id}/posters").get_data(True)


def test_a_running_batch_polls_and_refreshes_without_javascript(world, login_as, approved,
                                                                  monkeypatch):
    campaign, *_ = approved
    monkeypatch.setattr(batch, "running", lambda key: True)
    page = login_as(world.town_staff).get(f"/haolin/{campaign.id}/posters").get_data(True)
    assert 'hx-trigger="every 1s"' in page and 'http-equiv="refresh"' in page
    assert "开始生成海报" not in page  # no second start while one runs


def test_an_empty_campaign_says_what_to_do(world, login_as, clock):  # noqa: F811
    c = campaign_of(world)
    db.session.commit()
    page = login_as(world.town_staff).get(f"/haolin/{c.id}/posters").get_data(True)
    assert "还没有评定的标兵" in page


def test_photos_are_public_once_published(world, client, login_as, clock, photos,  # noqa: F811
                                          make_image):
    c = campaign_of(world)
    (photos / "p.jpg").write_bytes(make_image((600, 800)))
    n = svc.nominate(world.town_staff, scope(world.town_staff), c,
                     chief_post(world.neighbor_chief), DEEDS, "p.jpg", now=NOW)
    db.session.commit()
    assert client.get(f"/rongyu/photo/{n.id}").status_code == 404  # not published yet
    staff = login_as(world.village_staff)
    with staff.get(f"/rongyu/photo/{n.id}") as got:  # a file response: closed after
        assert got.status_code == 200
    assert f"/rongyu/photo/{n.id}" in staff.get(f"/haolin/{c.id}").get_data(True)
    svc.open_notice(world.town_staff, scope(world.town_staff), c, now=NOW)
    db.session.commit()
    staff.get("/logout")
    with client.get(f"/rongyu/photo/{n.id}") as got:
        assert got.status_code == 200 and got.mimetype == "image/jpeg"
    assert f"/rongyu/photo/{n.id}" in client.get(f"/gongshi/haolin/{c.id}").get_data(True)


def test_nominating_from_the_excellent_list(world, login_as, clock):  # noqa: F811
    c = campaign_of(world)
    db.session.add(Review(
        town_id=world.town.id, user_id=world.neighbor_chief.id, path=world.hood1.path,
        period_start=date(2026, 7, 1), period_end=date(2026, 10, 1), grade="A", score=95,
        result="excellent", reviewer_id=world.village_staff.id))
    db.session.commit()
    village = Browser(login_as(world.village_staff))
    page = village.get(f"/haolin/{c.id}/nominate").get_data(as_text=True)
    assert "履职评议优秀" in page and "2026 年第 3 季度 95 分" in page
    post = chief_post(world.neighbor_chief)
    assert f"post={post.id}" in page
    assert village.post(f"/haolin/{c.id}/nominate", post_id=str(post.id),
                        deeds=DEEDS).status_code == 303
    n = db.session.scalar(select(Nomination))
    assert n.review_id is not None
    assert "已推荐" in village.get(f"/haolin/{c.id}/nominate").get_data(as_text=True)


def test_a_blurry_photo_is_refused_with_nothing_saved(world, login_as, clock, photos,  # noqa: F811
                                                      make_image):
    c = campaign_of(world)
    db.session.commit()
    village = Browser(login_as(world.village_staff))
    got = village.c.post(f"/haolin/{c.id}/nominate", data={
        "csrf_token": village.token, "deeds": DEEDS,
        "post_id": str(chief_post(world.neighbor_chief).id),
        "photo": (io.BytesIO(make_image((320, 240))), "small.jpg")},
        content_type="multipart/form-data")
    assert got.status_code == 422 and "照片太小（320×240）" in got.get_data(as_text=True)
    assert db.session.scalar(select(Nomination)) is None and not list(photos.iterdir())


def test_pages_stay_within_the_query_budget(world, login_as, client, approved, count_queries):
    campaign, first, _ = approved
    town = login_as(world.town_staff)
    for c, url in ((town, f"/haolin/{campaign.id}"), (town, f"/haolin/{campaign.id}/posters"),
                   (town, f"/haolin/{campaign.id}/nominate"),
                   (client, f"/gongshi/haolin/{campaign.id}"),
                   (client, f"/rongyu/{world.town.id}"),
                   (client, f"/rongyu/entry/{first.id}")):
        with count_queries() as n:
            assert c.get(url).status_code == 200, url
        assert n.count <= 8, (url, n.count, n.statements)


def test_a_withdrawn_nominee_leaves_the_public_notice(world, login_as, client, clock):  # noqa: F811
    c = campaign_of(world)
    n = svc.nominate(world.town_staff, scope(world.town_staff), c,
                     chief_post(world.neighbor_chief), DEEDS, now=NOW)
    svc.nominate(world.town_staff, scope(world.town_staff), c,
                 chief_post(world.neighbor_chief2), DEEDS, now=NOW)
    svc.open_notice(world.town_staff, scope(world.town_staff), c, now=NOW)
    db.session.commit()
    village = Browser(login_as(world.village_staff))
    page = village.get(f"/haolin/{c.id}").get_data(as_text=True)
    assert "撤回推荐" in page and "确认撤回" in page  # behind a confirmation step
    short = village.post(f"/haolin/nominations/{n.id}/withdraw", reason="错")
    assert short.status_code == 422 and "撤回原因" in short.get_data(as_text=True)
    assert village.post(f"/haolin/nominations/{n.id}/withdraw",
                        reason="核实后不符合条件").status_code == 303
    page = village.get(f"/haolin/{c.id}").get_data(as_text=True)
    assert "已撤回" in page and "核实后不符合条件" in page
    public = client.get(f"/gongshi/haolin/{c.id}").get_data(as_text=True)
    assert world.neighbor_chief2.name in public and "核实后不符合条件" not in public
    assert f'id="n{n.id}"' not in public
