"""The dashboard (ledgers.dashboard) and its monthly PDF: every figure on a small hand-built data
set, the month boundary in Asia/Shanghai time, the SVG charts, the PDF's text, the query budget
and the monthly cache's staleness rule."""

import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.extensions import db

#: Monday 2026-11-16 02:00 UTC = 10:00 in Asia/Shanghai.
NOW = datetime(2026, 11, 16, 2, 0)
SVG = "{http://www.w3.org/2000/svg}"


def utc(local: str) -> datetime:
    """A local (Asia/Shanghai) wall-clock time "2026-11-01 00:30" as stored naive UTC."""
    from portal.clock import local_to_utc

    return local_to_utc(datetime.fromisoformat(local))


@pytest.fixture
def frozen(monkeypatch):
    from portal.blueprints.ledgers import dashboard, dashboard_views

    monkeypatch.setattr(dashboard_views, "utcnow", lambda: NOW)
    monkeypatch.setattr(dashboard, "utcnow", lambda: NOW)
    return NOW


def add_log(household, user, at: datetime, method="visit", voided=False):
    from portal.blueprints.duties.models import ChecklistItem, DutyLog
    from portal.blueprints.regions.models import Region

    town_id = db.session.get(Region, household.neighborhood_id).town_id
    item = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == town_id, ChecklistItem.kind == "duty").limit(1))
    log = DutyLog(household_id=household.id, neighborhood_id=household.neighborhood_id,
                  user_id=user.id, duty_item_id=item, method=method, occurred_at=at,
                  form_token=str(uuid.uuid4()), created_at=at,
                  voided_at=at + timedelta(hours=1) if voided else None,
                  void_reason="记错了" if voided else "")
    db.session.add(log)
    db.session.commit()
    return log


@pytest.fixture
def data(world, make_user, frozen):
    """The world plus duty logs, requests closed at different levels, an overdue one,
    mediations, an ended post, logs and a mediation either side of a local month boundary."""
    from portal.blueprints.regions.models import Post
    from portal.blueprints.requests import services as rsvc
    from portal.blueprints.requests.models import Mediation, Request, RequestCategory

    w = world
    chief, chief2 = w.neighbor_chief, w.neighbor_chief2
    d = SimpleNamespace(w=w)
    # duty logs: village 1
    add_log(w.hh1, chief, utc("2026-11-03 09:00"))                      # Nov, 上门
    add_log(w.hh1x, chief, utc("2026-11-05 09:00"), "phone")            # Nov
    add_log(w.hh1, chief, utc("2026-11-06 09:00"), voided=True)         # voided: nowhere
    add_log(w.hh1x, chief, utc("2026-11-01 00:30"))                     # Nov (UTC: Oct 31)
    d.oct_log = add_log(w.hh1b, chief, utc("2026-10-31 23:30"), "wechat")  # Oct
    # village 2
    add_log(w.hh2, chief2, utc("2026-11-10 09:00"), "wechat")           # Nov
    add_log(w.hh2, chief2, utc("2026-10-15 09:00"))                     # Oct, 上门
    add_log(w.hh2b, chief2, utc("2025-11-20 09:00"))                    # before the window

    cat = db.session.scalar(select(RequestCategory).where(
        RequestCategory.town_id == w.town.id).order_by(RequestCategory.id).limit(1))

    def req(household, created: datetime, closed: datetime | None = None, level=0):
        from sqlalchemy.orm import joinedload

        from portal.blueprints.regions.models import Household

        h = db.session.execute(select(Household).options(joinedload(Household.neighborhood))
                               .where(Household.id == household.id)).scalar_one()
        r, _ = rsvc.submit(h, {"category_id": cat.id, "description": "路灯坏了，晚上很黑。",
                                "contact_name": "住户", "contact_phone": None,
                                "contact_note": ""},
                           source="resident", actor=None, photo=None, token=str(uuid.uuid4()),
                           now=created)
        if closed:
            r.status, r.answer, r.closed_at, r.closed_level = "closed", "已处理。", closed, level
            r.level = level
        db.session.commit()
        return r

    d.r1 = req(w.hh1, utc("2026-11-02 10:00"), utc("2026-11-04 10:00"), 0)
    d.r2 = req(w.hh1x, utc("2026-10-20 10:00"), utc("2026-11-08 10:00"), 1)
    d.r3 = req(w.hh2, utc("2026-11-09 10:00"), utc("2026-11-12 10:00"), 2)
    d.r4 = req(w.hh1b, utc("2026-11-12 10:00"))                 # open, 邻 deadline long past
    d.r5 = req(w.hh2b, NOW - timedelta(minutes=5))              # open, within its deadline
    d.r6 = req(w.hh2, utc("2026-09-10 10:00"), utc("2026-10-03 10:00"), 3)
    staff = w.village_staff
    for r, held in ((d.r3, utc("2026-11-11 15:00")), (d.r2, utc("2026-10-25 15:00")),
                    (d.r1, utc("2026-11-01 00:10"))):
        db.session.add(Mediation(request_id=r.id, held_at=held, parties="两户邻居",
                                 outcome="not_agreed", recorded_by_id=staff.id))
    # an ended 邻长 post on 邻2b: not counted, and 邻2b is not covered
    gone = make_user("卸任邻长", "13800000199")
    db.session.add(Post(user_id=gone.id, region_id=w.hood2b.id, role="neighbor_chief",
                        ended_at=NOW - timedelta(days=3)))
    db.session.commit()
    assert db.session.get(Request, d.r4.id).status == "new"
    return d


def board(region, period="2026-11"):
    from portal.blueprints.ledgers import dashboard as svc
    from portal.blueprints.ledgers.dashboard_views import parse_period
    from portal.blueprints.requests.services import region_family

    p = parse_period(period, NOW)
    _, children = region_family(region)
    start, end = p.bounds
    out = svc.build(region, children, start, end, svc.window_for(p.last, NOW), NOW)
    db.session.commit()
    return out


def test_every_figure_of_the_town(data):
    w = data.w
    b = board(w.town)
    f = b.total
    assert (f.contacts, f.visits) == (4, 2)          # voided, October and 2025 logs left out
    assert f.collected == 4                           # r1 r3 r4 r5 (r2 was collected in Oct)
    assert f.closed_at == [1, 1, 1, 0] and f.services == 3  # r1 r2 r3 closed in November
    assert [f.closed_share(k) for k in range(4)] == [33, 33, 33, 0]
    assert (f.stayed_within(0), f.stayed_within(1)) == (33, 67)
    assert f.overdue_requests == 1                    # r4
    assert f.disputes == 2                            # 11-11 and 11-01 00:10 local
    assert f.chiefs == {"area_chief": 1, "group_chief": 1, "neighbor_chief": 2, "volunteer": 1}
    assert (f.households, f.covered, f.covered_pct) == (6, 4, 67)


def test_children_rows_add_up_and_follow_the_scope(data):
    w = data.w
    b = board(w.town)
    rows = {r.name: f for r, f in b.rows}
    assert set(rows) == {"村1", "村2"}
    v1, v2 = rows["村1"], rows["村2"]
    assert (v1.contacts, v1.collected, v1.services, v1.overdue_requests, v1.disputes) == \
        (3, 2, 2, 1, 1)
    assert (v2.contacts, v2.collected, v2.services, v2.overdue_requests, v2.disputes) == \
        (1, 2, 1, 0, 1)
    assert (v1.households, v1.covered, v2.households, v2.covered) == (3, 2, 3, 2)
    # a village's own board equals its row in the town's
    own = board(w.village1).total
    assert (own.contacts, own.collected, own.services, own.disputes, own.households) == \
        (3, 2, 2, 1, 3)
    assert own.chiefs == {"area_chief": 1, "group_chief": 1, "neighbor_chief": 1, "volunteer": 1}
    assert [r.name for r, _ in board(w.group1).rows] == ["邻11", "邻12"]


def test_on_time_share_is_the_duties_dashboards(data):
    from portal.blueprints.duties.services import dashboard_rows

    total, _ = dashboard_rows(data.w.town, NOW)
    f = board(data.w.town).total
    assert f.overdue_households == total.overdue and f.households == total.households
    assert f.on_time_pct == total.on_time_pct


def test_overdue_is_the_overdue_lists(data, scope_of):
    from portal.blueprints.requests.services import overdue_counts

    # the town's staff see every overdue list of the town; a request in several counts once
    counts = overdue_counts(scope_of(data.w.town_staff), NOW)
    assert max(counts) == 1 and board(data.w.town).total.overdue_requests == 1


def test_disputes_agree_with_the_commendations_snapshot(data):
    from portal.blueprints.commendations.services import stats_snapshot

    snap = stats_snapshot(data.w.village_staff.id, [data.w.hood1.id], date(2026, 11, 1),
                          date(2026, 12, 1))
    assert snap["disputes"] == board(data.w.town).total.disputes == 2


def test_month_boundary_is_local_time(data):
    w = data.w
    oct_ = board(w.town, "2026-10").total
    assert (oct_.contacts, oct_.visits) == (2, 1)    # 10-31 23:30 local and 10-15
    assert oct_.disputes == 1 and oct_.collected == 1 and oct_.closed_at == [0, 0, 0, 1]


def test_quarter_and_year(data):
    q4 = board(data.w.town, "2026Q4").total
    assert q4.contacts == 6 and q4.collected == 5 and q4.services == 4
    assert board(data.w.town, "2025").total.contacts == 1


def test_trend_months_and_cache(data):
    from portal.blueprints.ledgers.models import DutyMonthMark

    t = board(data.w.town).trend
    assert t.months[0] == date(2025, 12, 1) and t.months[-1] == date(2026, 11, 1)
    assert t.contacts[-2:] == [2, 4] and t.visits[-2:] == [1, 2]
    assert sum(t.contacts) == 6                      # 2025-11 is outside the window
    assert t.collected[-3:] == [1, 1, 4]
    assert t.closed_by_level[-2] == [0, 0, 0, 1] and t.closed_by_level[-1] == [1, 1, 1, 0]
    assert t.within_pct(0)[-1] == 33 and t.within_pct(1)[-1] == 67
    # eleven closed months counted into the cache once, and this month up to last midnight
    assert t.cached == 11
    marks = db.session.scalars(select(DutyMonthMark).where(
        DutyMonthMark.town_id == data.w.town.id).order_by(DutyMonthMark.month)).all()
    assert len(marks) == 12 and all(m.filled_version == m.version for m in marks)
    assert marks[-2].filled_until == utc("2026-11-01 00:00")
    assert marks[-1].filled_until == utc("2026-11-16 00:00")
    again = board(data.w.town)
    assert again.filled == 0 and again.trend.contacts == t.contacts
    assert (again.total.contacts, again.total.visits) == (4, 2)


def test_cached_month_follows_voids_and_back_dated_logs(data, scope_of):
    """The staleness rule: log_duty and void_log keep a cached month right."""
    from portal.blueprints.duties import services as dsvc
    from portal.blueprints.duties.models import ChecklistItem, DutyLog
    from portal.blueprints.regions.models import Household

    w = data.w
    assert board(w.town).trend.contacts[-2] == 2
    # void the October log (staff, a month later)
    log = db.session.get(DutyLog, data.oct_log.id)
    dsvc.void_log(w.village_staff, scope_of(w.village_staff), log, "记到别户了", NOW)
    db.session.commit()
    b = board(w.town)
    assert b.filled == 1 and b.trend.contacts[-2] == 1
    # a back-dated log into October through the service
    item = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == w.town.id, ChecklistItem.kind == "duty").limit(1))
    from sqlalchemy.orm import joinedload

    hh = db.session.execute(select(Household).options(joinedload(Household.neighborhood))
                            .where(Household.id == w.hh1.id)).scalar_one()
    dsvc.log_duty(w.neighbor_chief, hh, duty_item_id=item, method="visit",
                  occurred_at=utc("2026-10-20 09:00"), note="补记", photo=None,
                  token=str(uuid.uuid4()), now=NOW)
    db.session.commit()
    b = board(w.town)
    assert b.filled == 1 and (b.trend.contacts[-2], b.trend.visits[-2]) == (2, 2)
    assert board(w.town, "2026-10").total.contacts == 2   # the live count agrees


def test_bulk_changes_need_a_refresh(data):
    """What the cache does not see: a log written past the services stays out of a cached
    month until ``refresh_all`` (``flask ledgers refresh-figures``)."""
    from portal.blueprints.ledgers.dashboard import refresh_all

    w = data.w
    assert board(w.town).trend.contacts[-2] == 2
    add_log(w.hh2, w.neighbor_chief2, utc("2026-10-16 09:00"))
    assert board(w.town).trend.contacts[-2] == 2      # stale, as documented
    refresh_all()
    db.session.commit()
    assert board(w.town).trend.contacts[-2] == 3


def test_a_fill_that_raced_a_change_is_not_trusted(data):
    from portal.blueprints.ledgers import dashboard as svc
    from portal.blueprints.ledgers.models import DutyMonthMark

    w = data.w
    oct1 = date(2026, 10, 1)
    svc.logs_changed(w.town.id, utc("2026-10-10 09:00"), NOW)   # version 1
    db.session.commit()
    # a fill that read version 0 before the change must not mark the month filled
    assert not svc.fill_month(w.town.id, w.town.path, oct1, 0, NOW)
    mark = db.session.get(DutyMonthMark, (w.town.id, oct1))
    assert (mark.version, mark.filled_version) == (1, None)
    assert svc.fill_month(w.town.id, w.town.path, oct1, 1, NOW)
    # the running month, and one that ended less than an hour ago, are never cached whole
    assert not svc.cacheable(date(2026, 11, 1), NOW)
    end_oct = utc("2026-11-01 00:00")
    assert not svc.cacheable(oct1, end_oct + timedelta(minutes=59))
    assert svc.cacheable(oct1, end_oct + timedelta(hours=1))
    # a change to today's logs writes nothing
    svc.logs_changed(w.town.id, utc("2026-11-16 00:00"), NOW)
    assert db.session.get(DutyMonthMark, (w.town.id, date(2026, 11, 1))) is None


def test_running_month_cached_up_to_its_last_closed_day(data):
    """This month's logs before the last local midnight (an hour gone) come from the cache;
    today's are counted live."""
    from portal.blueprints.ledgers import dashboard as svc

    nov1 = date(2026, 11, 1)
    assert svc.cached_until(nov1, NOW) == utc("2026-11-16 00:00")
    assert svc.cached_until(nov1, utc("2026-11-16 00:59")) == utc("2026-11-15 00:00")
    assert svc.cached_until(nov1, utc("2026-11-16 01:00")) == utc("2026-11-16 00:00")
    assert svc.cached_until(date(2026, 10, 1), NOW) == utc("2026-11-01 00:00")
    # the first hour of a month: nothing to cache yet
    assert svc.cached_until(nov1, utc("2026-11-01 00:30")) == utc("2026-11-01 00:00")
    assert not svc.fill_month(data.w.town.id, data.w.town.path, nov1, None,
                              utc("2026-11-01 00:30"))
    w = data.w
    assert board(w.town).total.contacts == 4
    # today's log, even one written past the services, is counted (live)
    add_log(w.hh2, w.neighbor_chief2, utc("2026-11-16 08:00"))
    b = board(w.town)
    assert b.filled == 0 and (b.total.contacts, b.trend.contacts[-1]) == (5, 5)
    assert dict((r.name, f.contacts) for r, f in b.rows) == {"村1": 3, "村2": 2}
    # a log of a cached day written past the services is not seen until a refresh
    add_log(w.hh2, w.neighbor_chief2, utc("2026-11-15 08:00"))
    assert board(w.town).total.contacts == 5
    assert board(w.village2).total.contacts == 2
    svc.refresh_all()
    db.session.commit()
    assert board(w.town).total.contacts == 6 and board(w.village2).total.contacts == 3


def test_cached_day_follows_voids_and_back_dated_logs(data, scope_of):
    """The staleness rule for the running month: log_duty and void_log bump it for a log of
    any day before today."""
    from sqlalchemy.orm import joinedload

    from portal.blueprints.duties import services as dsvc
    from portal.blueprints.duties.models import ChecklistItem, DutyLog
    from portal.blueprints.ledgers.models import DutyMonthMark
    from portal.blueprints.regions.models import Household

    w = data.w
    assert (board(w.town).total.contacts, board(w.town).filled) == (4, 0)
    nov1 = date(2026, 11, 1)
    # a back-dated log into a cached day (11-05) through the service
    item = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == w.town.id, ChecklistItem.kind == "duty").limit(1))
    hh = db.session.execute(select(Household).options(joinedload(Household.neighborhood))
                            .where(Household.id == w.hh2.id)).scalar_one()
    log, _ = dsvc.log_duty(w.neighbor_chief2, hh, duty_item_id=item, method="visit",
                           occurred_at=utc("2026-11-05 09:00"), note="补记", photo=None,
                           token=str(uuid.uuid4()), now=NOW)
    db.session.commit()
    mark = db.session.get(DutyMonthMark, (w.town.id, nov1))
    assert mark.version == mark.filled_version + 1
    b = board(w.town)          # counted live, then the cache refilled
    assert (b.total.contacts, b.total.visits, b.filled) == (5, 3, 1)
    b = board(w.town)
    assert (b.total.contacts, b.total.visits, b.filled) == (5, 3, 0)
    # void a cached day's log (11-03, 上门)
    first = db.session.scalar(select(DutyLog).where(
        DutyLog.household_id == w.hh1.id, DutyLog.occurred_at == utc("2026-11-03 09:00")))
    dsvc.void_log(w.village_staff, scope_of(w.village_staff), first, "记错了户", NOW)
    db.session.commit()
    b = board(w.town)
    assert (b.total.contacts, b.total.visits, b.filled) == (4, 2, 1)
    assert board(w.village1).total.contacts == 2
    # the live count of the month agrees with the cached one
    from portal.blueprints.ledgers.dashboard import refresh_all

    refresh_all()
    db.session.commit()
    b = board(w.town)
    assert (b.total.contacts, b.total.visits) == (4, 2)


def test_a_fill_of_the_running_month_that_raced_a_change_is_not_trusted(data):
    from portal.blueprints.ledgers import dashboard as svc
    from portal.blueprints.ledgers.models import DutyMonthMark

    w = data.w
    nov1 = date(2026, 11, 1)
    svc.logs_changed(w.town.id, utc("2026-11-15 23:00"), NOW)   # yesterday: version 1
    db.session.commit()
    assert not svc.fill_month(w.town.id, w.town.path, nov1, 0, NOW)
    mark = db.session.get(DutyMonthMark, (w.town.id, nov1))
    assert (mark.version, mark.filled_version, mark.filled_until) == (1, None, None)
    # the page counts the month live meanwhile, and fills it at the version it read
    b = board(w.town)
    assert b.total.contacts == 4 and b.filled == 12      # eleven closed months and this one
    db.session.refresh(mark)
    assert (mark.version, mark.filled_version) == (1, 1)


def test_svg_is_well_formed_with_the_right_bars(data):
    from portal.blueprints.ledgers.charts import trend_charts

    charts = trend_charts(board(data.w.town).trend)
    contacts = ET.fromstring(str(charts["contacts"]))
    assert contacts.find(f"{SVG}title").text == "每月走访服务群众（次）"
    assert "2026年11月 上门 2，电话/微信等 2" in contacts.find(f"{SVG}desc").text
    bars = contacts.findall(f".//{SVG}rect[@class='bar']")
    # Oct: 1 visit + 1 other; Nov: 2 + 2 → four bars; the Nov stack twice as tall as Oct's
    assert len(bars) == 4
    heights = [float(b.get("height")) for b in bars]
    assert heights[2] == pytest.approx(2 * heights[0], abs=0.2)
    assert contacts.get("viewBox") == "0 0 480 210" and contacts.get("width") == "100%"
    requests = ET.fromstring(str(charts["requests"]))
    assert len(requests.findall(f".//{SVG}circle")) == 24
    levels = ET.fromstring(str(charts["levels"]))
    titles = [b.find(f"{SVG}title").text for b in levels.findall(f".//{SVG}rect[@class='bar']")]
    # the rounded shares of a month add up to 100 (the largest, the first of equals, takes 1)
    assert titles == ["2026年10月 镇 100%", "2026年11月 邻 34%", "2026年11月 组 33%",
                      "2026年11月 村 33%"]


def test_page_shows_the_figures_within_the_budget(data, login_as, count_queries):
    c = login_as(data.w.town_staff)
    r = c.get(f"/ledgers/dashboard?region={data.w.town.id}&period=2026-11")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for text in ("走访服务群众", "收集问题诉求", "调解矛盾纠纷", "开展为民服务", "村1", "<svg"):
        assert text in html
    assert "本期办结 3 项" in html
    with count_queries() as n:
        r = c.get(f"/ledgers/dashboard?region={data.w.town.id}&period=2026-11")
    assert r.status_code == 200
    assert n.count <= 8, [" ".join(s.split())[:80] for s in n.statements]
    assert len(r.data) < 40_000


def test_default_region_period_and_bad_periods(data, login_as):
    c = login_as(data.w.village_staff)
    r = c.get("/ledgers/dashboard")
    assert r.status_code == 200 and "村1 · 工作概况" in r.get_data(as_text=True)
    assert "2026 年 11 月" in r.get_data(as_text=True)
    for bad, message in (("2026-13", "统计期应写成"), ("abc", "统计期应写成"),
                         ("2027-01", "还没有开始")):
        r = c.get(f"/ledgers/dashboard?period={bad}")
        assert r.status_code == 422 and message in r.get_data(as_text=True)
    r = c.get(f"/ledgers/dashboard?region={data.w.hood1.id}")
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/duties/neighborhoods/{data.w.hood1.id}")
    assert c.get("/ledgers/dashboard?region=abc").status_code == 404


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_monthly_report_pdf(data, login_as, output_dir):
    c = login_as(data.w.town_staff)
    r = c.get(f"/ledgers/dashboard/report.pdf?region={data.w.town.id}&period=2026-11")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    path = output_dir / "dashboard_report.pdf"
    path.write_bytes(r.data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    for part in ("测试镇“三长制”工作月报", "2026 年 11 月", "走访服务群众", "其中上门 2 次",
                 "测试镇人民政府", "村1", "村2", "近 12 个月趋势"):
        assert part in text, part
    pages = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert "A4" in pages or "595" in pages
    assert c.get(f"/ledgers/dashboard/report.pdf?region={data.w.town.id}&period=x") \
        .status_code == 422
    v = login_as(data.w.group_chief)
    r = v.get(f"/ledgers/dashboard/report.pdf?region={data.w.group1.id}&period=2026-11")
    assert r.status_code == 200
    path.write_bytes(r.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "村1村民委员会" in text


def test_refresh_command_forgets_the_cache(data, runner):
    from portal.blueprints.ledgers.models import DutyMonth, DutyMonthMark

    board(data.w.town)   # eleven closed months and this one up to last midnight
    assert db.session.scalar(select(db.func.count()).select_from(DutyMonthMark)) == 12
    result = runner.invoke(args=["ledgers", "refresh-figures"])
    assert result.exit_code == 0 and "已清除 12 个月度缓存标记" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(DutyMonthMark)) == 0
    assert db.session.scalar(select(db.func.count()).select_from(DutyMonth)) == 0
    assert board(data.w.town).trend.contacts[-2] == 2
