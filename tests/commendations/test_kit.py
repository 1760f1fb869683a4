"""The 四个一 kit: work cards with their public verification page, contact cards, policy cards,
the issued dates (red vest and the rest), one card or a village's sheet, through the client."""

import io
import shutil
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import batch
from portal.audit import AuditEntry
from portal.blueprints.commendations import kit as svc
from portal.blueprints.commendations.models import KitIssue, PolicyText
from portal.blueprints.regions.models import Household, Post
from portal.clock import to_local, utcnow
from portal.extensions import db
from tests.conftest import Browser

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils (make test installs it)")
HOSTILE = "<script>alert(1)</script><img src=file:///etc/passwd>"


def chief_post(user) -> Post:
    return db.session.scalar(select(Post).where(Post.user_id == user.id,
                                                Post.role == "neighbor_chief"))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def status(response) -> int:
    """The status of a response, read and closed (a file response holds the file open)."""
    response.get_data()
    response.close()
    return response.status_code


def pdf_text(tmp_path, data: bytes) -> str:
    path = tmp_path / "card.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def pdf_info(tmp_path, data: bytes, tool: str) -> list[str]:
    path = tmp_path / "card.pdf"
    path.write_bytes(data)
    return subprocess.run([tool, str(path)] + (["-list"] if tool == "pdfimages" else []),
                          capture_output=True, text=True, check=True).stdout.splitlines()


def pages(tmp_path, data: bytes) -> int:
    info = pdf_info(tmp_path, data, "pdfinfo")
    return int(next(line for line in info if line.startswith("Pages:")).split()[1])


@pytest.fixture
def qr_links(monkeypatch):
    """Every link the cards of a request encode in their QR codes."""
    seen = []
    real = svc.qr_data_url

    def spy(link, *args, **kwargs):
        seen.append(link)
        return real(link, *args, **kwargs)

    monkeypatch.setattr(svc, "qr_data_url", spy)
    return seen


def upload(browser, post_id, image: bytes):
    return browser.c.post(f"/sige/posts/{post_id}/photo",
                          data={"csrf_token": browser.token,
                                "photo": (io.BytesIO(image), "me.jpg")},
                          content_type="multipart/form-data")


# -- the work card and its verification page ------------------------------------------------------
@needs_poppler
def test_work_card_prints_who_and_its_qr_shows_valid_then_invalid(world, login_as, client,
                                                                   tmp_path, qr_links,
                                                                   make_image, upload_folder):
    upload_folder("kit")
    staff = Browser(login_as(world.village_staff))
    post = chief_post(world.neighbor_chief)
    assert upload(staff, post.id, make_image((600, 800))).status_code == 303
    r = staff.get(f"/sige/posts/{post.id}/work.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = pdf_text(tmp_path, r.data).replace("\n", "")
    for expected in ("工作证", world.neighbor_chief.name, "邻长", "村1", "组1", "邻11", "测试镇"):
        assert expected in text, expected
    assert world.neighbor_chief.phone not in text  # the card carries no phone
    fonts = pdf_info(tmp_path, r.data, "pdffonts")[2:]
    assert fonts and all("+" in line.split()[0] and " yes yes " in line for line in fonts), fonts
    images = pdf_info(tmp_path, r.data, "pdfimages")[2:]
    assert any(" jpeg " in line for line in images), images  # the photo
    assert len(r.data) < 300_000

    [link] = qr_links
    db.session.expire_all()
    token = db.session.get(Post, post.id).card_token
    assert token and link.endswith(f"/zheng/{token}")
    path = link[link.index("/zheng/"):]
    page = client.get(path)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "此证有效" in body and world.neighbor_chief.name in body
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page.headers["X-Robots-Tag"]
    assert status(client.get(f"{path}/photo.jpg")) == 200
    for private in (world.neighbor_chief.phone, world.hh1.address, world.hh1.head_name,
                    world.hh1.phone):
        assert private not in body

    again = staff.get(f"/sige/posts/{post.id}/work.pdf")  # the same token: old cards stay valid
    assert again.status_code == 200 and qr_links[-1] == link

    ended = db.session.get(Post, post.id)
    ended.ended_at = utcnow() - timedelta(days=1)
    db.session.commit()
    body = client.get(path).get_data(as_text=True)
    assert "已失效" in body and "此证有效" not in body
    assert to_local(ended.ended_at).strftime("%Y年%m月%d日") in body
    assert client.get("/zheng/not-a-real-token").status_code == 404
    assert staff.get(f"/sige/posts/{post.id}/work.pdf").status_code == 404  # no new card


def test_card_photo_is_checked_and_replaced(world, login_as, make_image, upload_folder):
    folder = upload_folder("kit")
    staff = Browser(login_as(world.village_staff))
    post = chief_post(world.neighbor_chief)
    audited = count(AuditEntry)
    small = upload(staff, post.id, make_image((200, 150)))
    assert small.status_code == 422 and "照片太小" in small.get_data(as_text=True)
    empty = staff.post(f"/sige/posts/{post.id}/photo")
    assert empty.status_code == 422 and "请选择一张照片" in empty.get_data(as_text=True)
    not_image = upload(staff, post.id, b"GIF89a not really")
    assert not_image.status_code == 422
    assert not list(folder.iterdir()) and count(AuditEntry) == audited
    assert upload(staff, post.id, make_image((900, 1200))).status_code == 303
    first = db.session.get(Post, post.id).card_photo
    assert upload(staff, post.id, make_image((900, 1200))).status_code == 303
    db.session.expire_all()
    second = db.session.get(Post, post.id).card_photo
    assert [p.name for p in folder.iterdir()] == [second] and first != second
    assert status(staff.get(f"/sige/posts/{post.id}/photo.jpg")) == 200
    other = Browser(login_as(world.neighbor_chief))
    assert status(other.get(f"/sige/posts/{post.id}/photo.jpg")) == 403


# -- the contact card -------------------------------------------------------------------------------
@needs_poppler
def test_contact_card_gives_the_chief_and_the_request_link(world, login_as, tmp_path, qr_links,
                                                           make_household):
    hostile = make_household(world.hood1, head_name="<script>x</script>",
                             address=HOSTILE[:100])
    hostile.intake_token = None  # a household older than the links
    db.session.commit()
    staff = Browser(login_as(world.village_staff))
    r = staff.get(f"/sige/households/{hostile.id}/card.pdf")
    assert r.status_code == 200
    text = pdf_text(tmp_path, r.data).replace("\n", "")
    for expected in ("联户信息卡", "<script>x</script>", "file:///etc/passwd",
                     world.neighbor_chief.name, world.neighbor_chief.phone, "村1", "邻11"):
        assert expected in text, expected
    db.session.expire_all()
    token = db.session.get(Household, hostile.id).intake_token
    assert token and qr_links == [f"http://localhost/r/{token}"]

    none = make_household(world.hood2b, head_name="无邻长户")
    town = Browser(login_as(world.town_staff))
    text = pdf_text(tmp_path, town.get(f"/sige/households/{none.id}/card.pdf").data)
    assert "待定" in text.replace("\n", "")


# -- the policy card ----------------------------------------------------------------------------
@needs_poppler
def test_policy_text_edited_by_town_staff_and_printed(world, login_as, tmp_path):
    town = Browser(login_as(world.town_staff))
    url = f"/sige/towns/{world.town.id}/policy"
    assert town.get(url).status_code == 200
    short = town.post(url, title="政策卡", body="太短")
    assert short.status_code == 422 and count(PolicyText) == 0
    body = "城乡居民医保每年 9 月至 12 月缴费。\n" + HOSTILE
    assert town.post(url, title="测试镇惠民政策明白卡", body=body).status_code == 303
    same = town.post(url, title="测试镇惠民政策明白卡", body=body)
    assert same.status_code == 422 and "没有改动" in same.get_data(as_text=True)
    village = Browser(login_as(world.village_staff))
    assert village.post(url, title="村里改的", body="村干部不能改政策明白卡的内容。").status_code == 403
    assert db.session.scalar(select(PolicyText.title)) == "测试镇惠民政策明白卡"

    r = village.get(f"/sige/posts/{chief_post(world.neighbor_chief).id}/policy.pdf")
    text = pdf_text(tmp_path, r.data).replace("\n", "")
    for expected in ("测试镇惠民政策明白卡", "城乡居民医保", "<script>alert(1)</script>",
                     "file:///etc/passwd", "权责清单", "议事清单", "负面清单",
                     world.neighbor_chief.name, "村1"):
        assert expected in text, expected
    assert pages(tmp_path, r.data) == 1


# -- the issued dates -------------------------------------------------------------------------
def test_issue_dates_recorded_corrected_and_cleared(world, login_as):
    staff = Browser(login_as(world.village_staff))
    post = chief_post(world.neighbor_chief)
    url = f"/sige/posts/{post.id}/issue"
    today = svc.today()
    future = staff.post(url, item="vest", issued_on=str(today + timedelta(days=1)))
    assert future.status_code == 422 and "不能晚于今天" in future.get_data(as_text=True)
    for bad in ({"item": "hat", "issued_on": str(today)}, {"item": "vest", "issued_on": ""},
                {"item": "vest", "issued_on": "2026-13-01"},
                {"item": "vest", "issued_on": "2001-01-01"}):
        assert staff.post(url, **bad).status_code == 422, bad
    assert count(KitIssue) == 0
    assert staff.post(url, item="vest", issued_on=str(today)).status_code == 303
    assert staff.post(url, item="vest", issued_on=str(today)).status_code == 422  # no change
    page = staff.get(f"/sige/posts/{post.id}").get_data(as_text=True)
    assert f"{today} 已发" in page
    assert staff.post(url, item="card", issued_on=str(today)).status_code == 303
    assert count(KitIssue) == 2
    assert staff.post(url, item="vest", clear="1").status_code == 303
    assert staff.post(url, item="vest", clear="1").status_code == 422  # nothing to take back
    assert db.session.scalar(select(KitIssue.item)) == "card"
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action.like("kit.%")).order_by(AuditEntry.id)).all()
    assert actions == ["kit.issue", "kit.issue", "kit.clear"]
    village = staff.get(f"/sige/villages/{world.village1.id}").get_data(as_text=True)
    assert world.neighbor_chief.name in village and "1/4" in village

    chief = Browser(login_as(world.neighbor_chief))  # a 邻长 does not record their own
    assert chief.post(url, item="vest", issued_on=str(today)).status_code == 403
    assert count(KitIssue) == 1


def test_an_ended_post_gets_nothing_new(world, login_as, scope_of):
    post = chief_post(world.neighbor_chief)
    post.ended_at = utcnow()
    db.session.commit()
    staff = Browser(login_as(world.village_staff))
    r = staff.post(f"/sige/posts/{post.id}/issue", item="vest", issued_on=str(svc.today()))
    assert r.status_code == 422 and count(KitIssue) == 0
    assert staff.get(f"/sige/posts/{post.id}/policy.pdf").status_code == 404
    assert "已离任" in staff.get(f"/sige/posts/{post.id}").get_data(as_text=True)


def test_kit_is_for_neighbor_chiefs_and_staff(world, login_as, app):
    staff_post = db.session.scalar(select(Post).where(Post.user_id == world.group_chief.id))
    town = Browser(login_as(world.town_staff))
    assert town.get(f"/sige/posts/{staff_post.id}").status_code == 404  # not a 邻长's post
    assert town.get(f"/sige/villages/{world.group1.id}").status_code == 404  # not a village
    assert town.get(f"/sige/villages/{world.village1.id}/vest.pdf").status_code == 404
    index = town.get("/sige/").get_data(as_text=True)
    assert "村1" in index and "村2" in index and "编写测试镇政策明白卡" in index
    village = login_as(world.village_staff).get("/sige/").get_data(as_text=True)
    assert "村1" in village and "村2" not in village and "编写" not in village
    for who in (world.neighbor_chief, world.group_chief, world.volunteer, world.nobody):
        assert login_as(who).get("/sige/").status_code == 403


# -- a village's sheets -------------------------------------------------------------------------
@pytest.fixture
def busy_village(world, make_user, make_household):
    """Village 1 with 邻长 on both its 邻 (three in all) and 13 households."""
    make_user("第二邻长", role="neighbor_chief", region=world.hood1b)
    make_user("第三邻长", role="neighbor_chief", region=world.hood1b)
    ended = make_user("已离任邻长", role="neighbor_chief", region=world.hood1)
    chief_post(ended).ended_at = utcnow()
    db.session.commit()
    for k in range(10):
        make_household(world.hood1b, head_name=f"新户{k}")
    return world


@needs_poppler
@pytest.mark.parametrize(("kind", "cards", "sheets"), [("work", 3, 1), ("policy", 3, 1),
                                                       ("contact", 13, 2)])
def test_village_sheet_has_every_card(busy_village, login_as, tmp_path, kind, cards, sheets,
                                      qr_links):
    w = busy_village
    staff = Browser(login_as(w.village_staff))
    if kind == "contact":  # a whole village's contact cards render in the background first
        assert staff.post(f"/sige/villages/{w.village1.id}/contact").status_code == 303
        batch.wait_all(60)
    r = staff.get(f"/sige/villages/{w.village1.id}/{kind}.pdf")
    assert r.status_code == 200
    text = pdf_text(tmp_path, r.data).replace("\n", "")
    assert pages(tmp_path, r.data) == sheets
    assert text.count(svc.CARDS[kind]) == cards
    if kind == "contact":
        names = [w.hh1.head_name, w.hh1x.head_name, w.hh1b.head_name] + [
            f"新户{k}" for k in range(10)]
        assert len(set(qr_links)) == 13
    else:
        names = [w.neighbor_chief.name, "第二邻长", "第三邻长"]
        assert "已离任邻长" not in text and w.neighbor_chief2.name not in text
    for name in names:
        assert name in text, name
    assert w.hh2.head_name not in text  # another village's


def test_sheets_and_pages_take_a_fixed_number_of_queries(world, login_as, count_queries,
                                                         make_household, make_user):
    staff = Browser(login_as(world.village_staff))
    urls = [f"/sige/villages/{world.village1.id}/{kind}.pdf" for kind in ("work", "policy")] + [
        f"/sige/villages/{world.village1.id}/contact",
        f"/sige/villages/{world.village1.id}", f"/sige/posts/{chief_post(world.neighbor_chief).id}",
        f"/sige/posts/{chief_post(world.neighbor_chief).id}/contact.pdf", "/sige/"]

    def counts():
        out = {}
        for url in urls:
            staff.get(url)  # the first print makes the tokens
            with count_queries() as n:
                assert staff.get(url).status_code == 200
            out[url] = n.count
        return out

    before = counts()
    for k in range(6):
        make_household(world.hood1, head_name=f"加户{k}")
        make_user(f"加邻长{k}", role="neighbor_chief", region=world.hood1b)
    after = counts()
    assert before == after
    assert max(after.values()) <= 8, after



@needs_poppler
def test_a_village_s_contact_cards_render_in_parts_with_progress(busy_village, login_as,
                                                                  tmp_path, monkeypatch):
    w = busy_village
    monkeypatch.setattr(svc, "PART_SIZE", 5)  # 13 cards: parts of 5, 5 and 3
    staff = Browser(login_as(w.village_staff))
    page = staff.get(f"/sige/villages/{w.village1.id}/contact").get_data(as_text=True)
    assert "已生成 <b>0</b> / 3 份" in page and "开始生成联户信息卡（3 份）" in page
    early = staff.get(f"/sige/villages/{w.village1.id}/contact.pdf")
    assert early.status_code == 303 and early.headers["Location"].endswith(
        f"/sige/villages/{w.village1.id}/contact")
    assert staff.post(f"/sige/villages/{w.village1.id}/contact").status_code == 303
    batch.wait_all(60)
    done = staff.get(f"/sige/villages/{w.village1.id}/contact",
                     headers={"HX-Target": "batch"}).get_data(as_text=True)
    assert done.startswith('<div id="batch"') and "已生成 <b>3</b> / 3 份" in done
    assert "hx-trigger" not in done
    r = staff.get(f"/sige/villages/{w.village1.id}/contact.pdf")
    text = pdf_text(tmp_path, r.data).replace("\n", "")
    assert text.count("联户信息卡") == 13 and pages(tmp_path, r.data) == 3
    # a household changed: its part renders again, the others are reused
    w.hh1.head_name = "改名户"
    db.session.commit()
    again = staff.get(f"/sige/villages/{w.village1.id}/contact").get_data(as_text=True)
    assert "已生成 <b>2</b> / 3 份" in again and "继续生成联户信息卡（1 份）" in again


@needs_poppler
def test_a_big_village_prints_contact_cards_by_group(busy_village, login_as, tmp_path):
    w = busy_village
    staff = Browser(login_as(w.village_staff))
    page = staff.get(f"/sige/villages/{w.village1.id}").get_data(as_text=True)
    assert f"/sige/villages/{w.group1.id}/contact.pdf" not in page  # one 组: no list
    r = staff.get(f"/sige/villages/{w.group1.id}/contact.pdf")
    assert r.status_code == 200
    text = pdf_text(tmp_path, r.data).replace("\n", "")
    assert text.count("联户信息卡") == 13 and w.hh2.head_name not in text
    assert staff.get(f"/sige/villages/{w.hood1.id}/contact.pdf").status_code == 404
    assert staff.get(f"/sige/villages/{w.group2.id}/contact.pdf").status_code == 404


def test_village_page_lists_groups_when_there_are_several(world, login_as, make_region,
                                                          make_household):
    second = make_region("第二组", world.area1)
    make_household(make_region("第二组一邻", second), head_name="二组户")
    page = Browser(login_as(world.village_staff)).get(
        f"/sige/villages/{world.village1.id}").get_data(as_text=True)
    assert f"/sige/villages/{world.group1.id}/contact.pdf" in page and "组1 3 张" in page
    assert f"/sige/villages/{second.id}/contact.pdf" in page and "第二组 1 张" in page
    assert "联户信息卡 4 张" in page
