"""议事 at the 议事亭, on the chair's 360 px phone in Chromium: the village cadre opens a 村民会议,
checks households in by searching and tapping, watches the attendance reach the quorum (two
thirds of the households, 村民委员会组织法), opens the vote on the first item and taps one
household's vote while another household votes on its own phone with its code (JavaScript off),
sees the live tally change, closes the vote; enters a show of hands for the second item (a
count above attendance is refused), ends the meeting and prints the minutes."""

import re
import subprocess

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.blueprints.agenda.models import AgendaItem, Attendance, Vote
from portal.extensions import db
from tests.browser.test_neighbor_chief_flow import assert_fits_phone

pytestmark = pytest.mark.browser

FIRST = "修缮山塘输水洞"
SECOND = "组道路灯安装"


def fresh(model, *where):
    db.session.commit()  # end the test's transaction so it sees the server's commits
    return db.session.scalars(select(model).where(*where)).all()


@pytest.fixture
def assembly(world, make_item, make_meeting):
    """A 村民会议 of village 1 (3 households) with two items: a household vote under the
    村民会议 rule, and a show of hands under "two thirds of those present"."""
    first = make_item(world.hood1, world.neighbor_chief, title=FIRST)
    second = make_item(world.hood1b, world.village_staff, title=SECOND)
    meeting = make_meeting(world.village1, world.village_staff, kind="assembly",
                           title="村1村民会议",
                           items=[(first, "assembly", "household"),
                                  (second, "present_two_thirds", "hands")])
    return meeting, first, second


def test_chair_runs_a_meeting_on_a_phone(world, assembly, new_page, login, live_server,
                                         output_dir):
    meeting, first, second = assembly
    w = world
    shot = iter(range(1, 100))

    def look(page, name):
        assert_fits_phone(page, name)
        page.screenshot(path=output_dir / f"{next(shot):02d}-{name}.png", full_page=True)

    chair = login(new_page(), w.village_staff)

    # -- open the meeting -------------------------------------------------------------------
    chair.goto(live_server(f"/agenda/meetings/{meeting.id}/run"))
    expect(chair.get_by_role("heading", name="村1村民会议")).to_be_visible()
    expect(chair.locator("body")).to_contain_text(FIRST)
    look(chair, "console-before")
    chair.get_by_role("button", name="开始会议（开始签到）").click()
    expect(chair.get_by_role("heading", name="签到")).to_be_visible()  # straight to check-in
    attendance = chair.locator("#attendance")
    expect(attendance).to_contain_text("到会 0 / 应到 3 户")
    expect(attendance).to_contain_text("法定人数：需 2 户，还差 2 户")
    look(chair, "checkin-open")

    # -- check-in: search and tap --------------------------------------------------------------
    chair.get_by_role("searchbox").fill("甲1")
    row = chair.locator(f"#ci-{w.hh1.id}")
    expect(row).to_be_visible()
    expect(chair.locator(f"#ci-{w.hh1x.id}")).to_have_count(0)  # the search narrowed the list
    row.get_by_role("button", name="签到").click()
    expect(row).to_contain_text("已签到 · 投票码")
    expect(chair.locator("#attendance")).to_contain_text("到会 1 / 应到 3 户")
    look(chair, "checkin-one")
    chair.get_by_role("searchbox").fill("")
    other = chair.locator(f"#ci-{w.hh1x.id}")
    other.get_by_role("button", name="签到").click()
    expect(other).to_contain_text("已签到 · 投票码")
    expect(chair.locator("#attendance")).to_contain_text("到会 2 / 应到 3 户")
    expect(chair.locator("#attendance")).to_contain_text("法定人数：需 2 户，已达到")
    expect(chair.locator("body")).not_to_contain_text("13912345678")
    look(chair, "checkin-quorum")
    [code] = [a.code for a in fresh(Attendance, Attendance.household_id == w.hh1x.id)]
    assert code and re.fullmatch(r"[2-9A-Z]{8}", code)

    # -- first item: the chair taps one vote, the other household votes with its code ---------
    chair.goto(live_server(f"/agenda/meetings/{meeting.id}/run"))
    chair.get_by_role("button", name="开始表决").first.click()
    chair.goto(live_server(f"/agenda/items/{first.id}/vote"))
    tally = chair.locator("#tally")
    expect(tally).to_contain_text("2未投")
    chair.locator(f"#v-{w.hh1.id}").get_by_role("button", name="赞成").click()
    expect(chair.locator(f"#v-{w.hh1.id}")).to_contain_text("已投：赞成")
    expect(tally).to_contain_text("1赞成")
    look(chair, "vote-chair-tapped")

    resident = new_page(java_script_enabled=False)
    resident.goto(live_server("/v"))
    expect(resident.get_by_role("heading", name="居民投票")).to_be_visible()
    resident.get_by_role("textbox").fill(code.lower())
    resident.get_by_role("button", name="进入投票").click()
    ballot = resident.locator(f"#b-{first.id}")
    expect(ballot).to_contain_text(FIRST)
    expect(resident.locator(f"#b-{second.id}")).to_contain_text("尚未开始表决")
    expect(resident.locator("body")).not_to_contain_text("13912345678")
    assert_fits_phone(resident, "ballot")
    resident.screenshot(path=output_dir / f"{next(shot):02d}-resident-ballot.png",
                        full_page=True)
    ballot.get_by_role("button", name="反对").click()
    expect(resident.locator(f"#b-{first.id}")).to_contain_text("您已投票：反对")
    assert_fits_phone(resident, "ballot voted")
    resident.screenshot(path=output_dir / f"{next(shot):02d}-resident-voted.png",
                        full_page=True)

    expect(tally).to_contain_text("1反对", timeout=6000)  # the tally polls every 2 s
    expect(tally).to_contain_text("当前若结束：未通过")
    look(chair, "vote-live-tally")
    chair.get_by_role("link", name="结束表决").click()
    expect(chair.locator("body")).to_contain_text("按此结束，结果为：未通过")
    look(chair, "vote-close-confirm")
    chair.get_by_role("button", name="确认结束表决").click()
    expect(chair.locator("body")).to_contain_text("表决结果：未通过（赞成 1 反对 1 弃权 0，到会 2 户）")
    look(chair, "vote-closed")
    votes = fresh(Vote, Vote.item_id == first.id)
    assert sorted((v.household_id, v.choice) for v in votes) == sorted(
        [(w.hh1.id, "yes"), (w.hh1x.id, "no")])
    [item] = fresh(AgendaItem, AgendaItem.id == first.id)
    assert (item.status, item.result_present, item.result_entitled) == ("rejected", 2, 3)

    # the resident's page after the close: no buttons, the vote is kept
    resident.goto(live_server("/v/ballot"))
    expect(resident.locator(f"#b-{first.id}")).to_contain_text("您已投票：反对")

    # -- second item: a show of hands ----------------------------------------------------------
    chair.goto(live_server(f"/agenda/items/{second.id}/vote"))
    chair.get_by_role("button", name="开始表决").click()
    chair.get_by_label("赞成").fill("3")
    chair.get_by_label("反对").fill("0")
    chair.get_by_label("弃权").fill("0")
    chair.get_by_role("button", name="录入票数").click()
    expect(chair.locator("body")).to_contain_text("超过到会 2 户")
    look(chair, "hands-refused")
    chair.get_by_label("赞成").fill("2")
    chair.get_by_role("button", name="录入票数").click()
    expect(chair.locator("#tally")).to_contain_text("2赞成")
    chair.get_by_role("link", name="结束表决").click()
    chair.get_by_role("button", name="确认结束表决").click()
    expect(chair.locator("body")).to_contain_text("表决结果：通过")
    look(chair, "hands-closed")

    # -- end the meeting, print the minutes ----------------------------------------------------
    chair.goto(live_server(f"/agenda/meetings/{meeting.id}/run"))
    chair.get_by_role("link", name="结束会议").click()
    chair.get_by_role("button", name="确认结束会议").click()
    expect(chair.locator("body")).to_contain_text("到会 2 / 应到 3 户")
    look(chair, "ended")
    assert all(a.code is None for a in fresh(Attendance, Attendance.meeting_id == meeting.id))
    minutes = chair.request.get(live_server(f"/agenda/meetings/{meeting.id}/minutes.pdf"))
    assert minutes.ok and minutes.headers["content-type"] == "application/pdf"
    pdf = output_dir / "minutes.pdf"
    pdf.write_bytes(minutes.body())
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for words in (FIRST, SECOND, "村1村民会议", "未通过", "通过"):
        assert words in text, words
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf),
                    str(output_dir / "minutes")], check=True)

    # the resident's code no longer works
    resident.goto(live_server("/v/ballot"))
    expect(resident.locator("body")).to_contain_text("会议已经结束，投票码已失效")
