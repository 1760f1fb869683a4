"""The flask commands: create-user, seed demo, init-db."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import distinct, func, inspect, select
from werkzeug.security import check_password_hash

from portal import create_app
from portal.audit import AuditEntry
from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import DutyLog
from portal.blueprints.duties.services import period_start
from portal.blueprints.regions.models import Household, Post, Region
from portal.clock import local_midnight_utc, local_today, to_local, utcnow
from portal.extensions import db
from portal.scope import ROLES


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def user(phone: str) -> User | None:
    return db.session.scalar(select(User).where(User.phone == phone))


# -- create-user --------------------------------------------------------------------------------
def test_create_user_with_password(runner):
    r = runner.invoke(args=["create-user", "--phone", "13700000001", "--name", "张三",
                            "--password", "a-good-pass-1"])
    assert r.exit_code == 0, r.output
    assert "已创建账号 张三 (13700000001)" in r.output
    u = user("13700000001")
    assert u.name == "张三" and u.active
    assert check_password_hash(u.password_hash, "a-good-pass-1")
    assert u.password_hash.startswith("scrypt:")
    assert count(Post) == 0
    assert db.session.scalar(select(AuditEntry.action)) == "user.create"


def test_create_user_prompts_for_the_password_twice(runner):
    r = runner.invoke(args=["create-user", "--phone", "13700000002", "--name", "李四"],
                      input="a-good-pass-2\na-good-pass-2\n")
    assert r.exit_code == 0, r.output
    assert "a-good-pass-2" not in r.output  # hidden input
    assert check_password_hash(user("13700000002").password_hash, "a-good-pass-2")


def test_create_user_with_role_and_region(runner, world):
    r = runner.invoke(args=["create-user", "--phone", "13700000003", "--name", "王五",
                            "--password", "a-good-pass-3", "--role", "neighbor_chief",
                            "--region", str(world.hood1b.id)])
    assert r.exit_code == 0, r.output
    assert "岗位 neighbor_chief" in r.output
    post = db.session.scalar(select(Post).where(Post.user_id == user("13700000003").id))
    assert (post.role, post.region_id, post.ended_at) == ("neighbor_chief", world.hood1b.id, None)


def test_create_admin_without_region(runner, app):
    r = runner.invoke(args=["create-user", "--phone", "13700000004", "--name", "管理员甲",
                            "--password", "a-good-pass-4", "--role", "admin"])
    assert r.exit_code == 0, r.output
    post = db.session.scalar(select(Post).where(Post.user_id == user("13700000004").id))
    assert (post.role, post.region_id) == ("admin", None)
    # and the new admin can log in and sees the whole deployment
    c = app.test_client()
    page = c.get("/login").data.decode()
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    r = c.post("/login", data={"phone": "13700000004", "password": "a-good-pass-4",
                               "csrf_token": token})
    assert r.status_code == 303


@pytest.mark.parametrize(("args", "message"), [
    (["--phone", "1370000000", "--password", "a-good-pass-1"], "手机号应为 11 位数字"),
    (["--phone", "23700000001", "--password", "a-good-pass-1"], "手机号应为 11 位数字"),
    (["--phone", "1370000000x", "--password", "a-good-pass-1"], "手机号应为 11 位数字"),
    (["--phone", "13700000001", "--password", "short"], "密码至少 8 位"),
    (["--phone", "13700000001", "--password", "123456789"], "密码不能全是数字"),
    (["--phone", "13700000001", "--password", "a-good-pass-1", "--role", "group_chief"],
     "岗位需要 --region"),
    (["--phone", "13700000001", "--password", "a-good-pass-1", "--role", "neighbor_chief",
      "--region", "HOOD_GROUP"], "邻长只能设在“邻”一级"),
    (["--phone", "13700000001", "--password", "a-good-pass-1", "--role", "neighbor_chief",
      "--region", "999999"], "没有 id 为 999999 的单位"),
    (["--phone", "13700000001", "--password", "a-good-pass-1", "--role", "mayor"],
     "Invalid value for '--role'"),
], ids=["short-phone", "not-1", "letter", "short-password", "digits-password", "no-region",
        "wrong-level", "no-such-region", "bad-role"])
def test_create_user_refused_saves_nothing(runner, world, args, message):
    args = [str(world.group1.id) if a == "HOOD_GROUP" else a for a in args]
    users, posts, audit = count(User), count(Post), count(AuditEntry)
    r = runner.invoke(args=["create-user", "--name", "赵六", *args])
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    db.session.rollback()
    assert (count(User), count(Post), count(AuditEntry)) == (users, posts, audit)
    assert user("13700000001") is None


def test_create_user_duplicate_phone(runner, world):
    users = count(User)
    r = runner.invoke(args=["create-user", "--phone", world.neighbor_chief.phone, "--name", "重复",
                            "--password", "a-good-pass-1"])
    assert r.exit_code == 1
    assert "这个手机号已有账号" in r.output
    assert count(User) == users
    db.session.refresh(world.neighbor_chief)
    assert world.neighbor_chief.name == "邻长"


# -- seed demo ----------------------------------------------------------------------------------
def _demo_counts() -> tuple:
    return (count(Region), count(User), count(Post), count(Household), count(DutyLog))


def test_seed_demo(runner, app):
    from portal.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

    r = runner.invoke(args=["seed", "demo"])
    assert r.exit_code == 0, r.output
    assert "演示数据已装入" in r.output
    for phone, *_ in DEMO_ACCOUNTS:
        assert phone in r.output

    def regions(level):
        return db.session.scalar(select(func.count()).where(Region.level == level))

    assert regions("town") == 1
    assert regions("village") == 4
    assert regions("neighborhood") == 64
    assert 600 <= count(Household) <= 800
    # accounts for every role, each able to log in with the printed password
    assert set(db.session.scalars(select(Post.role).distinct())) == set(ROLES)
    for phone, *_ in DEMO_ACCOUNTS:
        assert check_password_hash(user(phone).password_hash, DEMO_PASSWORD)
    chiefs = db.session.scalar(select(func.count(distinct(Post.user_id)))
                               .where(Post.role == "neighbor_chief"))
    assert chiefs == 64
    # every 邻 has its 5–15 households
    per_hood = db.session.execute(select(func.count()).select_from(Household)
                                  .group_by(Household.neighborhood_id)).scalars().all()
    assert len(per_hood) == 64 and min(per_hood) >= 5 and max(per_hood) <= 15
    # logs since the start of the previous quarter (the 履职评议 period), none in the future,
    # spread over at least three calendar months
    now = utcnow()
    first, last = db.session.execute(
        select(func.min(DutyLog.occurred_at), func.max(DutyLog.occurred_at))).one()
    assert count(DutyLog) >= 500
    assert last <= now
    quarter = period_start("quarter", local_today(now))
    assert first >= local_midnight_utc(period_start("quarter", quarter - timedelta(days=1)))
    assert first < local_midnight_utc(quarter)
    months = {(to_local(t).year, to_local(t).month)
              for t in db.session.scalars(select(DutyLog.occurred_at))}
    assert len(months) >= 3
    check_demo_points(app, now)
    # the demo 邻长 logs in and sees their households
    c = app.test_client()
    page = c.get("/login").data.decode()
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    r = c.post("/login", data={"phone": "13800000005", "password": DEMO_PASSWORD,
                               "csrf_token": token})
    assert r.status_code == 303
    home = c.get("/duties/")
    assert home.status_code == 200 and "我的联系户" in home.data.decode()

    # a second run leaves the data alone
    before = _demo_counts()
    r = runner.invoke(args=["seed", "demo"])
    assert r.exit_code == 0
    assert "跳过演示数据" in r.output
    assert _demo_counts() == before
    # --force cannot load the same demo accounts twice: a clear error, nothing added
    r = runner.invoke(args=["seed", "demo", "--force"])
    assert r.exit_code == 1
    assert "演示账号已存在" in r.output and "Traceback" not in r.output
    db.session.rollback()
    assert _demo_counts() == before


def check_demo_points(app, now):
    """The demo's ledger: every log paid by the rules (caps kept), one voided and taken back,
    the requests and 议事 paid by their hooks, the store, two vouchers of the demo 邻长, a breach
    with its answer, and last quarter's 履职评议 with 优秀 among them."""
    from portal.blueprints.points import services as points
    from portal.blueprints.points.models import (
        Breach,
        PointsEntry,
        PointsRule,
        Redemption,
        Review,
        Reward,
    )
    from portal.seed import DEMO_PASSWORD

    events = dict(db.session.execute(
        select(PointsRule.event, func.count(PointsEntry.id))
        .join(PointsRule, PointsEntry.rule_id == PointsRule.id)
        .where(PointsEntry.kind == "award").group_by(PointsRule.event)).all())
    for event in ("duty_log", "request_on_time", "request_at_neighborhood", "agenda_raise",
                  "agenda_attend", "breach"):
        assert events.get(event, 0) >= 1, (event, events)
    # a log pays at most its 1 point, at most 5 a day per person, and most logs are paid
    paid = db.session.execute(
        select(PointsEntry.user_id, PointsEntry.at, PointsEntry.delta, PointsEntry.source_id)
        .where(PointsEntry.source_type == "duty_log", PointsEntry.kind == "award")).all()
    assert all(delta == 1 for *_, delta, _ in paid)
    assert len({source for *_, source in paid}) == len(paid) >= 0.8 * count(DutyLog)
    per_day = Counter((user_id, to_local(at).date()) for user_id, at, *_ in paid)
    assert max(per_day.values()) <= 5
    # one log voided by its 邻长: kept, its point taken back, shown struck through
    voided = db.session.scalars(select(DutyLog).where(DutyLog.voided_at.is_not(None))).all()
    assert len(voided) == 1 and voided[0].void_reason
    hu = user("13800000005")
    assert voided[0].user_id == hu.id and voided[0].voided_by_id == hu.id
    back = db.session.scalars(select(PointsEntry).where(PointsEntry.kind == "reversal")).all()
    assert [b.reverses_id for b in back] == [db.session.scalar(select(PointsEntry.id).where(
        PointsEntry.source_type == "duty_log", PointsEntry.source_id == voided[0].id))]
    # the 邻长 have points, most of them
    chiefs = db.session.scalars(select(Post.user_id).where(Post.role == "neighbor_chief")).all()
    assert sum(points.balance(uid) > 0 for uid in chiefs) >= 60
    # the store, and the demo 邻长's vouchers: one used, one not yet
    rewards = {r.name: r for r in db.session.scalars(select(Reward))}
    assert {n: rewards[n].cost for n in rewards} == {
        "季度红色电影观影": 30, "村BA篮球赛门票": 50, "印山红游船票": 40, "环湖巴士乘车券": 20}
    assert rewards["村BA篮球赛门票"].stock == 20 and rewards["印山红游船票"].stock == 10
    today = local_today(now)
    assert rewards["季度红色电影观影"].valid_from == period_start("quarter", today)
    vouchers = db.session.scalars(select(Redemption).where(Redemption.user_id == hu.id)
                                  .order_by(Redemption.id)).all()
    assert [v.status for v in vouchers] == ["used", "issued"]
    spent = sum(v.cost for v in vouchers)
    assert rewards["环湖巴士乘车券"].stock + rewards["季度红色电影观影"].stock == 70 - 2
    assert points.balance(hu.id) >= 0
    assert db.session.scalar(select(func.sum(PointsEntry.delta)).where(
        PointsEntry.user_id == hu.id, PointsEntry.kind == "spend")) == -spent
    # a breach recorded by the 组长 against one of his 邻长, who answered it; it cost points
    (breach,) = db.session.scalars(select(Breach)).all()
    assert breach.recorded_by_id == user("13800000004").id and breach.user_id in chiefs
    assert breach.response and breach.responded_at > breach.recorded_at
    assert db.session.scalar(select(PointsEntry.delta).where(
        PointsEntry.source_type == "breach", PointsEntry.source_id == breach.id)) < 0
    # last quarter's 履职评议: graded by the 组长, results from the thresholds, 优秀 among them
    start, end = points.period_bounds(points.previous_quarter(today))
    reviews = db.session.scalars(select(Review).where(Review.period_start == start,
                                                      Review.period_end == end)).all()
    assert len(reviews) >= 5
    assert sum(r.result == "excellent" for r in reviews) >= 2
    assert len({r.result for r in reviews}) >= 2
    town = db.session.scalar(select(Region).where(Region.level == "town"))
    assert hu.id in {r.user_id for r in points.excellent(town.path, start, end)}
    for r in reviews:
        assert r.comment and r.households > 0 and r.reviewed_at <= now
    # the 邻长 sees the voided log struck through on the household's page
    c = app.test_client()
    page = c.get("/login").data.decode()
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    c.post("/login", data={"phone": "13800000005", "password": DEMO_PASSWORD,
                           "csrf_token": token})
    html = c.get(f"/duties/households/{voided[0].household_id}").data.decode()
    assert "已作废" in html and voided[0].void_reason in html


def test_seed_demo_force_next_to_other_data(runner, make_region):
    make_region("别的镇")
    r = runner.invoke(args=["seed", "demo"])
    assert "跳过演示数据" in r.output
    assert count(Household) == 0
    r = runner.invoke(args=["seed", "demo", "--force"])
    assert r.exit_code == 0, r.output
    assert db.session.scalar(select(func.count()).where(Region.level == "town")) == 2
    assert count(Household) >= 600


def test_seed_demo_clash_with_existing_accounts_saves_nothing(runner, world):
    """The generated chiefs' numbers (138000001xx) are taken by the world's accounts."""
    before = _demo_counts()
    r = runner.invoke(args=["seed", "demo", "--force"])
    assert r.exit_code == 1
    assert "演示数据与已有账号冲突" in r.output and "Traceback" not in r.output
    db.session.rollback()
    assert _demo_counts() == before


# -- init-db ------------------------------------------------------------------------------------
def test_init_db_on_an_empty_database(empty_db_url):
    fresh = create_app({"TESTING": True, "DATABASE_URL": empty_db_url,
                        "SECRET_KEY": "test", "RATELIMIT_STORAGE_URI": "memory://"})
    with fresh.app_context():
        try:
            assert inspect(db.engine).get_table_names() == []
            r = fresh.test_cli_runner().invoke(args=["init-db"])
            assert r.exit_code == 0, r.output
            assert "数据库已就绪" in r.output
            assert "portal:portal@" not in r.output  # the password is not echoed
            tables = set(inspect(db.engine).get_table_names())
            assert tables == {t.name for t in db.metadata.sorted_tables} | {"alembic_version"}
            # running it again is harmless (an upgrade with nothing to do)
            r = fresh.test_cli_runner().invoke(args=["init-db"])
            assert r.exit_code == 0, r.output
            assert set(inspect(db.engine).get_table_names()) == tables
        finally:
            db.session.remove()
            db.engine.dispose()
