"""辖区社会资源: the registry's rules (phones, required fields), its pages (add, edit, deactivate
and reactivate with confirmation, audit), who sees a full phone, and the XLSX ledger with the
议事场所 of the agenda domain."""

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.ledgers.ledgers import check_contact_phone, mask_contact
from portal.blueprints.ledgers.models import SocialResource
from portal.errors import ServiceError
from portal.extensions import db
from tests.conftest import Browser

GOOD = {"kind": "station", "name": "特立村红色驿站", "address": "村部一楼", "contact_name": "周丽",
        "contact_phone": "0731-86543210", "services": "休息饮水、手机充电、代办医保", "opening": ""}


@pytest.mark.parametrize(("text", "stored"), [
    ("13800138000", "13800138000"), ("138 0013 8000", "13800138000"),
    ("0731-86543210", "0731-86543210"), ("073186543210", "0731-86543210"),
    ("(0731)8654321", "0731-8654321"), ("010-62345678", "010-62345678"),
    ("0731-86543210转8001", "0731-86543210-8001"), ("400-123-4567", "400-123-4567"),
    ("０７３１－８６５４３２１０", "0731-86543210"), ("", ""),
])
def test_contact_phone_accepted(text, stored):
    assert check_contact_phone(text) == stored


@pytest.mark.parametrize("text", ["12345", "1380013800", "23800138000", "0731-0654321", "abc",
                                  "0731-86543210-1234567", "138001380001"])
def test_contact_phone_refused(text):
    with pytest.raises(ServiceError, match="联系电话应为"):
        check_contact_phone(text)


def test_masks():
    assert mask_contact("13800138000") == "138****8000"
    assert mask_contact("0731-86543210-8001") == "0731-****3210"
    assert mask_contact("400-123-4567") == "400-****4567"


def _count():
    return db.session.scalar(select(func.count()).select_from(SocialResource))


def _add(world, login_as, who=None, **fields):
    b = Browser(login_as(who or world.village_staff))
    return b, b.post("/ledgers/resources/new", **{**GOOD, "region_id": str(world.village1.id),
                                                   **fields})


def test_add_edit_deactivate_reactivate(world, login_as):
    b, r = _add(world, login_as)
    assert r.status_code == 303
    res = db.session.scalar(select(SocialResource))
    assert (res.name, res.kind, res.path, res.contact_phone) == (
        "特立村红色驿站", "station", world.village1.path, "0731-86543210")
    page = b.get(r.headers["Location"]).get_data(as_text=True)
    assert "特立村红色驿站" in page and "0731-86543210" in page and "tel:073186543210" in page

    r = b.post(f"/ledgers/resources/{res.id}/edit", **{**GOOD, "region_id": str(world.group1.id),
                                                       "name": "杨家井红色驿站",
                                                       "contact_phone": "13912340000"})
    assert r.status_code == 303
    db.session.expire_all()
    res = db.session.get(SocialResource, res.id)
    assert (res.name, res.path, res.contact_phone) == ("杨家井红色驿站", world.group1.path,
                                                       "13912340000")

    assert b.get(f"/ledgers/resources/{res.id}/deactivate").status_code == 200
    r = b.post(f"/ledgers/resources/{res.id}/deactivate")  # not confirmed
    assert r.status_code == 422 and "请勾选确认" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(SocialResource, res.id).active
    assert b.post(f"/ledgers/resources/{res.id}/deactivate", confirm="y").status_code == 303
    db.session.expire_all()
    assert not db.session.get(SocialResource, res.id).active
    r = b.post(f"/ledgers/resources/{res.id}/deactivate", confirm="y")  # twice
    assert r.status_code == 422 and "已经停用" in r.get_data(as_text=True)
    assert b.post(f"/ledgers/resources/{res.id}/reactivate", confirm="y").status_code == 303
    db.session.expire_all()
    assert db.session.get(SocialResource, res.id).active

    actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)
                                      .where(AuditEntry.action.like("resource.%"))))
    assert actions == ["resource.create", "resource.update", "resource.deactivate",
                       "resource.reactivate"]
    update = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "resource.update"))
    assert update.detail_dict["contact_phone"] == ["0731-****3210", "139****0000"]
    assert update.detail_dict["region"] == ["村1", "组1"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"contact_phone": "12345"}, "联系电话应为手机号"),
    ({"name": ""}, "请填写名称"),
    ({"services": " "}, "请填写服务内容"),
    ({"kind": "casino"}, "请选择资源类别"),
    ({"contact_name": "", "contact_phone": "13800138000"}, "请一并填写联系人"),
    ({"name": "名" * 61}, "名称最多 60 字"),
    ({"region_id": "abc"}, "请选择所属区域"),
    ({"region_id": None}, "社会资源请登记到镇、村(社区)、片或组"),  # a 邻
])
def test_bad_input_is_refused_and_nothing_saved(world, login_as, fields, message):
    if fields.get("region_id", "") is None:
        fields = {"region_id": str(world.hood1.id)}
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    _, r = _add(world, login_as, **fields)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert _count() == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_region_outside_scope(world, login_as):
    _, r = _add(world, login_as, region_id=str(world.village2.id))
    assert r.status_code == 404 and _count() == 0


def test_readers_see_masked_phones_and_no_buttons(world, login_as):
    _add(world, login_as, region_id=str(world.group1.id), contact_phone="13912345678")
    page = login_as(world.group_chief).get("/ledgers/resources").get_data(as_text=True)
    assert "139****5678" in page and "13912345678" not in page
    assert "/edit" not in page and "登记社会资源</a>" not in page
    staff = login_as(world.village_staff).get("/ledgers/resources").get_data(as_text=True)
    assert "13912345678" in staff and "/edit" in staff


def test_empty_state_says_how_to_add(world, login_as):
    page = login_as(world.village_staff).get("/ledgers/resources").get_data(as_text=True)
    assert "还没有登记社会资源" in page and "点「登记社会资源」" in page
    page = login_as(world.group_chief).get("/ledgers/resources?kind=team").get_data(as_text=True)
    assert "还没有“志愿服务队”类" in page and "请村(社区)或镇干部登记" in page


def _venue(region, name="樟树下议事亭", active=True):
    from portal.blueprints.agenda.models import Venue

    v = Venue(region_id=region.id, path=region.path, name=name, kind="pavilion", capacity=40,
              address="樟树下", active=active)
    db.session.add(v)
    db.session.commit()
    return v


def test_venues_listed_read_only_and_in_the_ledger(world, login_as):
    _add(world, login_as)
    _add(world, login_as, world.town_staff, name="五美志愿服务队", kind="team",
         region_id=str(world.village2.id))
    venue = _venue(world.group1)
    _venue(world.village2, "二村议事角")
    staff = login_as(world.village_staff)
    page = staff.get("/ledgers/resources").get_data(as_text=True)
    assert "樟树下议事亭" in page and "议事场所" in page
    assert f"/agenda/venues/{venue.id}/edit" in page
    assert "二村议事角" not in page and "五美志愿服务队" not in page
    only = staff.get("/ledgers/resources?kind=venue").get_data(as_text=True)
    assert "樟树下议事亭" in only and "特立村红色驿站" not in only

    r = login_as(world.town_staff).get(f"/ledgers/resources.xlsx?region={world.town.id}")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.get_data())).worksheets[0]
    assert ws.freeze_panes == "A3" and "辖区社会资源台账" in ws["A1"].value
    assert [c.value for c in ws[2]] == ["类别", "名称", "所属村(社区)", "地址", "联系人", "联系电话",
                                        "服务内容", "状态"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=3)]
    assert ["红色驿站", "特立村红色驿站", "村1", "村部一楼", "周丽", "0731-86543210",
            "休息饮水、手机充电、代办医保", "在用"] in rows
    assert ["议事场所", "樟树下议事亭", "村1", "樟树下", None, None,
            "议事亭，可容纳 40 人，召开议事会议", "在用"] in [
        [v or None if i in (4, 5) else v for i, v in enumerate(r)] for r in rows]
    assert {r[1] for r in rows} == {"特立村红色驿站", "五美志愿服务队", "樟树下议事亭", "二村议事角"}

    # a 组长's ledger: their group only, phones masked
    _add(world, login_as, name="杨家井理发店", kind="business", region_id=str(world.group1.id),
         contact_phone="13912345678")
    r = login_as(world.group_chief).get("/ledgers/resources.xlsx")
    rows = [[c.value for c in row] for row in
            load_workbook(io.BytesIO(r.get_data())).worksheets[0].iter_rows(min_row=3)]
    assert {r[1] for r in rows} == {"樟树下议事亭", "杨家井理发店"}
    assert [r[5] for r in rows if r[1] == "杨家井理发店"] == ["139****5678"]
