"""The flask commands: create-user, seed demo, init-db."""


import pytest
from sqlalchemy import distinct, func, inspect, select
from werkzeug.security import check_password_hash

from portal import create_app
from portal.audit import AuditEntry
from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import DutyLog
from portal.blueprints.regions.models import Household, Post, Region
from portal.clock import to_local, utcnow
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
    # about three months of logs, none in the future, spread over three calendar months
    now = utcnow()
    first, last = db.session.execute(
        select(func.min(DutyLog.occurred_at), func.max(DutyLog.occurred_at))).one()
    assert count(DutyLog) >= 500
    assert last <= now
    assert (now - first).days <= 100
    months = {(to_local(t).year, to_local(t).month)
              for t in db.session.scalars(select(DutyLog.occurred_at))}
    assert len(months) >= 3
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
