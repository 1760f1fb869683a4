"""收集问题台账: the XLSX export of a region's requests for a period."""

import io
import re
import zipfile
from datetime import datetime
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.blueprints.requests import reports
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.models import Department, Request
from portal.extensions import db
from tests.requests.conftest import HOUR, NOW

HEADERS = ["编号", "登记时间", "村", "组", "邻", "户主", "住址", "类别", "诉求内容", "来源", "状态",
           "当前层级", "负责人", "承办部门", "接单人", "办结时间", "办结层级", "答复", "满意度"]
PHONE = "13912345678"  # hh1's phone, and the contact phone given below
TYPED = "13812345678"  # a number typed into a description


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(reports, "utcnow", lambda: NOW)


@pytest.fixture
def ledger_set(world, make_request, load_household, scope_of):
    village, volunteer = world.village_staff, world.volunteer
    s = SimpleNamespace()
    s.closed = make_request(load_household(world.hh1.id), category="安全隐患",
                            at=NOW - 30 * HOUR, contact_phone=PHONE,
                            description=f"山塘输水洞堵塞，蓄水困难。请打{TYPED}联系。")
    req = db.session.get(Request, s.closed.id)
    svc.escalate(world.neighbor_chief, scope_of(world.neighbor_chief), req, NOW - 29 * HOUR,
                 "需要村里协调修复。")
    db.session.commit()
    req = db.session.get(Request, s.closed.id)
    svc.escalate(world.group_chief, scope_of(world.group_chief), req, NOW - 28 * HOUR,
                 "组里修不了，报村委会。")
    db.session.commit()
    dept = db.session.scalar(select(Department.id).where(
        Department.town_id == world.town.id, Department.name == "农业综合服务中心"))
    req = db.session.get(Request, s.closed.id)
    svc.route(village, scope_of(village), req, NOW - 27 * HOUR, dept, "请尽快派人。")
    db.session.commit()
    req = db.session.get(Request, s.closed.id)
    svc.close(village, scope_of(village), req, NOW - 3 * HOUR, "输水洞已疏通，山塘恢复蓄水。")
    db.session.commit()
    svc.rate(db.session.get(Request, s.closed.id), "satisfied", "", NOW - 2 * HOUR)
    db.session.commit()
    # waiting, past the 邻 deadline: its current level is 组
    s.late = make_request(load_household(world.hh1x.id), category="物业管理", at=NOW - 6 * HOUR,
                          description="=HYPERLINK(\"http://x\") 楼道堆物\x07")
    # on the 接单 board, taken by the volunteer
    s.helped = make_request(load_household(world.hh1.id), category="生活求助",
                            at=NOW - 2 * HOUR, description="帮独居老人买药。")
    req = db.session.get(Request, s.helped.id)
    svc.offer_to_helpers(world.neighbor_chief, scope_of(world.neighbor_chief), req, NOW - HOUR)
    db.session.commit()
    svc.claim(volunteer, scope_of(volunteer), db.session.get(Request, s.helped.id),
              NOW - HOUR / 2)
    db.session.commit()
    # village 2
    s.other = make_request(load_household(world.hh2.id), category="其他", at=NOW - HOUR,
                           description="村二的诉求。")
    return s


def open_xlsx(r):
    assert r.status_code == 200, r.data[:300]
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return load_workbook(io.BytesIO(r.data))


def test_export_a_village(world, ledger_set, login_as):
    s = ledger_set
    c = login_as(world.village_staff)
    r = c.get(f"/requests/export.xlsx?region={world.village1.id}&start=2026-11-01"
              "&end=2026-11-30")
    wb = open_xlsx(r)
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="ledger_2026-11-01_2026-11-30.xlsx"')
    m = re.search(r"filename\*=UTF-8''(\S+)$", disposition)
    assert unquote(m.group(1)) == "收集问题台账_村1_2026-11-01_2026-11-30.xlsx"
    ws = wb["收集问题台账"]
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == HEADERS
    assert ws.column_dimensions["I"].width >= 30  # 诉求内容
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [r[0] for r in rows] == [f"2026-{s.closed.id:06d}", f"2026-{s.late.id:06d}",
                                    f"2026-{s.helped.id:06d}"]  # oldest first; no village 2
    closed = dict(zip(HEADERS, rows[0], strict=True))
    assert closed == {
        "编号": f"2026-{s.closed.id:06d}",
        "登记时间": datetime(2026, 11, 15, 4, 0),  # NOW - 30 h, in Asia/Shanghai
        "村": "村1", "组": "组1", "邻": "邻11", "户主": "甲1",
        "住址": closed["住址"], "类别": "安全隐患",
        "诉求内容": "山塘输水洞堵塞，蓄水困难。请打138****5678联系。",
        "来源": "居民点单", "状态": "已办结", "当前层级": "村", "负责人": "村干部",
        "承办部门": "农业综合服务中心", "接单人": None,
        "办结时间": datetime(2026, 11, 16, 7, 0),  # NOW - 3 h, local
        "办结层级": "村", "答复": "输水洞已疏通，山塘恢复蓄水。", "满意度": "满意",
    }
    assert closed["住址"].startswith("测试路")
    assert isinstance(ws.cell(2, 2).value, datetime) and ws.cell(2, 2).is_date
    late = dict(zip(HEADERS, rows[1], strict=True))
    assert (late["状态"], late["当前层级"], late["负责人"], late["办结时间"]) == (
        "待响应", "组", None, None)
    # a description starting with "=" stays text, without the control character
    assert late["诉求内容"] == "=HYPERLINK(\"http://x\") 楼道堆物"
    assert ws.cell(3, 9).data_type == "s"
    helped = dict(zip(HEADERS, rows[2], strict=True))
    assert (helped["状态"], helped["负责人"], helped["接单人"]) == ("办理中", "邻长", "志愿者")


def test_export_has_no_phone_numbers(world, ledger_set, login_as):
    r = login_as(world.town_staff).get(f"/requests/export.xlsx?region={world.town.id}")
    wb = open_xlsx(r)
    cells = [str(c.value) for row in wb.active.iter_rows() for c in row if c.value is not None]
    assert wb.active.max_row == 5 and len(cells) > 3 * len(HEADERS)
    assert "村二的诉求。" in cells  # the town sees both villages
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        xml = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    for digits in (PHONE, TYPED, PHONE[-8:], TYPED[3:7] + TYPED[-4:]):
        assert not any(digits in c for c in cells)
        assert digits not in xml


def test_export_scope(world, ledger_set, login_as):
    c = login_as(world.village_staff)
    assert c.get(f"/requests/export.xlsx?region={world.village2.id}").status_code == 404
    assert c.get("/requests/export.xlsx?region=999999").status_code == 404
    # the default region is the user's own; the default period this month
    wb = open_xlsx(c.get("/requests/export.xlsx"))
    values = [str(c.value) for row in wb.active.iter_rows() for c in row]
    assert "村二的诉求。" not in values and "帮独居老人买药。" in values
    # a 邻长: their own 邻 only
    chief = login_as(world.neighbor_chief)
    assert chief.get(f"/requests/export.xlsx?region={world.group1.id}").status_code == 404
    r = chief.get("/requests/export.xlsx")
    assert r.status_code == 200
    assert "%E9%82%BB11" in r.headers["Content-Disposition"]  # 邻11
    for user in (world.volunteer, world.nobody):
        assert login_as(user).get("/requests/export.xlsx").status_code == 403


def test_export_of_an_empty_period(world, ledger_set, login_as):
    r = login_as(world.village_staff).get("/requests/export.xlsx?start=2025-01-01&end=2025-12-31")
    ws = open_xlsx(r).active
    assert ws.max_row == 1 and [c.value for c in ws[1]] == HEADERS
