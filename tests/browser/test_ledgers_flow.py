"""台账 in Chromium, end to end: a town cadre downloads the household roster template, fills it in
(with two bad rows), sees the dry run list each problem by its Excel row with nothing saved,
uploads the corrected roster, imports it behind the progress bar, and reads the new households
in the town's figures, on a 360 px phone and on a 1280 px desktop."""

import re

import openpyxl
import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from portal.blueprints.regions.models import Household, Region
from portal.extensions import db
from tests.browser.test_neighbor_chief_flow import assert_fits_phone

pytestmark = pytest.mark.browser


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def _roster(template, path, rows):
    """The downloaded template with ``rows`` added under its header and example row."""
    wb = openpyxl.load_workbook(template)
    ws = wb.worksheets[0]
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def _upload(page, path):
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name=re.compile("试导入")).click()


GOOD = [("村1", "片1", "组1", "新一邻", "组1 路 8 号", "黄新户", "139 0000 1111", 3, "独居老人"),
        ("村2", "片2", "组2", "邻21", "组2 路 9 号", "周新户", "13900002222", 2, None)]
BAD = [("村9", "片1", "组1", "邻11", "组1 路 10 号", "错村户", "13900003333", 2, None),
       ("村1", "片1", "组1", "邻11", "组1 路 11 号", "错号户", "1390000", 40, None)]


def test_import_dry_run_import_and_dashboard(world, new_page, login, live_server, output_dir,
                                             tmp_path):
    w = world
    before = _count(Household)
    page = new_page()
    login(page, w.town_staff)
    page.get_by_role("link", name="台账", exact=True).click()
    page.get_by_role("link", name="从 Excel 导入名册").click()
    expect(page.get_by_role("heading", name="导入名册")).to_be_visible()
    assert_fits_phone(page, "import form")
    with page.expect_download() as download:
        page.get_by_role("link", name="住户名册模板").click()
    template = tmp_path / "template.xlsx"
    download.value.save_as(template)

    # the dry run: every problem with its Excel row (rows 5 and 6: header, example, two good)
    _upload(page, _roster(template, tmp_path / "bad.xlsx", GOOD + BAD))
    expect(page.get_by_text("没有保存任何数据")).to_be_visible(timeout=30_000)
    problems = page.locator("table tbody tr")
    expect(problems.filter(has_text="未知的村")).to_have_count(1)
    expect(problems.filter(has_text="未知的村").locator("td").first).to_have_text("5")
    bad_phone = problems.filter(has_text="联系电话")
    expect(bad_phone.locator("td").first).to_have_text("6")
    expect(problems.filter(has_text="人口").locator("td").first).to_have_text("6")
    expect(page.get_by_role("link", name=re.compile("导入…"))).to_have_count(0)
    assert _count(Household) == before
    assert_fits_phone(page, "dry run with problems")
    page.screenshot(path=output_dir / "ledgers-1-problems.png", full_page=True)

    # the corrected roster: no problems, one new 邻 listed, then the import behind its bar
    page.get_by_role("link", name="重新上传").click()
    _upload(page, _roster(template, tmp_path / "good.xlsx", GOOD))
    expect(page.get_by_text("没有发现问题")).to_be_visible(timeout=30_000)
    expect(page.locator("summary", has_text="将新建 1 个单位")).to_be_visible()
    assert _count(Household) == before
    assert_fits_phone(page, "dry run without problems")
    page.screenshot(path=output_dir / "ledgers-2-dry-run.png", full_page=True)
    page.get_by_role("link", name=re.compile("导入…")).click()
    page.get_by_role("button", name="确认导入").click()
    expect(page.get_by_text("导入完成")).to_be_visible(timeout=30_000)
    assert_fits_phone(page, "import done")
    page.screenshot(path=output_dir / "ledgers-3-done.png", full_page=True)
    assert _count(Household) == before + 3  # the template's example row and the two good rows
    assert db.session.scalar(select(func.count()).select_from(Region).where(
        Region.name == "新一邻")) == 1
    total = _count(Household)

    # the town's figures count the new households (the new 邻 has no 邻长 yet)
    page.get_by_role("link", name="概况", exact=True).click()
    expect(page.get_by_role("heading", name=f"{w.town.name} · 工作概况")).to_be_visible()
    expect(page.get_by_text(re.compile(rf"/ {total} 户"))).to_be_visible()
    expect(page.get_by_text("联系户覆盖", exact=True)).to_be_visible()
    assert_fits_phone(page, "dashboard")
    page.screenshot(path=output_dir / "ledgers-4-dashboard-phone.png", full_page=True)

    desk = new_page(viewport={"width": 1280, "height": 800})
    login(desk, w.town_staff)
    desk.goto(live_server(f"/ledgers/dashboard?region={w.town.id}"))
    expect(desk.get_by_text(re.compile(rf"/ {total} 户"))).to_be_visible()
    for name in ("村1", "村2"):
        expect(desk.locator("table").get_by_role("link", name=name, exact=True)).to_be_visible()
    assert desk.evaluate("document.documentElement.scrollWidth") <= 1280
    desk.screenshot(path=output_dir / "ledgers-5-dashboard-desktop.png", full_page=True)
