"""The rewards store through the real client: the store page, redeeming with its confirmation
step, the voucher (owner and staff only), the voucher desk (look up a code, mark it used once),
and the rewards list and forms (town staff edit; village staff view; a 邻长 gets 403)."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import PointsEntry, Redemption, Reward
from portal.clock import local_today, utcnow
from portal.extensions import db
from tests.conftest import Browser
from tests.points.conftest import count

MAX_QUERIES = 8


def text(r) -> str:
    return r.data.decode()


def reward(town, cost=30, stock=5, name="村BA观赛门票", start=-10, end=30, active=True):
    today = local_today()
    r = Reward(town_id=town.id, name=name, cost=cost, stock=stock,
               valid_from=today + timedelta(days=start), valid_until=today + timedelta(days=end),
               active=active, description="凭券到村委会领取")
    db.session.add(r)
    db.session.commit()
    return r


def written() -> tuple:
    return (count(Redemption), count(PointsEntry, PointsEntry.kind == "spend"),
            count(AuditEntry, AuditEntry.action == "reward.redeem"))


def stock(reward_id) -> int:
    db.session.expire_all()
    return db.session.get(Reward, reward_id).stock


@pytest.fixture
def browser(login_as):
    """browser(user) → a logged-in client that posts with the CSRF token."""
    return lambda user: Browser(login_as(user))


@pytest.fixture
def rich(world, give):
    """The 邻长 of 邻11 with 40 points."""
    give(world.neighbor_chief, world.hood1, utcnow() - timedelta(days=3), n=2)
    return world.neighbor_chief


def redeemed(world, user, r) -> Redemption:
    red = svc.redeem(user, r.id, world.hood1.path, today=local_today())
    db.session.commit()
    return red


# -- the store -----------------------------------------------------------------------------------
def test_the_store_shows_balance_rewards_and_empty_vouchers(world, rich, browser):
    ticket = reward(world.town, cost=30, stock=5)
    gone = reward(world.town, cost=10, stock=0, name="红色电影观影券")
    dear = reward(world.town, cost=500, name="景区年卡")
    reward(world.town, name="过期的奖励", start=-30, end=-1)
    reward(world.town, name="下架的奖励", active=False)
    page = text(browser(rich).get("/points/store"))
    assert "<b>40</b>我的积分" in page
    assert "村BA观赛门票" in page and "剩 5 份" in page
    assert "红色电影观影券" in page and "已兑完" in page
    assert "过期的奖励" not in page and "下架的奖励" not in page
    # a confirmation step (works without JS) for what can be afforded, nothing for the rest
    assert f'action="/points/store/{ticket.id}/redeem"' in page and "确认兑换" in page
    assert f'action="/points/store/{gone.id}/redeem"' not in page
    assert f'action="/points/store/{dear.id}/redeem"' not in page and "还差 460 分" in page
    assert "还没有兑换过" in page


def test_the_store_without_rewards_or_posts(world, browser):
    page = text(browser(world.neighbor_chief).get("/points/store"))
    assert "今天没有可以兑换的奖励" in page
    page = text(browser(world.nobody).get("/points/store"))
    assert "还没有在镇村的岗位" in page


def test_redeem_spends_points_and_shows_the_voucher(world, rich, browser):
    r = reward(world.town, cost=30, stock=5)
    b = browser(rich)
    resp = b.post(f"/points/store/{r.id}/redeem")
    assert resp.status_code == 303
    red = db.session.scalar(select(Redemption))
    assert resp.headers["Location"] == f"/points/vouchers/{red.id}"
    assert (red.user_id, red.path, red.cost, red.status) == (
        rich.id, world.hood1.path, 30, "issued")
    assert svc.balance(rich.id) == 10 and stock(r.id) == 4
    page = text(b.get(resp.headers["Location"]))
    assert "兑换成功" in page
    assert f"{red.code[:4]} {red.code[4:8]} {red.code[8:]}" in page and "未使用" in page
    assert "确认核销" not in page  # the owner cannot mark it used
    store = text(b.get("/points/store"))
    assert "<b>10</b>我的积分" in store and f"/points/vouchers/{red.id}" in store


def test_not_enough_points_is_422_and_saves_nothing(world, give, browser):
    give(world.neighbor_chief, world.hood1, utcnow() - timedelta(days=3))  # 20
    r = reward(world.town, cost=30)
    before = written()
    resp = browser(world.neighbor_chief).post(f"/points/store/{r.id}/redeem")
    assert resp.status_code == 422
    assert "积分不足" in text(resp) and "需要 30 分" in text(resp)
    assert written() == before and stock(r.id) == 5
    assert svc.balance(world.neighbor_chief.id) == 20


def test_sold_out_and_out_of_period_are_refused(world, rich, browser):
    gone = reward(world.town, stock=0)
    later = reward(world.town, name="下月的奖励", start=3, end=30)
    b = browser(rich)
    resp = b.post(f"/points/store/{gone.id}/redeem")
    assert resp.status_code == 422 and "已经兑完" in text(resp)
    resp = b.post(f"/points/store/{later.id}/redeem")
    assert resp.status_code == 422 and "不在兑换期" in text(resp)
    assert written() == (0, 0, 0) and svc.balance(rich.id) == 40


def test_a_reward_of_another_town_or_none(world, rich, browser, make_region):
    other = reward(make_region("另一镇"))
    b = browser(rich)
    assert b.post(f"/points/store/{other.id}/redeem").status_code == 404
    assert b.post("/points/store/999999/redeem").status_code == 404
    assert written() == (0, 0, 0)


def test_an_admin_without_a_post_in_the_town_is_told_why(world, give, browser):
    r = reward(world.town)
    resp = browser(world.admin).post(f"/points/store/{r.id}/redeem")
    assert resp.status_code == 422 and "没有岗位" in text(resp)
    assert written() == (0, 0, 0)


def test_the_spending_is_booked_on_the_post_in_the_rewards_town(world, give, browser,
                                                               make_user):
    from portal.blueprints.regions.models import Post

    # a 组长 who is also 邻长 of 邻12: the 邻长 post pays
    db.session.add(Post(user_id=world.group_chief.id, region_id=world.hood1b.id,
                        role="neighbor_chief"))
    db.session.commit()
    give(world.group_chief, world.hood1b, utcnow() - timedelta(days=1), n=2)
    r = reward(world.town)
    assert browser(world.group_chief).post(f"/points/store/{r.id}/redeem").status_code == 303
    assert db.session.scalar(select(Redemption.path)) == world.hood1b.path


def test_redeem_without_csrf_is_refused(world, rich, login_as):
    r = reward(world.town)
    assert login_as(rich).post(f"/points/store/{r.id}/redeem").status_code == 400
    assert written() == (0, 0, 0)


# -- the voucher ---------------------------------------------------------------------------------
def test_only_the_owner_and_staff_see_a_voucher(world, rich, browser, make_user):
    red = redeemed(world, rich, reward(world.town))
    url = f"/points/vouchers/{red.id}"
    for who in ("neighbor_chief2", "group_chief", "area_chief", "volunteer", "nobody"):
        assert browser(getattr(world, who)).get(url).status_code == 404, who
    other_staff = make_user("村二干部", "13800000301", role="village_staff",
                            region=world.village2)
    assert browser(other_staff).get(url).status_code == 404
    for who in ("village_staff", "town_staff", "admin"):
        page = text(browser(getattr(world, who)).get(url))
        assert red.code[:4] in page and "确认核销" in page, who
    assert browser(rich).get("/points/vouchers/999999").status_code == 404


def test_staff_mark_a_voucher_used_once(world, rich, browser):
    red = redeemed(world, rich, reward(world.town))
    url = f"/points/vouchers/{red.id}/use"
    staff = browser(world.village_staff)
    resp = staff.post(url, back="voucher")
    assert resp.status_code == 303 and resp.headers["Location"] == f"/points/vouchers/{red.id}"
    db.session.expire_all()
    red = db.session.get(Redemption, red.id)
    assert (red.status, red.used_by_id) == ("used", world.village_staff.id)
    page = text(staff.get(resp.headers["Location"]))
    assert "已核销" in page and "确认核销" not in page and "村干部" in page
    # twice: refused with a message, nothing changes
    again = browser(world.town_staff).post(url)
    assert again.status_code == 422 and "已经核销" in text(again)
    assert count(AuditEntry, AuditEntry.action == "reward.use") == 1


def test_who_may_not_mark_used(world, rich, browser, login_as):
    red = redeemed(world, rich, reward(world.town))
    url = f"/points/vouchers/{red.id}/use"
    assert browser(rich).post(url).status_code == 403  # the owner
    assert browser(world.group_chief).post(url).status_code == 403  # sees the 邻, not staff
    assert browser(world.neighbor_chief2).post(url).status_code == 404
    assert login_as(world.village_staff).post(url).status_code == 400  # no CSRF token
    db.session.expire_all()
    assert db.session.get(Redemption, red.id).status == "issued"


# -- the voucher desk ----------------------------------------------------------------------------
def test_staff_look_up_a_code(world, rich, browser, give):
    red = redeemed(world, rich, reward(world.town))
    give(world.neighbor_chief2, world.hood2, utcnow() - timedelta(days=1), n=2)
    elsewhere = svc.redeem(world.neighbor_chief2, red.reward_id, world.hood2.path,
                           today=local_today())
    db.session.commit()
    staff = browser(world.village_staff)
    typed = f" {red.code[:4].lower()} {red.code[4:8]}-{red.code[8:]} "
    page = text(staff.get("/points/vouchers", query_string={"code": typed}))
    assert 'id="found"' in page and "确认核销" in page and "邻长" in page
    # village 2's voucher is out of village 1's cadre's scope
    page = text(staff.get("/points/vouchers", query_string={"code": elsewhere.code}))
    assert "没有找到" in page and 'id="found"' not in page
    page = text(staff.get("/points/vouchers", query_string={"code": "ZZZZ"}))
    assert "没有找到" in page
    # the recent list: own scope only; the town sees both
    page = text(staff.get("/points/vouchers"))
    assert f"/points/vouchers/{red.id}\"" in page
    assert f"/points/vouchers/{elsewhere.id}\"" not in page
    page = text(browser(world.town_staff).get("/points/vouchers"))
    assert f"/points/vouchers/{elsewhere.id}\"" in page
    # marking used from the desk goes back to the desk
    resp = staff.post(f"/points/vouchers/{red.id}/use", back="desk")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/points/vouchers?code={red.code}"
    page = text(staff.get("/points/vouchers", query_string={"status": "used"}))
    assert f"/points/vouchers/{red.id}\"" in page


@pytest.mark.parametrize("who", ["neighbor_chief", "group_chief", "volunteer", "nobody"])
def test_the_desk_and_rewards_list_are_for_staff(world, browser, who):
    b = browser(getattr(world, who))
    assert b.get("/points/vouchers").status_code == 403
    assert b.get("/points/rewards").status_code == 403


# -- rewards: list and forms ---------------------------------------------------------------------
GOOD = {"name": "印山红游船票", "description": "周末可用", "cost": "50", "stock": "20",
        "active": "y"}


def good(**over):
    today = local_today()
    return {**GOOD, "valid_from": today.isoformat(),
            "valid_until": (today + timedelta(days=60)).isoformat(), **over}


def test_rewards_list_with_counts(world, rich, browser, scope_of):
    r = reward(world.town)
    red = redeemed(world, rich, r)
    svc.mark_used(world.village_staff, scope_of(world.village_staff), red)
    redeemed(world, rich, reward(world.town, cost=10, name="红色电影观影券"))
    db.session.commit()
    page = text(browser(world.village_staff).get("/points/rewards"))
    assert "村BA观赛门票" in page and "已兑出 1 份，已核销 1 份" in page and "剩 4 份" in page
    assert "新增奖励" not in page and f"/points/rewards/{r.id}\"" not in page
    page = text(browser(world.town_staff).get("/points/rewards"))
    assert "新增奖励" in page and f"/points/rewards/{r.id}\"" in page


def test_town_staff_create_a_reward(world, browser):
    b = browser(world.town_staff)
    page = text(b.get("/points/rewards/new"))
    assert 'name="cost"' in page and f'value="{world.town.id}"' in page
    resp = b.post("/points/rewards/new", **good(town_id=world.town.id))
    assert resp.status_code == 303 and resp.headers["Location"] == "/points/rewards"
    r = db.session.scalar(select(Reward))
    assert (r.town_id, r.name, r.cost, r.stock, r.active) == (
        world.town.id, "印山红游船票", 50, 20, True)
    assert count(AuditEntry, AuditEntry.action == "reward.create") == 1
    assert "印山红游船票" in text(b.get("/points/store"))


@pytest.mark.parametrize("over, message", [
    ({"cost": "abc"}, "所需积分应为 1 到 100000 之间的整数"),
    ({"cost": "0"}, "所需积分应为 1 到 100000 之间的整数"),
    ({"stock": "-1"}, "库存应为 0 到 100000 之间的整数"),
    ({"stock": ""}, "数量应为 0 到 100000 之间的整数"),
    ({"name": ""}, "请填写名称"),
    ({"valid_from": "明天"}, "日期格式不对"),
    ({"valid_until": "2000-01-01"}, "截止日期不能早于开始日期"),
])
def test_reward_form_refusals(world, browser, over, message):
    resp = browser(world.town_staff).post("/points/rewards/new",
                                          **good(town_id=world.town.id, **over))
    assert resp.status_code == 422
    assert message in text(resp)
    assert count(Reward) == 0 and count(AuditEntry, AuditEntry.action == "reward.create") == 0


@pytest.mark.parametrize("who", ["neighbor_chief", "village_staff", "group_chief", "nobody"])
def test_only_town_staff_create_rewards(world, browser, who):
    b = browser(getattr(world, who))
    assert b.get("/points/rewards/new").status_code == 403
    assert b.post("/points/rewards/new", **good(town_id=world.town.id)).status_code == 403
    assert count(Reward) == 0


def test_town_staff_edit_a_reward(world, browser, make_region, make_user):
    r = reward(world.town, stock=5)
    b = browser(world.town_staff)
    page = text(b.get(f"/points/rewards/{r.id}"))
    assert 'value="村BA观赛门票"' in page and "已兑出 0 份" in page
    resp = b.post(f"/points/rewards/{r.id}", **good(name="村BA决赛门票", stock="8"))
    assert resp.status_code == 303
    db.session.expire_all()
    r = db.session.get(Reward, r.id)
    assert (r.name, r.stock, r.cost) == ("村BA决赛门票", 8, 50)
    assert count(AuditEntry, AuditEntry.action == "reward.update") == 1
    # bad number: 422, nothing changed
    resp = b.post(f"/points/rewards/{r.id}", **good(stock="很多"))
    assert resp.status_code == 422 and "数量应为" in text(resp)
    db.session.expire_all()
    assert db.session.get(Reward, r.id).stock == 8
    # village staff may look at the list, not edit; another town's staff do not see it
    assert browser(world.village_staff).get(f"/points/rewards/{r.id}").status_code == 403
    assert browser(world.village_staff).post(f"/points/rewards/{r.id}",
                                             **good()).status_code == 403
    stranger = make_user("外镇干部", "13800000302", role="town_staff",
                         region=make_region("另一镇"))
    assert browser(stranger).get(f"/points/rewards/{r.id}").status_code == 404
    assert browser(stranger).post(f"/points/rewards/{r.id}", **good()).status_code == 404
    assert b.get("/points/rewards/999999").status_code == 404


# -- query budget --------------------------------------------------------------------------------
def test_store_pages_stay_within_the_query_budget(world, give, browser, count_queries,
                                                 scope_of):
    give(world.neighbor_chief, world.hood1, utcnow() - timedelta(days=3), n=30)
    rewards = [reward(world.town, cost=10, name=f"奖励{k}") for k in range(6)]
    reds = [redeemed(world, world.neighbor_chief, rewards[k % 6]) for k in range(12)]
    svc.mark_used(world.village_staff, scope_of(world.village_staff), reds[0])
    db.session.commit()
    chief, staff = browser(world.neighbor_chief), browser(world.town_staff)
    pages = [
        (chief, "/points/store"),
        (chief, f"/points/vouchers/{reds[0].id}"),
        (staff, f"/points/vouchers/{reds[1].id}"),
        (staff, "/points/rewards"),
        (staff, f"/points/rewards/{rewards[0].id}"),
        (staff, "/points/rewards/new"),
        (staff, f"/points/vouchers?code={reds[2].code}"),
    ]
    for b, url in pages:
        with count_queries() as n:
            r = b.get(url)
        assert r.status_code == 200, url
        assert n.count <= MAX_QUERIES, (url, n.count, n.statements)
    # redeeming, and the voucher it leads to
    with count_queries() as n:
        r = chief.post(f"/points/store/{rewards[1].id}/redeem")
    assert r.status_code == 303
    assert n.count <= MAX_QUERIES + 4, n.statements  # the redemption's own writes and locks
    assert re.fullmatch(r"/points/vouchers/\d+", r.headers["Location"])


def test_editing_does_not_overwrite_redemptions_made_meanwhile(world, rich, browser, give):
    give(rich, world.hood1, utcnow() - timedelta(days=2), n=5)
    r = reward(world.town, stock=5)
    b = browser(world.town_staff)
    page = text(b.get(f"/points/rewards/{r.id}"))
    assert 'name="stock_seen" type="hidden" value="5"' in page
    redeemed(world, rich, r)  # 4 left while the form is open
    # the stock left as shown: what is left now is kept
    assert b.post(f"/points/rewards/{r.id}", **good(stock="5", stock_seen="5")).status_code == 303
    assert stock(r.id) == 4
    # the stock changed by the editor while someone redeemed: refused, nothing saved
    redeemed(world, rich, r)  # 3 left
    resp = b.post(f"/points/rewards/{r.id}", **good(stock="10", stock_seen="4", cost="70"))
    assert resp.status_code == 422 and "现在剩 3 份" in text(resp)
    assert 'name="stock_seen" type="hidden" value="3"' in text(resp)
    assert stock(r.id) == 3 and db.session.get(Reward, r.id).cost == 50
    assert b.post(f"/points/rewards/{r.id}", **good(stock="10", stock_seen="3")).status_code == 303
    assert stock(r.id) == 10
