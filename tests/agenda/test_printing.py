"""The printed 议程 and 会议纪要: real PDFs (WeasyPrint + Noto CJK), text extractable with
pdftotext, fonts embedded as subsets, user text printed literally, nothing fetched, scoped, and
a fixed number of queries."""

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from portal import pdf
from portal.blueprints.agenda import services as svc
from portal.clock import local_today
from portal.extensions import db
from tests.agenda.conftest import NOW

HOSTILE_TITLE = "修路<script>alert(1)</script>"
HOSTILE_NOTE = "村民发言：<img src=file:///etc/passwd> 要求公开账目。"


def pdftotext(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
                         capture_output=True, check=True)
    return out.stdout.decode()


def squash(text: str) -> str:
    """pdftotext's layout spaces out table cells: compare without whitespace."""
    return "".join(text.split())


def pdffonts(data: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True)
    return [line.split() for line in out.stdout.splitlines()[2:] if line.strip()]


def image_count(data: bytes, tmp_path: Path) -> int:
    path = tmp_path / "images.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, check=True,
                         text=True)
    return len(out.stdout.splitlines()[2:])


@pytest.fixture
def fetched(monkeypatch):
    """Every URL WeasyPrint asks the fetcher for while the test runs."""
    calls = []
    real = pdf._fetcher

    def spy():
        fetcher = real()
        inner = fetcher.fetch

        def fetch(url, headers=None):
            calls.append(url)
            return inner(url, headers)

        fetcher.fetch = fetch
        return fetcher

    monkeypatch.setattr(pdf, "_fetcher", spy)
    return calls


@pytest.fixture
def ended(world, make_item, make_meeting, scope_of):
    """组1's 恳谈会, held and ended: two of its three households came; the first item passed by
    household votes and has an owner; the second (hostile title) failed by a show of hands and
    was corrected to passed by village staff; minutes with hostile text."""
    chief = world.group_chief
    scope = scope_of(chief)
    first = make_item(world.group1, chief, title="山塘输水洞修缮",
                      proposal="请镇农业综合服务中心派人疏通，村民投工投劳。")
    second = make_item(world.group1, chief, title=HOSTILE_TITLE)
    meeting = make_meeting(world.group1, chief, items=[(first, "present_majority", "household"),
                                                       (second, "present_majority", "hands")],
                           open=True, starts_at=NOW - timedelta(hours=1))
    for h in (world.hh1, world.hh1x):
        svc.check_in(chief, scope, meeting, h, now=NOW)
    svc.open_vote(chief, scope, first, now=NOW)
    svc.cast_vote(first, world.hh1.id, "yes", actor=chief, now=NOW)
    svc.cast_vote(first, world.hh1x.id, "yes", now=NOW)
    assert svc.close_vote(chief, scope, first, now=NOW) == "passed"
    svc.save_decision(chief, scope, first, "同意修缮山塘输水洞。\n由村委会对接镇农业综合服务中心。")
    svc.assign_answer(chief, scope, first, world.village_staff.id,
                      local_today(NOW) + timedelta(days=3), today=local_today(NOW))
    svc.open_vote(chief, scope, second, now=NOW)
    svc.set_hands(chief, scope, second, 1, 1, 0)
    assert svc.close_vote(chief, scope, second, now=NOW) == "rejected"
    staff = world.village_staff
    assert svc.correct_result(staff, scope_of(staff), second, 2, 0, 0, "举手时漏数了一户。",
                              now=NOW) == "passed"
    svc.save_minutes(chief, scope, meeting, f"第一行记录\n{HOSTILE_NOTE}", "记录员小李")
    svc.end_meeting(chief, scope, meeting, now=NOW + timedelta(hours=1))
    db.session.commit()
    return meeting


@pytest.fixture
def planned(world, make_item, make_meeting):
    chief = world.group_chief
    items = [make_item(world.group1, chief, title=t) for t in ("山塘输水洞修缮", "路灯维修")]
    return make_meeting(world.group1, chief, items=[(i, "present_majority", "household")
                                                    for i in items], minutes=20)


def test_agenda_pdf(world, login_as, planned, tmp_path):
    r = login_as(world.neighbor_chief).get(f"/agenda/meetings/{planned.id}/agenda.pdf")
    assert r.status_code == 200
    assert r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    assert "%E8%AE%AE%E7%A8%8B" in r.headers["Content-Disposition"]  # 议程
    text = squash(pdftotext(r.data, tmp_path))
    for expected in ("组1十一月民情恳谈会议程", "山塘输水洞修缮", "路灯维修", "民情恳谈会",
                     "应到3户", "到会过半", "按户表决", "合计30分钟", "超出会议安排10分钟",
                     "有事必有议，有议必有答", "组长"):
        assert expected in text, expected


def test_minutes_pdf(world, login_as, ended, tmp_path, fetched):
    r = login_as(world.neighbor_chief).get(f"/agenda/meetings/{ended.id}/minutes.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert "%E4%BC%9A%E8%AE%AE%E7%BA%AA%E8%A6%81" in r.headers["Content-Disposition"]  # 会议纪要
    raw = pdftotext(r.data, tmp_path)
    text = squash(raw)
    for expected in ("组1十一月民情恳谈会会议纪要", "山塘输水洞修缮", "到会2户/应到3户",
                     "赞成2·反对0·弃权0·到会2·应到3", "通过", "未通过", "同意修缮山塘输水洞。",
                     "负责人村干部", "已逾期", "待答复", "举手时漏数了一户", "记录员小李",
                     "邻11（2户）：甲1、乙1", "主持人", "记录人", "参会代表"):
        assert expected in text, expected
    assert "赞成1反对1弃权0·未通过→赞成2反对0弃权0·通过" in text
    assert "丙1" not in text  # not present
    assert "13912345678" not in text  # no phone numbers
    # user text printed as text, never as markup, and nothing fetched
    assert squash(HOSTILE_TITLE) in text
    assert squash("<img src=file:///etc/passwd>") in text
    assert fetched == []
    assert image_count(r.data, tmp_path) == 0
    # the decision's and minutes' line breaks survive
    assert "第一行记录\n" in raw.replace(" ", "")


def test_minutes_of_an_open_meeting(world, login_as, make_item, make_meeting, scope_of,
                                    tmp_path):
    chief = world.group_chief
    item = make_item(world.group1, chief, title="路灯维修")
    later = make_item(world.group1, chief, title="垃圾清运")
    meeting = make_meeting(world.group1, chief, open=True,
                           items=[(item, "present_majority", "household"),
                                  (later, "cast_majority", "household")])
    svc.check_in(chief, scope_of(chief), meeting, world.hh1, now=NOW)
    svc.open_vote(chief, scope_of(chief), item, now=NOW)
    db.session.commit()
    r = login_as(chief).get(f"/agenda/meetings/{meeting.id}/minutes.pdf")
    text = squash(pdftotext(r.data, tmp_path))
    assert "表决中" in text and "未表决" in text and "到会1户/应到3户" in text


def test_fonts_embedded_as_subsets(world, login_as, ended, tmp_path):
    c = login_as(world.group_chief)
    for url in (f"/agenda/meetings/{ended.id}/agenda.pdf",
                f"/agenda/meetings/{ended.id}/minutes.pdf"):
        fonts = pdffonts(c.get(url).data, tmp_path)
        assert fonts, url
        assert any("Noto-Sans-CJK-SC" in f[0] for f in fonts), fonts
        for f in fonts:
            # columns: name type… encoding emb sub uni object ID
            emb, sub = f[-5], f[-4]
            assert (emb, sub) == ("yes", "yes"), f
            assert "+" in f[0]  # subset tag ABCDEF+Name


def test_other_village_gets_404(world, login_as, ended):
    c = login_as(world.neighbor_chief2)
    assert c.get(f"/agenda/meetings/{ended.id}/agenda.pdf").status_code == 404
    assert c.get(f"/agenda/meetings/{ended.id}/minutes.pdf").status_code == 404
    assert login_as(world.nobody).get(f"/agenda/meetings/{ended.id}/minutes.pdf") \
        .status_code == 404
    assert login_as(world.group_chief).get("/agenda/meetings/999999/agenda.pdf") \
        .status_code == 404


def test_needs_login(client, ended):
    r = client.get(f"/agenda/meetings/{ended.id}/minutes.pdf")
    assert r.status_code in (302, 303) and "/login" in r.headers["Location"]


def test_query_count(world, login_as, ended, planned, count_queries):
    c = login_as(world.neighbor_chief)
    for url in (f"/agenda/meetings/{ended.id}/minutes.pdf",
                f"/agenda/meetings/{ended.id}/agenda.pdf",
                f"/agenda/meetings/{planned.id}/agenda.pdf",
                f"/agenda/meetings/{planned.id}/minutes.pdf"):
        with count_queries() as n:
            assert c.get(url).status_code == 200
        assert n.count <= 8, (url, n.count, n.statements)


# -- portal.pdf.render_pdf: data: only ---------------------------------------------------------
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
         "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def page(body: str) -> str:
    return f"<!doctype html><html><body><p>测试</p>{body}</body></html>"


@pytest.mark.parametrize("url", ["file:///etc/hostname", "http://127.0.0.1:9/x.png",
                                 "https://example.com/x.png", "/etc/hostname",
                                 "ftp://example.com/x.png"])
def test_render_pdf_refuses_other_urls(url, tmp_path, fetched):
    data = pdf.render_pdf(page(f'<img src="{url}"><link rel="stylesheet" href="{url}">'))
    assert data.startswith(b"%PDF")
    assert image_count(data, tmp_path) == 0
    assert not any(u.lower().startswith("data:") for u in fetched)


def test_render_pdf_refusal_is_in_the_fetcher():
    fetcher = pdf._fetcher()
    for url in ("file:///etc/hostname", "http://127.0.0.1:9/", "HTTPS://example.com/"):
        with pytest.raises(pdf.RefusedURL):
            fetcher.fetch(url)
    assert fetcher.fetch(PIXEL) is not None


def test_render_pdf_renders_data_urls(tmp_path, fetched):
    data = pdf.render_pdf(page(f'<img src="{PIXEL}" style="width:20mm">'))
    assert image_count(data, tmp_path) >= 1  # the image (and its soft mask)
    assert fetched == [PIXEL]
