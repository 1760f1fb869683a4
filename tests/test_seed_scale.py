"""`flask seed scale`: the bulk benchmark data (COPY on PostgreSQL, executemany on SQLite).

A small set (600 households, 2 towns, 3 logs each) checked for shape and consistency: ~13
households per 邻, one account per post, unique phones, last-contact columns equal to the logs,
appending a second set without id clashes, and a 邻长 from the data logging in.
"""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.blueprints.auth.models import User
from portal.blueprints.duties import services as svc
from portal.blueprints.duties.models import ChecklistItem, ContactRule, DutyLog
from portal.blueprints.regions.models import (
    Household,
    HouseholdTag,
    Post,
    Region,
    household_tag_links,
)
from portal.clock import utcnow
from portal.extensions import db
from portal.phones import PHONE_RE
from portal.seed_scale import SCALE_PASSWORD, phones

ARGS = ["seed", "scale", "--households", "600", "--towns", "2", "--logs-per-household", "3"]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def scale(runner):
    r = runner.invoke(args=ARGS)
    assert r.exit_code == 0, r.output
    assert "规模数据已装入" in r.output and "户 600" in r.output
    return r.output


def test_counts_and_tree(scale):
    assert count(Region, Region.level == "town") == 2
    assert count(Region, Region.level == "neighborhood") == 600 * 3 // 40
    assert count(Household) == 600
    # the towns came through create_region: their defaults are installed
    assert count(ChecklistItem, ChecklistItem.kind == "duty") == 2 * 7
    assert count(ContactRule) == 2 * 3
    assert count(HouseholdTag) == 2 * 6
    # every node's path is its parent's path plus its id, and levels follow the tree
    regions = {r.id: r for r in db.session.scalars(select(Region))}
    for r in regions.values():
        parent = regions.get(r.parent_id)
        assert r.path == (parent.path if parent else "/") + f"{r.id}/"
        assert (parent.child_level if parent else "town") == r.level


def test_about_thirteen_households_per_neighborhood(scale):
    sizes = Counter(db.session.scalars(select(Household.neighborhood_id)))
    hoods = set(db.session.scalars(select(Region.id).where(Region.level == "neighborhood")))
    assert set(sizes) == hoods
    assert set(sizes.values()) <= {13, 14}


def test_one_account_per_post(scale):
    roles = Counter(db.session.scalars(select(Post.role)))
    levels = Counter(db.session.scalars(select(Region.level)))
    assert roles["neighbor_chief"] == levels["neighborhood"]
    assert roles["group_chief"] == levels["group"]
    assert roles["area_chief"] == levels["area"]
    assert roles["village_staff"] == 2 * levels["village"]
    assert roles["town_staff"] == 2 * levels["town"]
    assert count(User) == sum(roles.values())
    assert db.session.scalar(select(func.count(func.distinct(Post.user_id)))) == count(User)
    # every 邻 has exactly one active 邻长, on a post of the right level
    wrong = db.session.scalar(select(func.count()).select_from(Post)
                              .join(Region, Post.region_id == Region.id)
                              .where(Post.role == "neighbor_chief",
                                     Region.level != "neighborhood"))
    assert wrong == 0


def test_phones_are_unique_mobile_numbers(scale):
    household_phones = list(db.session.scalars(select(Household.phone)))
    user_phones = list(db.session.scalars(select(User.phone)))
    for numbers in (household_phones, user_phones):
        assert None not in numbers
        assert len(set(numbers)) == len(numbers)
        assert all(PHONE_RE.match(p) for p in numbers)


def test_special_households_are_tagged(scale):
    special = set(db.session.scalars(select(Household.id).where(
        Household.special_since.is_not(None))))
    tagged = set(db.session.scalars(select(household_tag_links.c.household_id)))
    assert special == tagged
    assert 0.1 < len(special) / 600 < 0.3
    # tags belong to the household's own town
    for path, town_id in db.session.execute(
            select(Region.path, HouseholdTag.town_id).select_from(household_tag_links)
            .join(Household, Household.id == household_tag_links.c.household_id)
            .join(Region, Region.id == Household.neighborhood_id)
            .join(HouseholdTag, HouseholdTag.id == household_tag_links.c.tag_id)):
        assert path.startswith(f"/{town_id}/")


def test_logs_are_plausible(scale):
    now = utcnow()
    n = count(DutyLog)
    assert 0.7 * 600 * 3 < n < 1.3 * 600 * 3
    tokens = list(db.session.scalars(select(DutyLog.form_token)))
    assert len(set(tokens)) == len(tokens) and max(map(len, tokens)) <= 36
    first, last = db.session.execute(
        select(func.min(DutyLog.occurred_at), func.max(DutyLog.occurred_at))).one()
    assert first >= now - timedelta(days=93) and last <= now
    # each log: the household's own 邻, that 邻's 邻长, a 七员 item of the household's town
    logs = db.session.execute(
        select(DutyLog, Household.neighborhood_id, Post.user_id, ChecklistItem.kind,
               ChecklistItem.town_id, Region.path)
        .join(Household, Household.id == DutyLog.household_id)
        .join(Region, Region.id == Household.neighborhood_id)
        .join(Post, (Post.region_id == Household.neighborhood_id)
              & (Post.role == "neighbor_chief"))
        .join(ChecklistItem, ChecklistItem.id == DutyLog.duty_item_id)).all()
    assert len(logs) == n
    for log, hood, chief, kind, town_id, path in logs:
        assert log.neighborhood_id == hood and log.user_id == chief
        assert kind == "duty" and path.startswith(f"/{town_id}/")
        assert log.method in ("visit", "phone", "wechat", "other")


def test_last_contact_columns_match_the_logs(scale):
    latest = dict(db.session.execute(select(DutyLog.household_id, func.max(DutyLog.occurred_at))
                                     .group_by(DutyLog.household_id)).all())
    latest_visit = dict(db.session.execute(
        select(DutyLog.household_id, func.max(DutyLog.occurred_at))
        .where(DutyLog.method == "visit").group_by(DutyLog.household_id)).all())
    methods_at: dict[tuple, set] = {}
    for hid, at, method in db.session.execute(
            select(DutyLog.household_id, DutyLog.occurred_at, DutyLog.method)):
        methods_at.setdefault((hid, at), set()).add(method)
    households = list(db.session.scalars(select(Household)))
    assert sum(1 for h in households if h.last_contact_at) == len(latest)
    for h in households:
        assert h.last_contact_at == latest.get(h.id)
        assert h.last_visit_at == latest_visit.get(h.id)
        if h.last_contact_at is None:
            assert h.last_contact_method is None
        else:
            assert h.last_contact_method in methods_at[(h.id, h.last_contact_at)]
            assert h.created_at <= h.last_contact_at
        assert h.special_since is None or h.special_since >= h.created_at


def test_a_second_run_appends(runner, scale, make_region, make_user, make_household):
    before = {m.__tablename__: count(m) for m in (Region, User, Post, Household, DutyLog)}
    r = runner.invoke(args=ARGS)
    assert r.exit_code == 0, r.output
    after = {m.__tablename__: count(m) for m in (Region, User, Post, Household, DutyLog)}
    assert after["households"] == 2 * before["households"]
    assert after["users"] == 2 * before["users"]
    assert after["regions"] == 2 * before["regions"]
    assert after["duty_logs"] > before["duty_logs"]
    assert count(Region, Region.level == "town") == 4
    assert len(set(db.session.scalars(select(Region.name).where(Region.parent_id.is_(None))))) == 4
    # the ORM's own inserts continue after the bulk ids (PostgreSQL sequences were moved on)
    tops = {m: db.session.scalar(select(func.max(m.id))) for m in (Region, User, Post, Household,
                                                                   DutyLog)}
    town = make_region("新建镇")
    hood = make_region("新建邻", make_region("新建组", make_region("新建片", make_region("新建村",
                                                                                 town))))
    staff = make_user("新干部", role="town_staff", region=town)
    household = make_household(hood)
    log = DutyLog(household_id=household.id, neighborhood_id=hood.id, user_id=staff.id,
                  duty_item_id=db.session.scalar(select(ChecklistItem.id).where(
                      ChecklistItem.town_id == town.id, ChecklistItem.kind == "duty").limit(1)),
                  method="visit", occurred_at=utcnow(), form_token=svc.new_form_token())
    db.session.add(log)
    db.session.commit()
    post = db.session.scalar(select(Post).where(Post.user_id == staff.id))
    for obj in (town, staff, post, household, log):
        assert obj.id > tops[type(obj)]


def test_a_neighbor_chief_from_the_data_logs_in(scale, login_as, count_queries):
    phone = phones("neighbor_chief")[0]
    chief = db.session.scalar(select(User).where(User.phone == phone))
    hood = db.session.scalar(select(Post.region_id).where(Post.user_id == chief.id))
    mine = set(db.session.scalars(select(Household.id).where(Household.neighborhood_id == hood)))
    c = login_as(chief, SCALE_PASSWORD)
    with count_queries() as n:
        r = c.get("/duties/")
    assert r.status_code == 200
    html = r.data.decode()
    assert "我的联系户" in html
    for hid in mine:
        assert f'id="hh-{hid}"' in html
    assert html.count('id="hh-') == len(mine)
    assert n.count <= 8


def test_town_dashboard_on_scale_data_agrees_with_the_rows(scale, login_as, count_queries):
    """The dashboard's SQL aggregates equal counting household by household in Python."""
    now = utcnow()
    phone = phones("town_staff")[0]
    staff = db.session.scalar(select(User).where(User.phone == phone))
    town = db.session.scalar(select(Region).join(Post, Post.region_id == Region.id)
                             .where(Post.user_id == staff.id))
    windows = svc.rule_windows(town.id, now)
    households = list(db.session.scalars(
        select(Household).join(Region, Household.neighborhood_id == Region.id)
        .where(Region.path.startswith(town.path))))
    overdue = sum(1 for h in households if svc.contact_state(h, windows).state == "overdue")
    logs = count(DutyLog, DutyLog.neighborhood_id.in_([h.neighborhood_id for h in households]),
                 DutyLog.occurred_at >= svc.month_start_utc(now))
    total, rows = svc.dashboard_rows(town, now)
    assert (total.households, total.overdue, total.logs_month) == (len(households), overdue, logs)
    assert sum(s.households for _, s, _ in rows) == len(households)
    assert sum(s.logs_month for _, s, _ in rows) == logs
    stats = svc.subtree_stats(town, now)
    assert sum(s.households for s in stats.values()) == len(households)
    c = login_as(staff, SCALE_PASSWORD)
    with count_queries() as n:
        r = c.get(f"/duties/dashboard?region={town.id}")
    assert r.status_code == 200
    assert n.count <= 8
