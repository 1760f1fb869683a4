"""积分 on a 360 px phone, end to end in Chromium: a 邻长 logs two duties, sees the points in the
ledger, redeems a reward for a voucher code, and a village cadre looks the code up and marks the
voucher used; the 邻长 then sees it used. The public ranking is looked at without a login."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.blueprints.points.models import PointsEntry, Redemption, Reward
from portal.clock import local_today
from portal.extensions import db
from tests.browser.test_neighbor_chief_flow import assert_fits_phone, row

pytestmark = pytest.mark.browser


def log_a_visit(page, household):
    row(page, household).get_by_role("link").click()
    form = row(page, household).locator("form")
    form.get_by_role("radio", name="上门", exact=True).check()
    form.get_by_role("button", name="保存").click()
    expect(row(page, household).locator("a.hh")).to_have_class(re.compile(r"\bok\b"))


def test_log_earn_redeem_and_hand_over(world, new_page, login, live_server, output_dir):
    w = world
    today = local_today()
    db.session.add(Reward(town_id=w.town.id, name="村BA篮球赛门票", description="十二月决赛",
                          cost=2, stock=1, valid_from=today - timedelta(days=1),
                          valid_until=today + timedelta(days=30)))
    db.session.commit()

    page = new_page()
    login(page, w.neighbor_chief)
    page.get_by_role("link", name="积分", exact=True).click()
    expect(page.get_by_role("heading", name="我的积分")).to_be_visible()
    expect(page.locator(".summary b").first).to_have_text("0")
    expect(page.get_by_text("还没有积分记录")).to_be_visible()
    assert_fits_phone(page, "empty ledger")
    page.screenshot(path=output_dir / "1-empty-ledger.png", full_page=True)

    # two visits on the home page: one point each by the default rule
    page.goto(live_server("/duties/"))
    log_a_visit(page, w.hh1)
    log_a_visit(page, w.hh1x)
    page.get_by_role("link", name="积分", exact=True).click()
    expect(page.locator(".summary b").first).to_have_text("2")
    lines = page.locator("#ledger > li")
    expect(lines).to_have_count(2)
    expect(lines.first).to_contain_text("+1")
    expect(lines.first).to_contain_text("民情联络员")
    assert_fits_phone(page, "ledger with points")
    page.screenshot(path=output_dir / "2-ledger.png", full_page=True)

    # the store: confirm, then the voucher with its code
    page.get_by_role("link", name="积分兑换").click()
    reward = page.locator("li[id^=reward-]", has_text="村BA篮球赛门票")
    expect(reward).to_contain_text("剩 1 份")
    reward.locator("summary", has_text="兑换").click()
    assert_fits_phone(page, "store with the confirmation open")
    page.screenshot(path=output_dir / "3-store-confirm.png", full_page=True)
    reward.get_by_role("button", name="确认兑换").click()
    expect(page).to_have_url(re.compile(r"/points/vouchers/\d+$"))
    db.session.commit()
    voucher = db.session.scalar(select(Redemption))
    spaced = page.locator(".code-in b")
    expect(spaced).to_have_text(re.compile(r"^[0-9A-Z ]+$"))
    assert spaced.inner_text().replace(" ", "") == voucher.code
    expect(page.get_by_text("未使用")).to_be_visible()
    assert_fits_phone(page, "voucher")
    page.screenshot(path=output_dir / "4-voucher.png", full_page=True)

    page.goto(live_server("/points/"))
    expect(page.locator(".summary b").first).to_have_text("0")
    page.goto(live_server("/points/store"))
    expect(page.locator("li[id^=reward-]", has_text="村BA篮球赛门票")).to_contain_text("已兑完")

    # the village cadre types the code the 邻长 reads out (lower case, with spaces)
    staff = new_page()
    login(staff, w.village_staff)
    staff.goto(live_server("/points/vouchers"))
    staff.get_by_label("兑换码").fill(" ".join(voucher.code.lower()[i:i + 4]
                                              for i in range(0, 10, 4)))
    staff.get_by_role("button", name="查找").click()
    found = staff.locator("#found")
    expect(found).to_contain_text("村BA篮球赛门票")
    expect(found).to_contain_text(w.neighbor_chief.name)
    found.locator("summary", has_text="核销").click()
    assert_fits_phone(staff, "voucher desk")
    staff.screenshot(path=output_dir / "5-desk-confirm.png", full_page=True)
    found.get_by_role("button", name="确认核销").click()
    expect(staff.locator("#msg .flash, .flash").first).to_contain_text("核销")
    staff.screenshot(path=output_dir / "6-desk-used.png", full_page=True)

    page.goto(live_server(f"/points/vouchers/{voucher.id}"))
    expect(page.get_by_text("已核销")).to_be_visible()
    page.screenshot(path=output_dir / "7-voucher-used.png", full_page=True)
    db.session.commit()
    db.session.refresh(voucher)
    assert voucher.status == "used" and voucher.used_by_id == w.village_staff.id
    assert sorted(e.delta for e in db.session.scalars(select(PointsEntry))) == [-2, 1, 1]

    # the public ranking, no login, JavaScript off
    public = new_page(java_script_enabled=False)
    public.goto(live_server(f"/points/gongshi/{w.village1.id}?period={today:%Y-%m}"))
    table = public.locator("table")
    expect(table).to_contain_text(w.neighbor_chief.name)
    expect(public.locator("body")).not_to_contain_text(w.hh1.head_name)
    assert_fits_phone(public, "public ranking")
    public.screenshot(path=output_dir / "8-public-ranking.png", full_page=True)
