"""好邻 on a 360 px phone, end to end in Chromium: the town cadre starts a campaign, the village
cadre nominates a 邻长 with a photo, the town opens the 公示, a resident reads it without an
account, and once the notice period is over the town approves and downloads the poster, as the
A3 PDF (rendered to PNG to be looked at) and as the WeChat PNG."""

import io
import shutil
import subprocess
from datetime import timedelta

import pytest
from PIL import Image
from playwright.sync_api import expect

from portal.blueprints.commendations import posters
from portal.blueprints.commendations import services as svc
from portal.clock import local_today, utcnow
from tests.browser.test_neighbor_chief_flow import assert_fits_phone

pytestmark = pytest.mark.browser


def test_nominate_publish_approve_and_print(world, new_page, login, live_server, output_dir,
                                            upload_folder, monkeypatch, tmp_path):
    w = world
    monkeypatch.setattr(posters, "_cache_dir", lambda: tmp_path)
    upload_folder("commendation")
    today = local_today()

    town = login(new_page(), w.town_staff)
    town.get_by_role("link", name="好邻", exact=True).click()
    expect(town.get_by_text("还没有评选活动")).to_be_visible()
    town.get_by_role("link", name="发起评选").click()
    town.get_by_label("评选范围").select_option(label=w.town.name)
    town.get_by_label("活动名称").fill(f"{today.year} 年度测试镇好邻")
    town.get_by_label("荣誉称号（印在海报上）").fill("测试好邻")
    town.get_by_label("名额").fill("2")
    town.get_by_label("统计开始日期").fill(f"{today.year}-01-01")
    town.get_by_label("统计截止日期（不含）").fill(f"{today.year + 1}-01-01")
    town.get_by_label("公示开始日期").fill(today.isoformat())
    town.get_by_label("公示结束日期（含）").fill(today.isoformat())
    assert_fits_phone(town, "new campaign")
    town.screenshot(path=output_dir / "1-new-campaign.png", full_page=True)
    town.get_by_role("button", name="发起").click()
    expect(town.locator(".flash")).to_contain_text("评选已发起")
    campaign_url = town.url

    village = login(new_page(), w.village_staff)
    village.goto(campaign_url)
    village.get_by_role("link", name="推荐人选").click()
    village.get_by_label("邻长").select_option(label=f"{w.neighbor_chief.name}（"
                                                  f"{w.village1.name} · {w.area1.name} · "
                                                  f"{w.group1.name} · {w.hood1.name}）")
    village.get_by_label("主要事迹").fill(
        "常年义务照看独居老人，组织邻里清理山塘，三年走访不断。<script>alert(1)</script>")
    portrait = io.BytesIO()
    Image.new("RGB", (900, 1200), (70, 120, 180)).save(portrait, "JPEG")  # not the poster's red
    village.get_by_label("照片（可不填，JPG、PNG 或 WebP）").set_input_files(
        {"name": "me.jpg", "mimeType": "image/jpeg", "buffer": portrait.getvalue()})
    assert_fits_phone(village, "nominate")
    village.screenshot(path=output_dir / "2-nominate.png", full_page=True)
    village.get_by_role("button", name="推荐", exact=True).click()
    expect(village.locator(".flash")).to_have_text("已推荐。")
    expect(village.locator("img.portrait")).to_have_count(1)

    town.reload()
    town.get_by_text("开始公示").click()
    town.get_by_role("button", name="确认公示").click()
    expect(town.locator(".flash")).to_contain_text("已公示")

    resident = new_page(java_script_enabled=False)
    resident.goto(town.url.replace("/haolin/", "/gongshi/haolin/").split("#")[0])
    expect(resident.get_by_text(w.neighbor_chief.name, exact=True)).to_be_visible()
    expect(resident.get_by_text("<script>alert(1)</script>", exact=False)).to_be_visible()
    expect(resident.locator("summary", has_text="提出异议")).to_be_visible()  # open to all
    assert resident.locator("img.portrait").evaluate("img => img.naturalWidth") > 0
    assert_fits_phone(resident, "public notice")
    resident.screenshot(path=output_dir / "3-public-notice.png", full_page=True)

    # the day after the notice period: the town approves
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr(svc, "utcnow", lambda: later)
    town.goto(campaign_url)
    town.locator("summary", has_text="审定").click()
    town.get_by_label("说明（可不填）").fill("公示期满无异议")
    town.get_by_role("button", name="评定", exact=True).click()
    expect(town.locator(".flash")).to_have_text("已审定。")
    expect(town.locator(".state.ok", has_text="已评定")).to_be_visible()
    expect(town.get_by_text("公示期满无异议")).to_be_visible()
    assert_fits_phone(town, "approved")
    town.screenshot(path=output_dir / "4-approved.png", full_page=True)

    with town.expect_download() as download:
        town.get_by_role("link", name="公众号图片 PNG").click()
    png = output_dir / "5-poster-wechat.png"
    download.value.save_as(png)
    with Image.open(png) as image:
        assert image.width == posters.PNG_WIDTH and image.height > image.width

    pdf_link = town.get_by_role("link", name="红色 A3 PDF").get_attribute("href")
    got = town.request.get(pdf_link)
    assert got.ok and got.headers["content-type"] == "application/pdf"
    pdf = output_dir / "6-poster-red.pdf"
    pdf.write_bytes(got.body())
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf),
                        str(output_dir / "6-poster-red")], check=True)
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True,
                              text=True).stdout.replace(" ", "")
        assert w.neighbor_chief.name in text and "测试好邻" in text and w.village1.name in text

    # the honour wall, without an account
    resident.goto(live_server(f"/rongyu/{w.town.id}"))
    resident.get_by_role("link", name=w.neighbor_chief.name).first.click()
    expect(resident.get_by_role("heading", name=w.neighbor_chief.name)).to_be_visible()
    assert_fits_phone(resident, "honour entry")
    resident.screenshot(path=output_dir / "7-honour-entry.png", full_page=True)
