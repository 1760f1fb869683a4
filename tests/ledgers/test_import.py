"""Roster import: template round trip, every kind of bad row, idempotent re-import, refused
files, scope of village staff, the progress page."""

import io
import os
import re
import zipfile

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import event, func, select, text
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.audit import AuditEntry
from portal.blueprints.auth.models import User
from portal.blueprints.ledgers import imports as imp
from portal.blueprints.regions.models import Household, Post, Region
from portal.extensions import db
from tests.conftest import Browser

H_HEAD = ["村(社区)", "片", "组", "邻", "地址", "户主", "联系电话", "人口", "特殊标签"]
C_HEAD = ["姓名", "手机号", "岗位", "村(社区)", "片", "组", "邻"]


def xlsx(rows, header=H_HEAD) -> bytes:
    wb = Workbook()
    ws = wb.active
    if header:
        ws.append(header)
    for r in rows:
        ws.append(list(r))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def counts() -> dict:
    return {t.name: db.session.scalar(select(func.count()).select_from(t))
            for t in db.metadata.sorted_tables}


def upload(b, data: bytes, kind="households", name="名册.xlsx", town=None):
    """Post the file as a multipart body built in memory (the test client would spool a large
    one to a temporary file it never closes)."""
    fields = {"csrf_token": b.token, "kind": kind, "file": FileStorage(io.BytesIO(data), name)}
    if town is not None:
        fields["town"] = str(town)
    boundary, body = encode_multipart(fields)
    return b.c.post("/ledgers/import", data=body,
                    content_type=f"multipart/form-data; boundary={boundary}")


def token_of(r, wait=True) -> str:
    """The job of an upload's redirect, its dry run (a background thread) finished unless
    ``wait`` is False."""
    assert r.status_code == 303, r.data.decode()[:800]
    if wait:
        imp.wait_all(60)
    return r.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture
def gate(monkeypatch):
    """Holds every dry run before it reads the file (so before its first query) until
    ``gate.set()``."""
    import threading

    event = threading.Event()
    real = imp.read_sheet

    def held(*a, **k):
        assert event.wait(60)
        return real(*a, **k)

    monkeypatch.setattr(imp, "read_sheet", held)
    yield event
    event.set()


def run(b, token):
    page = b.get(f"/ledgers/import/{token}/run")
    assert page.status_code == 200, (imp.read_state(token), list(imp.folder().iterdir()))
    assert "确认导入" in page.data.decode()
    r = b.post(f"/ledgers/import/{token}/run")
    assert r.status_code == 303
    imp.wait_all(60)
    return b.get(f"/ledgers/import/{token}").data.decode()


@pytest.fixture(autouse=True)
def _empty_import_dir(app):
    import shutil

    shutil.rmtree(imp.folder(), ignore_errors=True)
    yield
    imp.wait_all(60)
    shutil.rmtree(imp.folder(), ignore_errors=True)


@pytest.fixture
def staff(world, login_as):
    return Browser(login_as(world.town_staff))


def test_template_round_trips(world, staff, app, login_as):
    r = staff.get(f"/ledgers/import/template/households.xlsx?town={world.town.id}")
    assert r.status_code == 200 and r.mimetype.endswith("sheet")
    ws = load_workbook(io.BytesIO(r.data)).worksheets[0]
    assert [c.value for c in ws[1]] == H_HEAD
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["E"].width == 28
    example = [c.value for c in ws[2]]
    assert example[:4] == ["村1", "片1", "组1", "邻11"]  # the town's first village, as it is
    before = counts()
    token = token_of(upload(staff, r.data, name="住户名册模板.xlsx"))
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "没有发现问题" in page and counts() == before
    done = run(staff, token)
    assert "导入完成" in done
    hh = db.session.execute(select(Household).where(Household.head_name == example[5])).scalar_one()
    assert hh.neighborhood_id == world.hood1.id and hh.member_count == 3 and hh.phone == "13800000000"
    assert hh.intake_token and hh.special_since is not None
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "import.households")).one()
    assert entry.detail_dict["created"] == 1 and "13800000000" not in entry.detail
    assert entry.detail_dict["file"] == "住户名册模板.xlsx"

    r = staff.get(f"/ledgers/import/template/chiefs.xlsx?town={world.town.id}")
    ws = load_workbook(io.BytesIO(r.data)).worksheets[0]
    assert [c.value for c in ws[1]] == C_HEAD
    token = token_of(upload(staff, r.data, kind="chiefs"))
    assert "没有发现问题" in staff.get(f"/ledgers/import/{token}").data.decode()
    done = run(staff, token)
    assert "设初始密码" in done
    user = db.session.execute(select(User).where(User.phone == "13900000000")).scalar_one()
    post = db.session.execute(select(Post).where(Post.user_id == user.id)).scalar_one()
    assert (post.region_id, post.role) == (world.hood1.id, "neighbor_chief")
    assert user.password_hash.startswith("!")  # no password works until staff set one
    # the result page's link sets it (the portal's 重置密码), then the account logs in
    link = re.search(r'href="(/users/\d+/password[^"]*)"', done).group(1).replace("&amp;", "&")
    assert staff.get(link).status_code == 200
    r = staff.post(link, password="first-pass-1", confirm="first-pass-1")
    assert r.status_code == 303, r.data.decode()[:500]
    login_as(user, "first-pass-1")


def test_new_regions_are_created_with_paths(world, staff):
    data = xlsx([["村2", "新片", "新组", "新邻", "幸福路 8 号", "王五", "", 2, ""],
                 ["村2", "新片", "新组", "新邻二", "幸福路 9 号", "赵六", "139 0000 1111", "4", "独居老人、低保户"]])
    token = token_of(upload(staff, data))
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "将新建 4 个单位" in page and "村2 · 新片 · 新组 · 新邻二" in page
    run(staff, token)
    hood = db.session.execute(select(Region).where(Region.name == "新邻二")).scalar_one()
    group = db.session.get(Region, hood.parent_id)
    area = db.session.get(Region, group.parent_id)
    assert area.parent_id == world.village2.id and hood.level == "neighborhood"
    assert hood.path == f"{world.village2.path}{area.id}/{group.id}/{hood.id}/"
    hh = db.session.execute(select(Household).where(Household.head_name == "赵六")).scalar_one()
    assert hh.phone == "13900001111"
    names = db.session.execute(text(
        "SELECT t.name FROM household_tags t JOIN household_tag_links l ON l.tag_id = t.id "
        "WHERE l.household_id = :h ORDER BY t.name"), {"h": hh.id}).scalars().all()
    assert sorted(names) == sorted(["独居老人", "低保户"])


BAD_ROWS = [
    # (row, expected column, expected text)
    (["村9", "片1", "组1", "邻11", "路 1 号", "甲", "", 3, ""], "村(社区)", "未知的村(社区)"),
    (["村1", "片1", "组1", "邻11", "", "乙", "", 3, ""], "地址", "不能为空"),
    (["村1", "片1", "组1", "邻11", "路 2 号", "丙", "1380013800", 3, ""], "联系电话", "格式不对"),
    (["村1", "片1", "组1", "邻11", "路 3 号", "丁", "", 0, ""], "人口", "1 到 30"),
    (["村1", "片1", "组1", "邻11", "路 4 号", "戊", "", "三", ""], "人口", "1 到 30"),
    (["村1", "片1", "组1", "邻11", "路 5 号", "己", "", 3, "富豪"], "特殊标签", "未知的标签"),
    (["村1", "片1", "组1", "邻11", "路" * 101, "庚", "", 3, ""], "地址", "太长"),
    (["村1", "片1", "组1", "邻11", "路 6 号", "辛", "13700000001", 3, ""], "联系电话", None),
    (["村1", "片1", "组1", "邻11", "路 7 号", "壬", "+86 137-0000-0001", 3, ""], "联系电话", "与第 9 行相同"),
    (["村1", "片1", "组1", "邻11", "路 8 号", "癸", "13912345678", 3, ""], "联系电话", "另一户"),
    (["村1", "片1", "组1", "邻11", "路 6 号", "辛", "", 2, ""], "户主", "与第 9 行是同一户"),
]


def test_every_bad_row_is_reported_and_nothing_saved(world, staff):
    before = counts()
    token = token_of(upload(staff, xlsx([r for r, _, _ in BAD_ROWS])))
    assert counts() == before
    state = imp.read_state(token)
    problems = imp.read_problems(token)
    assert state["problem_count"] == len(problems)
    for i, (_, column, message) in enumerate(BAD_ROWS, start=2):
        if message is None:
            assert not [p for p in problems if p[0] == i], problems
            continue
        assert any(p[0] == i and p[1] == column and message in p[2] for p in problems), (i, problems)
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "139****5678" in page and "13912345678" not in page
    assert "导入…" not in page
    assert staff.get(f"/ledgers/import/{token}/run").status_code == 303  # no import offered
    r = staff.get(f"/ledgers/import/{token}/problems.xlsx")
    ws = load_workbook(io.BytesIO(r.data)).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("行号", "列", "问题") and len(rows) == len(problems) + 1
    assert counts() == before


def test_missing_column_and_chief_rows(world, staff):
    token = token_of(upload(staff, xlsx([["村1", "片1", "组1", "邻11", "路", 3]],
                                        header=["村(社区)", "片", "组", "邻", "地址", "人口"])))
    problems = imp.read_problems(token)
    assert (1, "户主", "表头缺少这一列") in [tuple(p) for p in problems]
    rows = [["甲", "13600000001", "队长", "村1", "片1", "", ""],
            ["乙", "13600000002", "组长", "村1", "片1", "", ""],
            ["丙", "13600000003", "片长", "村1", "片1", "组1", ""],
            ["", "13600000004", "邻长", "村1", "片1", "组1", "邻11"],
            ["戊", "13600000005", "邻长", "村1", "片1", "组1", "邻11"],
            ["戊二", "13600000005", "邻长", "村1", "片1", "组1", "邻12"],
            ["组长", "13800000104", "组长", "村1", "片1", "组1", ""],
            ["己", "13600000006", "片长", "村1", "片1", "", ""],
            ["己", "13600000006", "片长", "村1", "片1", "", ""]]
    before = counts()
    token = token_of(upload(staff, xlsx(rows, header=C_HEAD), kind="chiefs"))
    problems = [tuple(p) for p in imp.read_problems(token)]
    expect = [(2, "岗位", "岗位应为"), (3, "组", "要填到"), (4, "组", "应留空"),
              (5, "姓名", "不能为空"), (7, "手机号", "姓名不同"), (10, "岗位", "与第 9 行重复")]
    for row, column, message in expect:
        assert any(p[0] == row and p[1] == column and message in p[2] for p in problems), (row, problems)
    assert not [p for p in problems if p[0] in (6, 8)], problems  # the 组长 holds it already
    assert counts() == before


def _one_phone(world):
    """The world gives 甲1 and 甲2 the same phone; keep it on 甲1 only."""
    world.hh2.phone = None
    db.session.commit()


def test_reimport_is_idempotent(world, staff, app, count_queries):
    _one_phone(world)
    rows = [["村1", "片1", "组1", "邻11", f"和平路 {i} 号", f"户{i}", f"1350000{i:04d}", 1 + i % 5,
             "留守儿童" if i % 3 == 0 else ""] for i in range(40)]
    rows.append(["村1", "片1", "组1", "邻11", world.hh1.address, "甲1", "13912345678", 4, "独居老人"])
    data = xlsx(rows)
    run(staff, token_of(upload(staff, data)))
    stamps = dict(db.session.execute(select(Household.id, Household.updated_at)).all())
    entries = db.session.scalar(select(func.count()).select_from(AuditEntry))
    before = counts()
    token = token_of(upload(staff, data))
    state = imp.read_state(token)
    assert state["summary"]["created"] == 0 and state["summary"]["updated"] == 0
    assert state["summary"]["unchanged"] == 41
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "完全一致" in page and "导入…" not in page
    # importing it anyway writes the import's own audit row only
    with count_queries() as q:
        run(staff, token)
    writes = [s for s in q.statements if re.match(r"\s*(INSERT|UPDATE|DELETE)", s, re.I)]
    assert len(writes) == 1 and "audit_entries" in writes[0], writes
    db.session.expire_all()
    after = counts()
    assert after.pop("audit_entries") == entries + 1
    before.pop("audit_entries")
    assert after == before
    assert dict(db.session.execute(select(Household.id, Household.updated_at)).all()) == stamps


def test_changed_rows_update_and_move(world, staff):
    data = xlsx([["村1", "片1", "组1", "邻12", world.hh1.address, "甲1", "", 5, ""]])
    token = token_of(upload(staff, data))
    state = imp.read_state(token)
    assert state["summary"]["updated"] == 1 and state["summary"]["moved"] == 1
    run(staff, token)
    db.session.expire_all()
    hh = db.session.get(Household, world.hh1.id)
    assert (hh.neighborhood_id, hh.phone, hh.member_count, hh.special_since) == \
        (world.hood1b.id, None, 5, None)


def test_import_rechecks_and_refuses(world, staff):
    data = xlsx([["村1", "片1", "组1", "邻11", "新路 1 号", "新户", "13311112222", 2, ""]])
    token = token_of(upload(staff, data))
    # the phone is taken meanwhile
    from portal.blueprints.regions.services import create_household

    create_household(None, world.hood2, {"address": "别处", "head_name": "别人",
                                         "phone": "13311112222", "member_count": 1}, [])
    db.session.commit()
    before = counts()
    page = run(staff, token)
    assert "重新核对发现问题" in page and "133****2222" in page
    assert counts() == before


def test_failure_rolls_everything_back(world, staff, monkeypatch):
    data = xlsx([["村1", "片9", "组9", "邻9", "新路 1 号", "新户", "", 2, ""]] * 1
                + [["村1", "片1", "组1", "邻11", f"新路 {i} 号", "新户", "", 2, ""] for i in range(2, 5)])
    token = token_of(upload(staff, data))
    before = counts()
    real = imp.record

    def broken(*a, **k):
        real(*a, **k)
        raise RuntimeError("disk full")

    monkeypatch.setattr(imp, "record", broken)
    page = run(staff, token)
    assert "已全部撤销" in page
    assert counts() == before


def test_village_staff_rows_out_of_scope(world, login_as):
    b = Browser(login_as(world.village_staff))
    data = xlsx([["村1", "片1", "组1", "邻11", "新路 1 号", "新户", "", 2, ""],
                 ["村2", "片2", "组2", "邻21", "新路 2 号", "新户", "", 2, ""]])
    token = token_of(upload(b, data))
    problems = [tuple(p) for p in imp.read_problems(token)]
    assert problems == [(3, "村(社区)", "“村2”不在您的管理范围")]


def test_who_may_import(world, login_as):
    for user in (world.neighbor_chief, world.area_chief, world.volunteer, world.nobody):
        c = login_as(user)
        assert c.get("/ledgers/import").status_code == 403
    c = login_as(world.admin)
    assert c.get("/ledgers/import").status_code == 200
    other = imp.new_token()
    assert c.get(f"/ledgers/import/{other}").status_code == 404
    assert c.get("/ledgers/import/..%2F..%2Fconfig").status_code == 404


def test_another_users_job_is_404(world, staff, login_as):
    token = token_of(upload(staff, xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, ""]])))
    other = Browser(login_as(world.village_staff))
    for url in (f"/ledgers/import/{token}", f"/ledgers/import/{token}/run",
                f"/ledgers/import/{token}/problems.xlsx"):
        assert other.get(url).status_code == 404
    assert other.post(f"/ledgers/import/{token}/run").status_code == 404


def _zip_bomb(megabytes: int) -> bytes:
    """A few KB that unzip to ``megabytes`` MB of zeros (written in chunks: little memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(megabytes):
                f.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize("what, data, message", [
    ("junk", os.urandom(5 * 1024 * 1024), "不是 Excel"),
    ("empty", b"", "空的"),
    ("xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000, "另存为"),
])
def test_bad_files_are_refused(world, staff, what, data, message):
    """Refused in the upload request, before the file is opened: the form again, 422."""
    before = counts()
    r = upload(staff, data)
    assert r.status_code == 422
    page = r.data.decode()
    assert message in page and 'enctype="multipart/form-data"' in page
    assert counts() == before
    assert not list(imp.folder().glob("*.xlsx"))


def _corrupt(part: str, text: bytes) -> bytes:
    """A roster whose ``part`` is replaced with ``text``: a zip that looks like an XLSX from
    outside but that calamine cannot read."""
    good = zipfile.ZipFile(io.BytesIO(xlsx([["村1", "片1", "组1", "邻11", "路", "甲", "", 2, ""]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in good.namelist():
            z.writestr(name, text if name == part else good.read(name))
    return out.getvalue()


def _far_cell() -> bytes:
    """A small roster with one stray value at the sheet's last cell."""
    wb = Workbook()
    ws = wb.active
    ws.append(H_HEAD)
    ws.append(["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, ""])
    ws["XFD1048576"] = "备注"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.mark.parametrize("what, data, message", [
    ("no header", xlsx([["a", "b"], ["c", "d"]], header=None), "找不到表头"),
    ("only header", xlsx([]), "没有数据行"),
    ("broken sheet", _corrupt("xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row"),
     "无法读取"),
    ("broken workbook", _corrupt("xl/workbook.xml", b"<<<not xml"), "无法读取"),
    ("no sheet", _corrupt("xl/workbook.xml", b"<workbook/>"), "没有工作表"),
    ("stray far cell", _far_cell(), "范围过大"),
])
def test_files_refused_while_reading(world, staff, what, data, message):
    """Refused by the dry run in the background: the job's page says why and links back to the
    upload form; nothing is saved, the file is gone."""
    before = counts()
    token = token_of(upload(staff, data))
    assert imp.read_state(token)["status"] == "failed"
    r = staff.get(f"/ledgers/import/{token}")
    assert r.status_code == 200
    page = r.data.decode()
    assert message in page and "重新上传" in page and 'href="/ledgers/import?' in page
    assert "hx-trigger" not in page
    assert counts() == before
    assert not list(imp.folder().glob("*.xlsx"))


def test_zip_bomb_refused(world, staff, monkeypatch):
    """Refused on the members' declared sizes, before anything is unzipped (the limit is
    lowered here to keep the test small; the real one is 400 MB)."""
    monkeypatch.setattr(imp, "MAX_UNZIPPED", 30 * 1024 * 1024)
    bomb = _zip_bomb(40)
    assert len(bomb) < 200 * 1024
    r = upload(staff, bomb)
    assert r.status_code == 422 and "解压后过大" in r.data.decode()


def test_too_many_rows(world, staff, monkeypatch):
    monkeypatch.setattr(imp, "MAX_ROWS", 3)
    token = token_of(upload(staff, xlsx([["村1", "片1", "组1", "邻11", f"路 {i}", "甲", "", 2, ""]
                                         for i in range(5)])))
    assert "超过 3 行" in staff.get(f"/ledgers/import/{token}").data.decode()


def test_size_limit_is_per_route(world, staff, app):
    assert app.config["MAX_CONTENT_LENGTH"] < imp.MAX_BYTES
    big = xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, ""]])
    padded = big + b"\0" * (imp.MAX_BYTES - len(big) + 10)  # a zip with trailing bytes
    r = upload(staff, padded)
    assert r.status_code == 422 and "文件太大" in r.data.decode()
    # 12 MB (above the photo limit, below the import one) passes the size check
    r = upload(staff, os.urandom(12 * 1024 * 1024))
    assert r.status_code == 422 and "不是 Excel" in r.data.decode()
    # the app-wide limit still holds elsewhere
    r = staff.c.post("/account/password", data=b"x=" + b"a" * (9 * 1024 * 1024),
                     content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413


def test_progress_page_polls_and_refreshes(world, staff, count_queries):
    token = token_of(upload(staff, xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, ""]])))
    state = imp.read_state(token)
    state.update(status="running", phase="写入", done=1)
    imp.write_state(token, state)
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert 'hx-trigger="every 1s"' in page and f'hx-get="/ledgers/import/{token}"' in page
    assert '<meta http-equiv="refresh"' in page and "<progress" in page
    with count_queries() as q:
        part = staff.get(f"/ledgers/import/{token}", headers={"HX-Request": "true",
                                                              "HX-Target": "import-job"})
    assert q.count <= 8
    assert part.data.decode().startswith('<div id="import-job"') or \
        '<div id="import-job"' in part.data.decode()[:400]
    assert "<html" not in part.data.decode()


def test_upload_returns_before_the_dry_run(world, staff, gate, count_queries):
    """The upload request saves the file and answers; the dry run goes on in the background
    while the job's page shows its progress (polled, refreshed without JavaScript)."""
    data = xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, ""]])
    with count_queries() as q:
        r = upload(staff, data)
    assert q.count <= 8, q.statements
    token = token_of(r, wait=False)
    assert imp.read_state(token)["status"] == "checking"  # the gate holds it before reading
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "试导入" in page and "第 1 / 2 步，读取文件" in page and "<progress" in page
    assert 'hx-trigger="every 1s"' in page and '<meta http-equiv="refresh"' in page
    assert "试导入结果" not in page
    with count_queries() as q:
        part = staff.get(f"/ledgers/import/{token}", headers={"HX-Request": "true",
                                                              "HX-Target": "import-job"})
    assert q.count <= 8 and "<html" not in part.data.decode()
    # the checking step, as the thread reports it
    state = imp.read_state(token)
    state.update(phase="核对", done=5000, total=12000)
    imp.write_state(token, state)
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "第 2 / 2 步，核对" in page and "5,000</b> / 12,000 行" in page
    gate.set()
    imp.wait_all(60)
    page = staff.get(f"/ledgers/import/{token}").data.decode()
    assert "试导入结果" in page and "没有发现问题" in page and "hx-trigger" not in page


def test_dry_run_progress_is_written(world, staff, monkeypatch):
    """The dry run writes its steps with row counts into the job's state as it goes."""
    seen = []
    real = imp.write_state

    def spy(token, state):
        seen.append((state["status"], state.get("phase"), state.get("done"), state.get("total")))
        real(token, state)

    monkeypatch.setattr(imp, "write_state", spy)
    rows = [["村1", "片1", "组1", "邻11", f"路 {i} 号", f"户{i}", "", 2, ""] for i in range(10_001)]
    token_of(upload(staff, xlsx(rows)))
    checking = [s for s in seen if s[0] == "checking"]
    assert ("checking", "读取文件", 0, 0) in checking
    assert ("checking", "读取文件", 5000, 10_002) in checking  # rows of the sheet, header too
    assert ("checking", "核对", 0, 10_001) in checking
    assert seen[-1][0] == "checked"


def test_queries_per_page(world, staff, count_queries):
    """(The upload's own queries are counted in test_upload_returns_before_the_dry_run, where
    the dry run's thread is held.)"""
    token = token_of(upload(staff, xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, "坏标签"]])))
    for url in ("/ledgers/import", f"/ledgers/import/{token}",
                f"/ledgers/import/template/households.xlsx?town={world.town.id}"):
        with count_queries() as q:
            assert staff.get(url).status_code == 200
        assert q.count <= 8, (url, q.statements)
    clean = token_of(upload(staff, xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "", 2, ""]])))
    for url in (f"/ledgers/import/{clean}/run", f"/ledgers/import/{token}/problems.xlsx",
                f"/ledgers/import/{token}?page=2"):
        with count_queries() as q:
            assert staff.get(url).status_code == 200
        assert q.count <= 8, (url, q.statements)


def test_phones_never_in_logs_or_urls(world, staff, caplog):
    data = xlsx([["村1", "片1", "组1", "邻11", "路 1 号", "甲", "13512345678", 2, ""]])
    r = upload(staff, data)
    assert "13512345678" not in r.headers["Location"]
    run(staff, token_of(r))
    assert "13512345678" not in caplog.text
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("import.%"))).one()
    assert "13512345678" not in entry.detail


def test_no_update_statement_for_identical_rows(world, staff, app):
    """The engine sees no UPDATE while an identical file is imported (checked on the engine)."""
    _one_phone(world)
    data = xlsx([["村1", "片1", "组1", "邻11", world.hh1.address, "甲1", "13912345678", 3, "独居老人"]])
    token = token_of(upload(staff, data))
    assert imp.read_state(token)["summary"]["unchanged"] == 1
    seen = []

    def before(conn, cursor, statement, *a):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        run(staff, token)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    assert not [s for s in seen if s.lstrip().upper().startswith("UPDATE")]


def _excel_like(rows: list[list]) -> bytes:
    """An XLSX the way Excel and WPS write one (and openpyxl does not): strings in the shared
    table (one with rich-text runs and a phonetic guide), numbers as numbers, blank cells left
    out, the first sheet stored as xl/worksheets/data.xml after a title row."""
    strings, cells_xml = [], []

    def s(text):
        strings.append(text)
        return len(strings) - 1

    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if value is None:
                continue
            if isinstance(value, int):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="s"><v>{s(value)}</v></c>')
        cells_xml.append(f'<row r="{r}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    sis = []
    for value in strings:
        if value == "村1":  # rich text split in two runs, with a phonetic guide
            sis.append('<si><r><t>村</t></r><r><rPr><b/></rPr><t>1</t></r>'
                       '<rPh sb="0" eb="1"><t>cun</t></rPh></si>')
        else:
            sis.append(f"<si><t>{value}</t></si>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/'
                   '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
                   '.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
                   '</Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook {ns} xmlns:r="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships"><sheets><sheet name="名册" sheetId="1" '
                   'r:id="rId7"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'relationships"><Relationship Id="rId7" Type="worksheet" '
                   'Target="worksheets/data.xml"/></Relationships>')
        z.writestr("xl/sharedStrings.xml", f'<sst {ns}>{"".join(sis)}</sst>')
        z.writestr("xl/worksheets/data.xml",
                   f'<worksheet {ns}><sheetData>{"".join(cells_xml)}</sheetData></worksheet>')
    return out.getvalue()


def test_excel_written_file(world, staff):
    data = _excel_like([["2026 年住户名册"], H_HEAD,
                        ["村1", "片1", "组1", "邻12", "东街 3 号", "钱七", 13612345678, 2, None],
                        [None] * 9,
                        ["村1", "片1", "组1", "邻12", "东街 4 号", "孙八", None, 5, "留守儿童"]])
    token = token_of(upload(staff, data))
    state = imp.read_state(token)
    assert state["problem_count"] == 0 and state["summary"]["created"] == 2, \
        imp.read_problems(token)
    run(staff, token)
    hh = db.session.execute(select(Household).where(Household.head_name == "钱七")).scalar_one()
    assert (hh.phone, hh.member_count, hh.neighborhood_id) == ("13612345678", 2, world.hood1b.id)
    # row numbers are the sheet's own: the title row and the blank row count
    bad = _excel_like([["2026 年住户名册"], H_HEAD, [None] * 9,
                       ["村1", "片1", "组1", "邻12", "东街 5 号", "李九", 136, 2, None]])
    problems = imp.read_problems(token_of(upload(staff, bad)))
    assert [p[:2] for p in problems] == [[4, "联系电话"]]
    # a roster that starts at C3: row numbers are still the sheet's, the header is found
    wb = Workbook()
    ws = wb.active
    for i, value in enumerate(H_HEAD):
        ws.cell(row=3, column=3 + i, value=value)
    for i, value in enumerate(["村1", "片1", "组1", "邻12", "东街 6 号", "周十", "123", 2.0, ""]):
        ws.cell(row=5, column=3 + i, value=value)
    out = io.BytesIO()
    wb.save(out)
    problems = imp.read_problems(token_of(upload(staff, out.getvalue())))
    assert [p[:2] for p in problems] == [[5, "联系电话"]]


def test_cell_values_as_text():
    """calamine's values (floats for numbers, "" for blanks, dates) read as typed."""
    from datetime import date, datetime

    assert [imp._text(v) for v in (13612345678.0, 3.0, 2.5, "", None, " 甲\u3000", True,
                                   date(2026, 1, 2), datetime(2026, 1, 2),
                                   datetime(2026, 1, 2, 8, 30))] == [
        "13612345678", "3", "2.5", "", "", "甲", "True", "2026-01-02", "2026-01-02",
        "2026-01-02 08:30:00"]


def _sheet_xml(rows_xml: str) -> bytes:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml",
                   f"<worksheet {ns}><sheetData>{rows_xml}</sheetData></worksheet>")
    return out.getvalue()


def test_sheet_extent(tmp_path, monkeypatch):
    """The grid calamine would build is bounded before it is built, cell references or not."""
    monkeypatch.setattr(imp, "MAX_CELLS", 1000)
    path = tmp_path / "s.xlsx"
    cases = [
        ('<row r="1"><c r="A1"><v>1</v></c><c r="I1"><v>1</v></c></row>'
         '<row r="100"><c r="A100"><v>1</v></c></row>', True),  # 100 × 9
        ('<row r="1"><c r="A1"><v>1</v></c></row><row r="2000"><c r="A2000"><v>1</v></c></row>',
         False),
        ('<row r="1"><c r="ZZ1"><v>1</v></c></row><row r="2"><c r="A2"><v>1</v></c></row>', False),
        # without references: rows and cells counted
        ("<row><c><v>1</v></c><c><v>2</v></c></row>" * 400, True),  # 400 × 2
        ("<row><c><v>1</v></c><c><v>2</v></c></row>" * 600, False),  # 600 × 2
        ('<row r="1"><c r="A1"><v>1</v></c></row><row>' + "<c><v>1</v></c>" * 1001 + "</row>",
         False),
    ]
    for rows_xml, fits in cases:
        path.write_bytes(_sheet_xml(rows_xml))
        if fits:
            imp.check_extent(path)
        else:
            with pytest.raises(imp.FileRefused, match="范围过大"):
                imp.check_extent(path)


def test_village_staff_import_is_audited_on_their_village(world, login_as):
    b = Browser(login_as(world.village_staff))
    run(b, token_of(upload(b, xlsx([["村1", "片1", "组1", "邻11", "新路 1 号", "新户", "", 2, ""]]))))
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "import.households")).one()
    assert entry.region_path == world.village1.path
    audit = b.get("/regions/audit").data.decode()
    assert "导入住户名册" in audit and "名册.xlsx" in audit
