"""民情诉求 end to end on a 360 px phone in Chromium: a resident orders help through the household
link (JavaScript off, as on the cheapest phones), the 邻长 escalates, the 组长 escalates, the
village routes it to the town's agricultural service centre and answers, and the resident rates
the answer — the seeds' blocked irrigation outlet (山塘输水洞堵塞)."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.blueprints.requests.models import Request, RequestEvent
from portal.extensions import db
from tests.browser.test_neighbor_chief_flow import assert_fits_phone

pytestmark = pytest.mark.browser

PROBLEM = "山塘输水洞堵塞，蓄水困难，春耕要用水。"
ANSWER = "镇农业综合服务中心已派人疏通输水洞，山塘恢复蓄水，可以正常灌溉。"


def fresh(model, *where):
    db.session.commit()  # end the test's transaction so it sees the server's commits
    return db.session.scalars(select(model).where(*where)).all()


def open_action(page, name: str):
    """Unfold one action (a <details>) on the request page and return its form."""
    action = page.locator("details.act").filter(has=page.locator("summary", has_text=name))
    action.locator("summary").click()
    return action.locator("form")


def test_resident_orders_and_the_answer_comes_back(world, new_page, login, live_server,
                                                   output_dir):
    w = world
    token = w.hh1.intake_token
    assert token

    # -- the resident, no account, JavaScript off ---------------------------------------------
    resident = new_page(java_script_enabled=False)
    resident.goto(live_server(f"/r/{token}"))
    expect(resident.get_by_role("heading", name="向邻长反映问题")).to_be_visible()
    expect(resident.locator("body")).not_to_contain_text("13912345678")
    assert_fits_phone(resident, "public form")
    resident.screenshot(path=output_dir / "1-resident-form.png", full_page=True)
    resident.get_by_role("radio", name="安全隐患").check()
    resident.get_by_label("遇到了什么问题").fill(PROBLEM)
    resident.get_by_label("联系电话（可不填）").fill("13900001111")
    resident.get_by_role("button", name="提交").click()
    expect(resident.locator("body")).to_contain_text("4 小时")
    expect(resident.locator("body")).to_contain_text("待响应")
    [req] = fresh(Request)
    assert req.household_id == w.hh1.id and req.level == 0
    detail_url = resident.url
    assert_fits_phone(resident, "public detail")
    resident.screenshot(path=output_dir / "2-resident-submitted.png", full_page=True)

    # -- the 邻长: banner on the home page, queue, escalate --------------------------------------
    chief = login(new_page(), w.neighbor_chief)
    banner = chief.get_by_role("link", name=re.compile("待响应诉求 1 件"))
    expect(banner).to_be_visible()
    banner.click()
    expect(chief.locator("body")).to_contain_text("安全隐患")
    assert_fits_phone(chief, "queue")
    chief.screenshot(path=output_dir / "3-chief-queue.png", full_page=True)
    chief.get_by_role("link", name=re.compile("安全隐患")).first.click()
    expect(chief.locator("body")).to_contain_text("13900001111")  # own household: unmasked
    form = open_action(chief, "上报")
    form.get_by_label("上报原因").fill("需要村里协调，邻里解决不了。")
    assert_fits_phone(chief, "request page")
    chief.screenshot(path=output_dir / "4-chief-escalate.png", full_page=True)
    form.get_by_role("button", name="上报").click()
    expect(chief.locator("body")).to_contain_text("组级")
    assert fresh(Request)[0].level == 1

    # -- the 组长 passes it up to the village ----------------------------------------------------
    group = login(new_page(), w.group_chief)
    group.goto(live_server(f"/requests/{req.id}"))
    form = open_action(group, "上报")
    form.get_by_label("上报原因").fill("山塘属村集体，需要村里和镇里派人修。")
    form.get_by_role("button", name="上报").click()
    expect(group.locator("body")).to_contain_text("村级")

    # -- the village routes it to the town's agricultural service centre and answers -----------
    village = login(new_page(), w.village_staff)
    village.goto(live_server("/requests/"))
    village.get_by_role("link", name=re.compile("安全隐患")).first.click()
    form = open_action(village, "转交部门")
    form.get_by_label("承办部门").select_option(label="农业综合服务中心")
    form.get_by_role("button", name="转交部门").click()
    expect(village.locator("body")).to_contain_text("农业综合服务中心")
    form = open_action(village, "办结答复")
    form.get_by_label("给居民的答复").fill(ANSWER)
    form.get_by_role("button", name="办结答复").click()
    expect(village.locator("body")).to_contain_text("已办结")
    assert_fits_phone(village, "closed request")
    village.screenshot(path=output_dir / "5-village-closed.png", full_page=True)

    # -- the resident reads the answer and rates it ----------------------------------------------
    resident.goto(detail_url)
    expect(resident.locator("body")).to_contain_text(ANSWER)
    expect(resident.locator("body")).to_contain_text("村级办结")
    resident.get_by_role("radio", name="满意", exact=True).check()
    resident.get_by_role("button", name="提交评价").click()
    expect(resident.locator("body")).to_contain_text("您的评价")
    assert_fits_phone(resident, "rated")
    resident.screenshot(path=output_dir / "6-resident-rated.png", full_page=True)

    [done] = fresh(Request)
    assert (done.status, done.closed_level, done.rating) == ("closed", 2, "satisfied")
    kinds = [e.kind for e in fresh(RequestEvent, RequestEvent.request_id == done.id)]
    assert kinds == ["created", "escalated", "escalated", "routed", "closed", "rated"]
