"""台账: the index page, the 邻长信息台账 XLSX (every figure checked against a small hand-built
data set), the 辖区社会资源台账 XLSX, scope and the query budget."""

import io
import uuid
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.clock import utcnow
from portal.extensions import db

OCT = "2026-10"
IN_OCT = datetime(2026, 10, 10, 2, 0)  # naive UTC, 10:00 in Shanghai
IN_SEP = datetime(2026, 9, 20, 2, 0)

CHIEF_HEADERS = ["村(社区)", "片", "组", "邻", "姓名", "手机号", "任职起始", "离任",
                 "联系户数（截至导出时）", "红马甲发放日期", "工作证发放日期", "政策明白卡发放日期",
                 "联户信息卡发放日期", "走访/联系次数", "按时联系户占比（截至导出时）", "本期积分",
                 "积分余额"]


def _post(user):
    from portal.blueprints.regions.models import Post

    return db.session.scalar(select(Post).where(Post.user_id == user.id))


def _log(household, user, at, voided=False):
    from portal.blueprints.duties.models import ChecklistItem, DutyLog

    item = db.session.scalar(select(ChecklistItem.id).where(ChecklistItem.kind == "duty")
                             .order_by(ChecklistItem.id))
    db.session.add(DutyLog(household_id=household.id, neighborhood_id=household.neighborhood_id,
                           user_id=user.id, duty_item_id=item, method="visit", occurred_at=at,
                           form_token=str(uuid.uuid4()),
                           voided_at=at + timedelta(hours=1) if voided else None))


def _points(user, town, path, delta, at, kind="award", n=[0]):  # noqa: B006 (a counter)
    from portal.blueprints.points.models import PointsEntry

    n[0] += 1
    db.session.add(PointsEntry(user_id=user.id, town_id=town.id, path=path, kind=kind,
                               delta=delta, source_type="other", source_id=n[0], at=at))


@pytest.fixture
def ledger(world, make_user):
    """On top of the world: posts started in 2025; a 邻长 of 邻12 who left mid-October and one of
    邻22 who left in August; logs in and out of October (one voided); 四个一 partly issued;
    points in and out of October (one spend); one household of 邻11 visited just now."""
    from portal.blueprints.commendations.models import KitIssue
    from portal.blueprints.regions.models import Household, Post

    w = world
    for u in (w.neighbor_chief, w.neighbor_chief2):
        _post(u).started_at = datetime(2025, 1, 1)
    left = make_user("离任邻长", "13700000201")
    gone = make_user("早离任", "13700000202")
    db.session.add_all([
        Post(user_id=left.id, region_id=w.hood1b.id, role="neighbor_chief",
             started_at=datetime(2025, 3, 1), ended_at=datetime(2026, 10, 15, 4, 0)),
        Post(user_id=gone.id, region_id=w.hood2b.id, role="neighbor_chief",
             started_at=datetime(2025, 3, 1), ended_at=datetime(2026, 8, 31, 4, 0))])
    chief_post = _post(w.neighbor_chief)
    db.session.add_all([
        KitIssue(post_id=chief_post.id, item="vest", issued_on=date(2025, 1, 5),
                 recorded_by_id=w.village_staff.id),
        KitIssue(post_id=chief_post.id, item="card", issued_on=date(2025, 2, 6),
                 recorded_by_id=w.village_staff.id)])
    hh1 = db.session.get(Household, w.hh1.id)
    hh1x = db.session.get(Household, w.hh1x.id)
    hh1b = db.session.get(Household, w.hh1b.id)
    _log(hh1, w.neighbor_chief, IN_OCT)
    _log(hh1x, w.neighbor_chief, IN_OCT + timedelta(days=3))
    _log(hh1x, w.neighbor_chief, IN_OCT + timedelta(days=4), voided=True)
    _log(hh1, w.neighbor_chief, IN_SEP)
    _log(hh1b, left, IN_OCT)
    _log(hh1b, left, datetime(2026, 10, 20))
    hh1x.last_visit_at = hh1x.last_contact_at = utcnow()
    _points(w.neighbor_chief, w.town, w.hood1.path, 5, IN_OCT)
    _points(w.neighbor_chief, w.town, w.hood1.path, 2, IN_OCT + timedelta(days=1))
    _points(w.neighbor_chief, w.town, w.hood1.path, 3, IN_SEP)
    _points(w.neighbor_chief, w.town, w.hood1.path, -4, IN_OCT, kind="spend")
    _points(left, w.town, w.hood1b.path, 1, IN_OCT)
    db.session.commit()
    return SimpleNamespace(left=left, gone=gone, chief_post=chief_post)


def _sheet(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(response.get_data()))
    return wb.worksheets[0]


def _rows(ws):
    return [[c.value for c in row] for row in ws.iter_rows(min_row=3)]


def _expected_share(hood_id):
    """Share of the 邻's households on time now, by the Python rules (contact_state), not the
    SQL the export runs."""
    from portal.blueprints.duties.services import contact_state, rule_windows
    from portal.blueprints.regions.models import Household, Region

    hood = db.session.get(Region, hood_id)
    windows = rule_windows(hood.town_id, utcnow())
    homes = list(db.session.scalars(select(Household).where(Household.neighborhood_id == hood_id)))
    ok = sum(1 for h in homes if contact_state(h, windows).state != "overdue")
    return len(homes), ok / len(homes)


def test_chiefs_ledger_figures(world, ledger, login_as):
    client = login_as(world.town_staff)
    ws = _sheet(client.get(f"/ledgers/chiefs.xlsx?region={world.town.id}&period={OCT}"))
    assert ws.title == "邻长信息台账"
    assert ws.freeze_panes == "A3"
    assert "测试镇" in ws["A1"].value and "2026 年 10 月" in ws["A1"].value
    assert [c.value for c in ws[2]] == CHIEF_HEADERS
    rows = {(r[3], r[4]): r for r in _rows(ws)}
    # the post that ended in August is not in October's ledger; the one ended in October is
    assert set(rows) == {("邻11", "邻长"), ("邻12", "离任邻长"), ("邻21", "邻长二")}

    chief = rows[("邻11", "邻长")]
    assert chief[:6] == ["村1", "片1", "组1", "邻11", "邻长", "13800000105"]
    assert chief[6] == datetime(2025, 1, 1) and chief[7] is None
    households, share = _expected_share(world.hood1.id)
    assert chief[8] == households == 2
    assert chief[9:13] == [datetime(2025, 1, 5), datetime(2025, 2, 6), None, None]
    assert chief[13] == 2  # two logs in October; the voided one and September's not counted
    assert chief[14] == pytest.approx(share) and share == 0.5
    assert chief[15] == 7  # awards in October; the spend and September's award not counted
    assert chief[16] == 6  # balance: 5 + 2 + 3 - 4

    left = rows[("邻12", "离任邻长")]
    assert left[6] == datetime(2025, 3, 1)
    assert left[7] == datetime(2026, 10, 15)  # 12:00 in Shanghai
    assert left[9:13] == [None] * 4
    assert left[13] == 2 and left[15] == 1 and left[16] == 1
    assert left[14] == pytest.approx(_expected_share(world.hood1b.id)[1])

    # real date cells and formats
    cells = next(r for r in ws.iter_rows(min_row=3) if r[4].value == "邻长")
    assert cells[6].is_date and cells[6].number_format == "yyyy-mm-dd"
    assert cells[9].is_date and cells[9].number_format == "yyyy-mm-dd"
    assert cells[14].number_format == "0%"
    assert cells[5].data_type == "s"
    assert ws.column_dimensions["A"].width > 8


def test_chiefs_ledger_other_period_and_empty_region(world, ledger, login_as):
    client = login_as(world.town_staff)
    rows = _rows(_sheet(client.get(f"/ledgers/chiefs.xlsx?region={world.town.id}&period=2026-09")))
    by = {(r[3], r[4]): r for r in rows}
    assert ("邻22", "早离任") not in by  # left on 31 August
    august = _rows(_sheet(client.get(f"/ledgers/chiefs.xlsx?region={world.town.id}&period=2026-08")))
    assert ("邻22", "早离任") in {(r[3], r[4]) for r in august}
    assert by[("邻11", "邻长")][13] == 1 and by[("邻11", "邻长")][15] == 3
    quarter = _rows(_sheet(client.get(f"/ledgers/chiefs.xlsx?region={world.town.id}&period=2026Q4")))
    assert {r[4] for r in quarter} == {"邻长", "离任邻长", "邻长二"}
    lonely = _sheet(client.get(f"/ledgers/chiefs.xlsx?region={world.hood1b.id}&period=2027"))
    assert _rows(lonely) == [] and [c.value for c in lonely[2]] == CHIEF_HEADERS


def test_bad_period_is_refused_on_the_page(world, login_as):
    client = login_as(world.village_staff)
    for url in ("/ledgers/?period=2026-13", "/ledgers/chiefs.xlsx?period=soon"):
        r = client.get(url)
        assert r.status_code == 422
        assert "期间应写成" in r.get_data(as_text=True)


def test_chiefs_ledger_scope(world, ledger, login_as):
    """A village cadre's ledger has only their village; other villages are not found; 邻长,
    volunteers and people without a post have no ledgers."""
    client = login_as(world.village_staff)
    rows = _rows(_sheet(client.get(f"/ledgers/chiefs.xlsx?period={OCT}")))
    assert {r[0] for r in rows} == {"村1"} and len(rows) == 2
    assert client.get(f"/ledgers/chiefs.xlsx?region={world.village2.id}").status_code == 404
    assert client.get(f"/ledgers/chiefs.xlsx?region={world.town.id}").status_code == 404
    group = login_as(world.group_chief)
    assert {r[3] for r in _rows(_sheet(group.get(f"/ledgers/chiefs.xlsx?period={OCT}")))} \
        == {"邻11", "邻12"}
    for who in (world.neighbor_chief, world.volunteer, world.nobody):
        c = login_as(who)
        for url in ("/ledgers/", "/ledgers/chiefs.xlsx", "/ledgers/resources.xlsx",
                    "/ledgers/resources"):
            assert c.get(url).status_code == 403, (who.name, url)
    # a 邻长 asking for their own 邻 by id is refused too
    assert login_as(world.neighbor_chief).get(
        f"/ledgers/chiefs.xlsx?region={world.hood1.id}").status_code == 403


def test_index_links_same_region_and_period(world, login_as):
    client = login_as(world.area_chief)
    r = client.get(f"/ledgers/?region={world.group1.id}&period=2026Q3")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert f"/ledgers/chiefs.xlsx?region={world.group1.id}&amp;period=2026Q3" in page
    assert (f"/requests/export.xlsx?region={world.group1.id}&amp;start=2026-07-01&amp;"
            "end=2026-09-30") in page
    assert f"/ledgers/resources.xlsx?region={world.group1.id}" in page
    assert "2026 年第 3 季度" in page
    assert f"/ledgers/dashboard?region={world.group1.id}&amp;period=2026Q3" in page
    assert "/ledgers/import" not in page  # a 片长 manages nothing: no roster import
    assert "/ledgers/import" in login_as(world.village_staff).get("/ledgers/").get_data(
        as_text=True)
    # the request ledger the link points to answers for the same region and period
    assert client.get(f"/requests/export.xlsx?region={world.group1.id}&start=2026-07-01"
                      "&end=2026-09-30").status_code == 200


def test_index_defaults_to_last_month(world, login_as):
    from portal.blueprints.ledgers.ledger_views import last_month
    from portal.clock import local_today

    page = login_as(world.village_staff).get("/ledgers/").get_data(as_text=True)
    key = last_month(local_today()).key
    assert f'<option value="{key}" selected>' in page
    assert f"period={key}" in page and f"region={world.village1.id}" in page


def test_queries_fixed_whatever_the_rows(world, ledger, login_as, count_queries, make_user):
    from portal.blueprints.regions.models import Post

    client = login_as(world.town_staff)
    url = f"/ledgers/chiefs.xlsx?region={world.town.id}&period={OCT}"
    client.get(url).close()
    with count_queries() as few:
        r = client.get(url)
        n_rows = len(_rows(_sheet(r)))
    for k in range(6):
        u = make_user(f"新邻长{k}")
        db.session.add(Post(user_id=u.id, region_id=world.hood2.id, role="neighbor_chief",
                            started_at=datetime(2026, 1, 1)))
    db.session.commit()
    with count_queries() as many:
        assert len(_rows(_sheet(client.get(url)))) == n_rows + 6
    assert few.count == many.count <= 8, many.statements


@pytest.mark.parametrize("url", ["/ledgers/", "/ledgers/resources", "/ledgers/resources/new",
                                 "/ledgers/resources.xlsx"])
def test_pages_within_query_budget(world, ledger, login_as, count_queries, url):
    client = login_as(world.town_staff)
    client.get(url).close()
    with count_queries() as n:
        r = client.get(url)
        r.get_data()
    assert r.status_code == 200
    assert n.count <= 8, n.statements
