"""作废: voiding a duty log logged by mistake. Its author may within 7 days of logging it,
staff over its 邻 at any time; a reason is required. The log stays (struck through, with the
reason), its points go back, the household's last contact is worked out again without it, and
no count of logs includes it any more.

The duties views run at the frozen instant NOW (Wed 2026-01-21 12:00 Asia/Shanghai)."""

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.blueprints.duties import services as svc
from portal.blueprints.duties.models import DutyLog
from portal.blueprints.points import services as points
from portal.blueprints.points.models import PointsEntry
from portal.errors import ServiceError
from portal.extensions import db
from tests.conftest import csrf_from
from tests.duties.conftest import NOW
from tests.duties.test_duty_log import columns, duty_item, loaded

DAY = timedelta(days=1)
REASON = "记错了户，实际走访的是隔壁乙家"


def log(world, at, method="phone", household=None, user=None, now=None):
    """A duty log saved through the service (points and all), logged at ``now`` (default:
    a minute after it happened); returns its id."""
    entry, created = svc.log_duty(
        user or world.neighbor_chief, loaded(household or world.hh1),
        duty_item_id=duty_item(world.town).id, method=method, occurred_at=at,
        note="电话问候老人", photo=None, token=str(uuid.uuid4()),
        now=now or at + timedelta(minutes=1))
    assert created
    db.session.commit()
    return entry.id


def get_log(log_id) -> DutyLog:
    db.session.expire_all()
    return db.session.get(DutyLog, log_id)


def void(client, log_id, reason=REASON, token=True):
    page = client.get(f"/duties/logs/{log_id}/void")
    data = {"reason": reason}
    if token:
        data["csrf_token"] = csrf_from(page) if page.status_code == 200 else csrf_from(
            client.get("/account/password"))
    return client.post(f"/duties/logs/{log_id}/void", data=data)


def reversals(log_id=None) -> list[PointsEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(PointsEntry).where(PointsEntry.kind == "reversal")
                                   .order_by(PointsEntry.id)))


def audits() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "duty_log.void").order_by(AuditEntry.id)))


@pytest.fixture
def chief(world, login_as, frozen_now):
    return login_as(world.neighbor_chief)


@pytest.fixture
def two_logs(world, frozen_now):
    """甲1家: a visit three days ago, then a phone call yesterday (each paid 1 point)."""
    visit = log(world, NOW - 3 * DAY, method="visit")
    call = log(world, NOW - DAY, method="phone")
    assert points.balance(world.neighbor_chief.id) == 2
    return visit, call


# -- the author voids -------------------------------------------------------------------------
def test_the_author_voids_a_log_and_everything_follows(world, chief, two_logs):
    visit, call = two_logs
    assert columns(world.hh1) == (NOW - 3 * DAY, NOW - DAY, "phone")
    assert svc.logs_this_month(world.neighbor_chief.id, NOW) == 2

    page = chief.get(f"/duties/households/{world.hh1.id}").data.decode()
    assert f'href="/duties/logs/{call}/void"' in page
    assert f'href="/duties/logs/{visit}/void"' in page
    confirm = chief.get(f"/duties/logs/{call}/void")
    html = confirm.data.decode()
    assert confirm.status_code == 200 and "确认作废" in html and 'name="reason"' in html
    assert "电话" in html and "甲1家" in html

    r = void(chief, call)
    assert r.status_code == 303
    assert r.headers["Location"].endswith(f"/duties/households/{world.hh1.id}")
    after = chief.get(r.headers["Location"]).data.decode()
    assert "已作废" in after and REASON in after and "收回积分 1 条" in after
    # the log stays, struck through, without its link
    assert re.search(rf'<li id="log-{call}"><s>', after)
    assert f'href="/duties/logs/{call}/void"' not in after
    assert f'href="/duties/logs/{visit}/void"' in after

    entry = get_log(call)
    assert (entry.voided_at, entry.voided_by_id, entry.void_reason) == (
        NOW, world.neighbor_chief.id, REASON)
    # points: the award and its reversal, balance back to the one log left
    back = reversals()
    assert len(back) == 1 and back[0].delta == -1 and back[0].reason == f"履职记录作废：{REASON}"
    assert back[0].operator_id == world.neighbor_chief.id
    assert points.balance(world.neighbor_chief.id) == 1
    # the household's last contact is the visit again
    assert columns(world.hh1) == (NOW - 3 * DAY, NOW - 3 * DAY, "visit")
    # the counts leave it out
    assert svc.logs_this_month(world.neighbor_chief.id, NOW) == 1
    assert svc.neighborhood_logs_this_month(world.hood1.id, NOW) == 1
    assert svc.subtree_stats(world.group1, NOW)[world.hood1.id].logs_month == 1
    total, _rows = svc.dashboard_rows(world.village1, NOW)
    assert total.logs_month == 1
    assert ">1</b>本月记录" in chief.get("/duties/").data.decode()
    # and the audit says who, why, and what went back
    (row,) = audits()
    assert row.user_id == world.neighbor_chief.id and row.object_id == call
    assert row.region_path == world.hood1.path
    assert row.detail_dict == {"household": world.hh1.id, "method": "phone",
                               "reason": REASON, "reversed": 1}


def test_voiding_the_only_visit_clears_the_last_visit(world, chief, two_logs):
    visit, _call = two_logs
    assert void(chief, visit).status_code == 303
    assert columns(world.hh1) == (None, NOW - DAY, "phone")


def test_voiding_the_last_log_leaves_no_contact(world, chief, frozen_now):
    only = log(world, NOW - DAY, method="visit")
    assert void(chief, only).status_code == 303
    assert columns(world.hh1) == (None, None, None)
    assert points.balance(world.neighbor_chief.id) == 0


def test_a_second_void_is_refused(world, chief, two_logs):
    _visit, call = two_logs
    assert void(chief, call).status_code == 303
    page = chief.get(f"/duties/logs/{call}/void")
    assert page.status_code == 200 and "已于" in page.data.decode()
    assert "确认作废" not in page.data.decode()
    r = void(chief, call, reason="再作废一次")  # a second tap, or a second tab
    assert r.status_code == 422 and "已于" in r.data.decode() and REASON in r.data.decode()
    assert get_log(call).void_reason == REASON
    assert len(reversals()) == 1 and len(audits()) == 1
    assert points.balance(world.neighbor_chief.id) == 1
    # the service says the same
    with pytest.raises(ServiceError, match="已经作废"):
        svc.void_log(world.neighbor_chief, _scope(world.neighbor_chief), get_log(call),
                     "又一次", NOW)
    db.session.rollback()


def _scope(user):
    from portal.scope import Scope
    from tests.conftest import load_user

    return Scope.for_user(load_user(user.id, refresh=True))


# -- who may void -----------------------------------------------------------------------------
def test_after_seven_days_only_staff_may_void(world, login_as, frozen_now):
    old = log(world, NOW - 8 * DAY, now=NOW - 8 * DAY + timedelta(minutes=5))
    recent = log(world, NOW - 8 * DAY, now=NOW - 7 * DAY + timedelta(minutes=5))
    chief = login_as(world.neighbor_chief)
    page = chief.get(f"/duties/households/{world.hh1.id}").data.decode()
    assert f"/duties/logs/{old}/void" not in page
    assert f"/duties/logs/{recent}/void" in page  # logged 6 days 23 hours ago
    assert chief.get(f"/duties/logs/{old}/void").status_code == 403
    assert void(chief, old).status_code == 403
    assert get_log(old).voided_at is None and reversals() == []

    staff = login_as(world.village_staff)
    page = staff.get(f"/duties/households/{world.hh1.id}").data.decode()
    assert f"/duties/logs/{old}/void" in page
    r = void(staff, old, reason="重复记录")
    assert r.status_code == 303
    entry = get_log(old)
    assert entry.voided_by_id == world.village_staff.id and entry.void_reason == "重复记录"
    assert [e.operator_id for e in reversals()] == [world.village_staff.id]
    assert points.balance(world.neighbor_chief.id) == 1


def test_the_town_staff_may_void_too(world, login_as, frozen_now):
    entry = log(world, NOW - 30 * DAY)
    assert void(login_as(world.town_staff), entry, reason="村里核实未走访").status_code == 303
    assert get_log(entry).voided_at == NOW


@pytest.mark.parametrize("who, status", [
    ("neighbor_chief2", 404),  # 邻长 of a 邻 in the other village
    ("volunteer", 404),        # sees no households
    ("nobody", 404),
    ("group_chief", 403),      # sees the household, did not log it, is not staff
    ("area_chief", 403),
])
def test_others_may_not_void(world, login_as, frozen_now, who, status):
    entry = log(world, NOW - DAY)
    c = login_as(getattr(world, who))
    assert c.get(f"/duties/logs/{entry}/void").status_code == status
    assert void(c, entry).status_code == status
    if status == 403:
        page = c.get(f"/duties/households/{world.hh1.id}").data.decode()
        assert "/void" not in page
    assert get_log(entry).voided_at is None
    assert reversals() == [] and audits() == []
    assert points.balance(world.neighbor_chief.id) == 1


def test_another_chiefs_log_in_the_same_neighborhood(world, login_as, make_user, frozen_now):
    """A second 邻长 of the same 邻 sees the log but may not void it (not theirs, not staff)."""
    other = make_user("另一邻长", role="neighbor_chief", region=world.hood1)
    entry = log(world, NOW - DAY)
    c = login_as(other)
    assert c.get(f"/duties/logs/{entry}/void").status_code == 403
    mine = log(world, NOW - DAY, user=other)
    assert void(c, mine).status_code == 303


def test_a_log_from_before_a_move_is_voided_by_the_staff_of_its_neighborhood(
        world, login_as, count_queries, frozen_now):
    """The log stays with the 邻 it was logged in; after the household moved, its old 邻长 no
    longer sees the household, and staff over the old 邻 may void the log."""
    from portal.blueprints.regions import services as regions

    entry = log(world, NOW - DAY)
    regions.move_household(world.village_staff, loaded(world.hh1), world.hood1b)
    db.session.commit()
    assert void(login_as(world.neighbor_chief), entry).status_code == 404
    staff = login_as(world.village_staff)
    with count_queries() as n:
        page = staff.get(f"/duties/households/{world.hh1.id}").data.decode()
    assert f"/duties/logs/{entry}/void" in page
    assert n.count <= 8, n.statements
    assert void(staff, entry, reason="核实后是误记").status_code == 303
    voided = get_log(entry)
    assert voided.voided_by_id == world.village_staff.id
    assert voided.neighborhood_id == world.hood1.id
    assert audits()[0].region_path == world.hood1.path


def test_a_missing_log_is_not_found(world, chief):
    assert chief.get("/duties/logs/999999/void").status_code == 404
    assert void(chief, 999999).status_code == 404


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("reason, message", [
    ("", "请填写作废理由"),
    ("   ", "请填写作废理由"),
    ("错", "至少 2 个字"),
    ("错" * 201, "最多 200 字"),
])
def test_a_bad_reason_is_refused_and_nothing_is_saved(world, chief, two_logs, reason, message):
    _visit, call = two_logs
    r = void(chief, call, reason=reason)
    html = r.data.decode()
    assert r.status_code == 422 and message in html
    assert "确认作废" in html and "甲1家" in html  # the form again, to fix the reason
    entry = get_log(call)
    assert entry.voided_at is None and entry.void_reason == ""
    assert reversals() == [] and audits() == []
    assert points.balance(world.neighbor_chief.id) == 2
    assert columns(world.hh1) == (NOW - 3 * DAY, NOW - DAY, "phone")


def test_a_post_without_the_csrf_token_is_refused(world, chief, two_logs):
    _visit, call = two_logs
    r = void(chief, call, token=False)
    assert r.status_code == 400
    assert get_log(call).voided_at is None and reversals() == []


def test_two_hundred_characters_are_enough(world, chief, two_logs):
    _visit, call = two_logs
    assert void(chief, call, reason="错" * 200).status_code == 303
    assert get_log(call).void_reason == "错" * 200


# -- budget -----------------------------------------------------------------------------------
def test_the_pages_stay_within_the_query_budget(world, chief, two_logs, count_queries,
                                                login_as):
    _visit, call = two_logs
    assert void(chief, call).status_code == 303
    staff = login_as(world.village_staff)
    for c, url in ((chief, f"/duties/households/{world.hh1.id}"),
                   (staff, f"/duties/households/{world.hh1.id}"),
                   (chief, f"/duties/logs/{_visit}/void"),
                   (chief, f"/duties/logs/{call}/void")):
        with count_queries() as n:
            r = c.get(url)
        assert r.status_code == 200
        assert n.count <= 8, (url, n.count, [" ".join(s.split())[:80] for s in n.statements])
