"""The 邻长's duty log on a 360 px phone, end to end in Chromium: with htmx (the row is swapped
in place, no reload), with JavaScript off (full pages), and a 组长's dashboard drill-down."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from portal.blueprints.duties.models import DutyLog
from portal.extensions import db

pytestmark = pytest.mark.browser

PHONE_WIDTH = 360


def log_count(household=None) -> int:
    db.session.commit()  # end the test's transaction, so the count sees the server's commits
    q = select(func.count()).select_from(DutyLog)
    if household is not None:
        q = q.where(DutyLog.household_id == household.id)
    return db.session.scalar(q)


def assert_fits_phone(page, what: str):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{what}: horizontal scroll ({width}px wide at {PHONE_WIDTH}px)"


def row(page, household):
    return page.locator(f"#hh-{household.id}")


@pytest.fixture
def hood(world, make_household):
    """The 邻长's 邻 with a third household, added yesterday: due, not yet overdue."""
    world.hh1new = make_household(world.hood1, head_name="丁1", created_ago=timedelta(days=1))
    return world


def test_log_a_visit_with_htmx(hood, page, login, live_server, output_dir):
    w = hood
    page.goto(live_server("/login"))
    assert_fits_phone(page, "login")
    login(page, w.neighbor_chief)

    expect(page).to_have_url(re.compile(r"/duties/$"))
    expect(page.get_by_role("heading", name="我的联系户")).to_be_visible()
    rows = page.locator("ul.list > li")
    expect(rows).to_have_count(3)
    expect(rows.first.locator("a.hh")).to_have_class(re.compile(r"\boverdue\b"))
    expect(row(page, w.hh1new).locator("a.hh")).to_have_class(re.compile(r"\bdue\b"))
    expect(row(page, w.hh1new)).to_contain_text("待联系")
    states = rows.locator("a.hh").evaluate_all(
        "els => els.map(e => ['overdue', 'due', 'ok'].findIndex(s => e.classList.contains(s)))")
    assert states == sorted(states) and states[0] == 0, states
    expect(page.locator(f"#hh-{w.hh2.id}")).to_have_count(0)  # another 邻's household
    assert_fits_phone(page, "邻长 home")
    page.screenshot(path=output_dir / "1-home.png", full_page=True)

    # tap the special household: the form replaces the row, the URL stays
    home_url = page.url
    page.evaluate("window.__noReload = true")
    row(page, w.hh1).get_by_role("link").click()
    form = row(page, w.hh1).locator("form")
    expect(form).to_be_visible()
    expect(row(page, w.hh1)).to_have_class(re.compile(r"\blogform\b"))
    assert page.url == home_url
    expect(form.get_by_role("radio", name="民情联络员")).to_be_checked()
    expect(form.get_by_label("时间")).not_to_have_value("")
    assert_fits_phone(page, "log form")
    page.screenshot(path=output_dir / "2-form-open.png", full_page=True)

    form.get_by_role("radio", name="电话", exact=True).check()
    form.get_by_label("情况记录").fill("电话问候，身体尚好。")
    form.get_by_role("button", name="保存").click()

    updated = row(page, w.hh1).locator("a.hh")
    expect(updated).to_be_visible()
    expect(updated).to_have_class(re.compile(r"\bok\b"))
    expect(updated).to_contain_text("已联系")
    expect(updated).to_contain_text("电话")
    expect(row(page, w.hh1).locator("form")).to_have_count(0)
    assert page.url == home_url
    assert page.evaluate("window.__noReload") is True, "the page was reloaded"
    expect(page.locator("#msg .flash")).to_have_text(f"已记录：{w.hh1.head_name}家 · 电话")
    # the counters refresh themselves (contacts-changed event), still without a reload
    expect(page.locator("#summary > div").nth(0)).to_have_text("1逾期")
    expect(page.locator("#summary > div").nth(2)).to_have_text("1已联系")
    expect(page.locator("#summary > div").nth(3)).to_have_text("1本月记录")
    assert_fits_phone(page, "home after saving")
    page.screenshot(path=output_dir / "3-after-save.png", full_page=True)
    assert log_count() == 1
    assert log_count(w.hh1) == 1

    # cancel puts the row back as it was, still in place
    row(page, w.hh1new).get_by_role("link").click()
    # opening the next form clears the last confirmation, so it cannot cover a new error
    expect(page.locator("#msg .flash")).to_have_count(0)
    row(page, w.hh1new).get_by_role("link", name="取消").click()
    expect(row(page, w.hh1new).locator("a.hh")).to_have_class(re.compile(r"\bdue\b"))
    expect(row(page, w.hh1new).locator("form")).to_have_count(0)
    assert page.url == home_url

    # a double-tap on save for another household: one log
    row(page, w.hh1x).get_by_role("link").click()
    form = row(page, w.hh1x).locator("form")
    form.get_by_role("radio", name="上门", exact=True).check()
    form.get_by_role("button", name="保存").dblclick()
    expect(row(page, w.hh1x).locator("a.hh")).to_have_class(re.compile(r"\bok\b"))
    expect(row(page, w.hh1x)).to_contain_text("上门")
    expect(page.locator("#msg .flash")).to_have_text(f"已记录：{w.hh1x.head_name}家 · 上门")
    assert page.evaluate("window.__noReload") is True
    page.screenshot(path=output_dir / "4-after-double-tap.png", full_page=True)
    assert log_count(w.hh1x) == 1
    assert log_count() == 2

    # a fresh load keeps the new order: the two logged households after the due one
    page.reload()
    expect(rows.first).to_have_id(f"hh-{w.hh1new.id}")
    expect(page.locator("#msg .flash")).to_have_count(0)  # shown once, not again
    expect(page.locator(".summary div").nth(2)).to_have_text("2已联系")
    page.screenshot(path=output_dir / "5-reloaded.png", full_page=True)


def test_log_a_visit_without_javascript(hood, new_page, login, live_server, output_dir):
    w = hood
    page = new_page(java_script_enabled=False)
    login(page, w.neighbor_chief)
    expect(page).to_have_url(re.compile(r"/duties/$"))
    assert_fits_phone(page, "邻长 home (no JS)")

    row(page, w.hh1).get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/duties/households/{w.hh1.id}/log$"))
    expect(page.get_by_role("heading", name="记录履职")).to_be_visible()
    assert_fits_phone(page, "log page (no JS)")
    page.screenshot(path=output_dir / "1-log-page.png", full_page=True)

    page.get_by_role("radio", name="电话", exact=True).check()
    page.get_by_role("button", name="保存").click()
    expect(page).to_have_url(re.compile(rf"/duties/#hh-{w.hh1.id}$"))
    expect(page.locator("#msg .flash")).to_have_text(f"已记录：{w.hh1.head_name}家 · 电话")
    updated = row(page, w.hh1).locator("a.hh")
    expect(updated).to_have_class(re.compile(r"\bok\b"))
    expect(updated).to_contain_text("已联系")
    expect(updated).to_contain_text("电话")
    page.screenshot(path=output_dir / "2-after-save.png", full_page=True)
    assert log_count() == 1

    # a double-tap on save without JavaScript (two POSTs of the same form): one log
    row(page, w.hh1x).get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/duties/households/{w.hh1x.id}/log$"))
    page.get_by_role("button", name="保存").dblclick()
    expect(page).to_have_url(re.compile(rf"/duties/#hh-{w.hh1x.id}$"))
    expect(row(page, w.hh1x).locator("a.hh")).to_have_class(re.compile(r"\bok\b"))
    assert log_count(w.hh1x) == 1
    assert log_count() == 2


def test_group_chief_dashboard_drill_down(world, page, login, live_server, output_dir):
    w = world
    login(page, w.group_chief)
    expect(page).to_have_url(re.compile(r"/duties/dashboard$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(w.group1.name)
    table = page.locator("table")
    expect(table.locator("tbody tr")).to_have_count(2)  # 邻11 (with its 邻长) and 邻12
    assert_fits_phone(page, "组长 dashboard")
    page.screenshot(path=output_dir / "1-dashboard.png", full_page=True)

    table.get_by_role("link", name=w.neighbor_chief.name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/duties/neighborhoods/{w.hood1.id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(w.hood1.name)
    expect(page.get_by_role("heading", level=1)).to_contain_text(w.neighbor_chief.name)
    expect(row(page, w.hh1)).to_be_visible()
    expect(row(page, w.hh1x)).to_be_visible()
    expect(page.locator(".crumbs").get_by_role("link", name=w.group1.name)).to_be_visible()
    assert_fits_phone(page, "邻 page")
    page.screenshot(path=output_dir / "2-neighborhood.png", full_page=True)
