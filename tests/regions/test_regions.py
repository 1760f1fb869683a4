"""The region tree, households, posts and tags, end to end through the forms (CSRF tokens taken
from the pages, as a browser does), with the audit rows each change must leave."""

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.audit import AuditEntry
from portal.blueprints.auth.models import User
from portal.blueprints.regions.models import Household, HouseholdTag, Post, Region
from portal.extensions import db

PHONE_MSG = "手机号应为 11 位数字，以 1 开头，如 13800138000。"
FULL, MASKED = "13912345678", "139****5678"


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def household_with_tags(id_) -> Household:
    db.session.expire_all()
    return db.session.scalar(select(Household).options(selectinload(Household.tags))
                             .where(Household.id == id_))


def tag_id(town, name) -> int:
    return db.session.scalar(select(HouseholdTag.id).where(HouseholdTag.town_id == town.id,
                                                           HouseholdTag.name == name))


def post_of(user) -> Post:
    db.session.expire_all()
    return db.session.scalar(select(Post).where(Post.user_id == user.id))


# -- the tree ---------------------------------------------------------------------------------
def test_create_village_area_group_neighborhood_with_paths(world, login_as, submit, audit):
    c = login_as(world.town_staff)
    parent = world.town
    for level, name in (("village", "新村"), ("area", "新片"), ("group", "新组"),
                        ("neighborhood", "新邻")):
        node_url = f"/regions/{parent.id}"
        r = submit(c, node_url, {"name": name}, action=f"{node_url}/children")
        assert r.status_code == 303
        assert r.headers["Location"] == node_url
        db.session.expire_all()
        child = db.session.scalar(select(Region).where(Region.parent_id == parent.id,
                                                       Region.name == name))
        assert child is not None
        assert child.level == level
        assert child.path == f"{parent.path}{child.id}/"
        assert name in c.get(node_url).data.decode()  # listed under its parent
        entry = audit("region.create")[-1]
        assert (entry["user_id"], entry["object_id"]) == (world.town_staff.id, child.id)
        assert entry["region_path"] == child.path
        parent = child
    # a 邻 is the last level: no form to add below it, and a forged post is refused
    page = c.get(f"/regions/{parent.id}").data.decode()
    assert f"/regions/{parent.id}/children" not in page
    assert "登记联系户" in page


def test_cannot_create_below_a_neighborhood(world, login_as, submit, snapshot):
    c = login_as(world.village_staff)
    before = snapshot()
    r = submit(c, f"/regions/{world.hood1.id}/edit", {"name": "再往下"},
               action=f"/regions/{world.hood1.id}/children")
    assert r.status_code == 422
    assert "邻是最末一级，不能再往下分。" in r.data.decode()
    assert snapshot() == before


def test_duplicate_child_name_is_refused_with_a_message(world, login_as, submit, snapshot):
    c = login_as(world.village_staff)
    before = snapshot()
    r = submit(c, f"/regions/{world.group1.id}", {"name": "邻11"},
               action=f"/regions/{world.group1.id}/children")
    assert r.status_code == 422
    assert "同一级下已有同名单位。" in r.data.decode()
    assert snapshot() == before
    # the same name under another parent is fine
    c2 = login_as(world.town_staff)
    r = submit(c2, f"/regions/{world.group2.id}", {"name": "邻11"},
               action=f"/regions/{world.group2.id}/children")
    assert r.status_code == 303


def test_rename(world, login_as, submit, audit):
    c = login_as(world.village_staff)
    r = submit(c, f"/regions/{world.area1.id}/edit", {"name": "东片"})
    assert r.status_code == 303
    assert fresh(Region, world.area1.id).name == "东片"
    entry = audit("region.rename")[-1]
    assert entry["user_id"] == world.village_staff.id
    assert entry["detail"] == {"old": "片1", "new": "东片"}
    # the same name again changes nothing and writes no audit row
    n = len(audit())
    assert submit(c, f"/regions/{world.area1.id}/edit", {"name": "东片"}).status_code == 303
    assert len(audit()) == n


def test_rename_to_a_siblings_name_is_refused(world, login_as, submit, snapshot):
    c = login_as(world.village_staff)
    before = snapshot()
    r = submit(c, f"/regions/{world.hood1.id}/edit", {"name": "邻12"})
    assert r.status_code == 422
    assert "同一级下已有同名单位。" in r.data.decode()
    assert snapshot() == before


@pytest.mark.parametrize(("name", "message"), [
    ("", "请填写名称。"),
    ("   ", "请填写名称。"),
    ("长" * 61, "名称最多 60 字。"),
    ("长" * 101, "名称最多 60 字。"),
])
@pytest.mark.parametrize("form", ["create", "rename"])
def test_bad_region_names(form, name, message, world, login_as, submit, snapshot):
    c = login_as(world.village_staff)
    before = snapshot()
    if form == "create":
        r = submit(c, f"/regions/{world.group1.id}", {"name": name},
                   action=f"/regions/{world.group1.id}/children")
    else:
        r = submit(c, f"/regions/{world.hood1.id}/edit", {"name": name})
    assert r.status_code == 422
    assert message in r.data.decode()
    assert snapshot() == before


# -- households -------------------------------------------------------------------------------
GOOD = {"head_name": "王五", "address": "幸福路 8 号", "phone": "13688886666",
        "member_count": "4"}


def test_register_household_with_tags(world, login_as, submit, audit):
    c = login_as(world.village_staff)
    tags = [tag_id(world.town, "残疾人"), tag_id(world.town, "低保户")]
    r = submit(c, f"/regions/{world.hood1.id}/households/new", {**GOOD, "tags": tags})
    assert r.status_code == 303
    assert r.headers["Location"] == f"/regions/{world.hood1.id}"
    db.session.expire_all()
    h = db.session.scalar(select(Household).options(selectinload(Household.tags))
                          .where(Household.head_name == "王五"))
    assert (h.neighborhood_id, h.address, h.phone, h.member_count) == (
        world.hood1.id, "幸福路 8 号", "13688886666", 4)
    assert sorted(t.name for t in h.tags) == ["低保户", "残疾人"]
    assert h.special_since is not None
    entry = audit("household.create")[-1]
    assert (entry["user_id"], entry["object_id"]) == (world.village_staff.id, h.id)
    assert entry["detail"]["phone"] == "136****6666"
    assert "13688886666" not in entry["raw"]
    assert "王五" in c.get(f"/regions/{world.hood1.id}").data.decode()


def test_register_household_without_tags_or_phone(world, login_as, submit):
    c = login_as(world.village_staff)
    r = submit(c, f"/regions/{world.hood1.id}/households/new", {**GOOD, "phone": ""})
    assert r.status_code == 303
    h = db.session.scalar(select(Household).where(Household.head_name == "王五"))
    assert h.phone is None
    assert h.special_since is None


def test_edit_household_and_remove_all_tags(world, login_as, submit, audit):
    hh = household_with_tags(world.hh1.id)
    assert [t.name for t in hh.tags] == ["独居老人"] and hh.special_since is not None
    c = login_as(world.village_staff)
    page = c.get(f"/regions/households/{hh.id}/edit").data.decode()
    assert 'value="13912345678"' in page  # staff edit the full number
    assert "checked" in page  # its tag is ticked
    r = submit(c, f"/regions/households/{hh.id}/edit",
               {"head_name": "甲一", "address": "新址 1 号", "phone": "13700001234",
                "member_count": "2"})  # no tags ticked
    assert r.status_code == 303
    assert r.headers["Location"] == f"/duties/households/{hh.id}"
    hh = household_with_tags(hh.id)
    assert (hh.head_name, hh.address, hh.phone, hh.member_count) == (
        "甲一", "新址 1 号", "13700001234", 2)
    assert hh.tags == []
    assert hh.special_since is None
    entry = audit("household.update")[-1]
    assert entry["user_id"] == world.village_staff.id
    assert entry["detail"]["phone"] == [MASKED, "137****1234"]
    assert entry["detail"]["tags"] == [["独居老人"], []]
    assert entry["detail"]["head_name"] == ["甲1", "甲一"]
    assert FULL not in entry["raw"] and "13700001234" not in entry["raw"]


def test_keeping_a_tag_keeps_special_since_and_a_first_tag_sets_it(world, login_as, submit):
    c = login_as(world.village_staff)
    since = fresh(Household, world.hh1.id).special_since
    data = {"head_name": "甲1", "address": "测试路", "phone": FULL, "member_count": "3"}
    r = submit(c, f"/regions/households/{world.hh1.id}/edit",
               {**data, "tags": [tag_id(world.town, "独居老人"), tag_id(world.town, "残疾人")]})
    assert r.status_code == 303
    assert fresh(Household, world.hh1.id).special_since == since
    # 乙1 had no tag: ticking one starts the special rule now
    assert fresh(Household, world.hh1x.id).special_since is None
    r = submit(c, f"/regions/households/{world.hh1x.id}/edit",
               {**data, "tags": [tag_id(world.town, "留守儿童")]})
    assert r.status_code == 303
    assert fresh(Household, world.hh1x.id).special_since > since


BAD_HOUSEHOLD = [
    ("head_name", "", "请填写户主姓名。"),
    ("head_name", "  ", "请填写户主姓名。"),
    ("head_name", "名" * 41, "姓名最多 40 字。"),
    ("address", "", "请填写住址。"),
    ("address", "路" * 101, "住址最多 100 字。"),
    ("phone", "12345", PHONE_MSG),
    ("phone", "2380000000", PHONE_MSG),
    ("phone", "23800000000", PHONE_MSG),
    ("phone", "12912345678", PHONE_MSG),
    ("phone", "139123456789", PHONE_MSG),
    ("phone", "1391234567a", PHONE_MSG),
    ("phone", "abcdefghijk", PHONE_MSG),
    ("member_count", "", "请填写家庭人数。"),
    ("member_count", "0", "家庭人数应在 1 到 30 之间。"),
    ("member_count", "31", "家庭人数应在 1 到 30 之间。"),
    ("member_count", "abc", "请填写数字。"),
    ("tags", "99999", "不在可选范围内"),
    ("tags", "x", "请从列表中选择。"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_HOUSEHOLD,
                         ids=[f"{f}={v[:12]!r}" for f, v, _ in BAD_HOUSEHOLD])
@pytest.mark.parametrize("form", ["new", "edit"])
def test_bad_household_input(form, field, value, message, world, login_as, submit, snapshot):
    c = login_as(world.village_staff)
    url = (f"/regions/{world.hood1.id}/households/new" if form == "new"
           else f"/regions/households/{world.hh1.id}/edit")
    before = snapshot()
    r = submit(c, url, {**GOOD, field: value})
    assert r.status_code == 422
    html = r.data.decode()
    assert message in html
    assert "Not a valid" not in html and "not a valid" not in html  # no English leaks
    assert snapshot() == before


def test_household_under_a_non_neighborhood_node_is_not_found(world, login_as):
    c = login_as(world.village_staff)
    assert c.get(f"/regions/{world.group1.id}/households/new").status_code == 404


# -- moving a household ---------------------------------------------------------------------
def _log_for(world, household) -> int:
    """A duty log by the 邻长, written directly (the duty-log flow is tested elsewhere)."""
    from portal.blueprints.duties.models import ChecklistItem, DutyLog

    item = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == world.town.id, ChecklistItem.kind == "duty"))
    log = DutyLog(household_id=household.id, neighborhood_id=household.neighborhood_id,
                  user_id=world.neighbor_chief.id, duty_item_id=item, method="visit",
                  occurred_at=datetime(2026, 1, 5, 2, 0), form_token=str(uuid.uuid4()))
    db.session.add(log)
    db.session.commit()
    return log.id


def test_move_household_keeps_logs_with_the_old_neighborhood(world, login_as, submit, audit):
    from portal.blueprints.duties.models import DutyLog

    log_id = _log_for(world, world.hh1)
    c = login_as(world.village_staff)
    page = c.get(f"/regions/households/{world.hh1.id}/move").data.decode()
    assert "邻12" in page and "邻21" not in page  # only 邻 the user manages are offered
    r = submit(c, f"/regions/households/{world.hh1.id}/move",
               {"neighborhood_id": str(world.hood1b.id)})
    assert r.status_code == 303
    assert fresh(Household, world.hh1.id).neighborhood_id == world.hood1b.id
    assert fresh(DutyLog, log_id).neighborhood_id == world.hood1.id
    entry = audit("household.move")[-1]
    assert entry["user_id"] == world.village_staff.id
    assert entry["detail"]["from"] == "邻11" and entry["detail"]["to"] == "邻12"
    # the household now belongs to the other 邻: its old 邻长 no longer sees it
    assert login_as(world.neighbor_chief).get(f"/duties/households/{world.hh1.id}"
                                              ).status_code == 404
    # and its history is still on its page
    assert 'class="timeline"' in c.get(f"/duties/households/{world.hh1.id}").data.decode()


@pytest.mark.parametrize("target", ["other_town", "other_village", "same", "group", "junk"])
def test_move_refused(target, world, town2, login_as, submit, snapshot):
    user = world.admin if target == "other_town" else world.village_staff
    value = {"other_town": town2.hood.id, "other_village": world.hood2.id,
             "same": world.hood1.id, "group": world.group1.id, "junk": "abc"}[target]
    c = login_as(user)
    before = snapshot()
    r = submit(c, f"/regions/households/{world.hh1.id}/move", {"neighborhood_id": str(value)})
    assert r.status_code == 422
    assert "请从列表中选择。" in r.data.decode()
    assert snapshot() == before


def test_move_page_offers_only_the_households_town(world, town2, login_as):
    page = login_as(world.admin).get(f"/regions/households/{world.hh1.id}/move").data.decode()
    assert "邻21" in page and "二镇邻" not in page


# -- posts and accounts -----------------------------------------------------------------------
NEW_PERSON = {"role": "neighbor_chief", "phone": "13711112222", "name": "赵六",
              "password": "zhao-pass-1"}


def test_add_post_with_a_new_account(world, login_as, submit, audit):
    c = login_as(world.village_staff)
    r = submit(c, f"/regions/{world.hood1b.id}/posts/new", NEW_PERSON)
    assert r.status_code == 303
    assert r.headers["Location"] == f"/regions/{world.hood1b.id}"
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.phone == "13711112222"))
    assert user.name == "赵六"
    post = post_of(user)
    assert (post.region_id, post.role, post.ended_at) == (world.hood1b.id, "neighbor_chief", None)
    created = audit("user.create")[-1]
    assert created["user_id"] == world.village_staff.id
    assert created["detail"]["phone"] == "137****2222"
    entry = audit("post.create")[-1]
    assert (entry["user_id"], entry["object_id"]) == (world.village_staff.id, post.id)
    assert entry["detail"]["role"] == "neighbor_chief"
    assert "13711112222" not in created["raw"] + entry["raw"]
    # the new 邻长 logs in with the password given and sees their 邻's households only
    new = login_as(user, password="zhao-pass-1")
    assert new.get(f"/duties/households/{world.hh1b.id}").status_code == 200
    assert new.get(f"/duties/households/{world.hh1.id}").status_code == 404
    # shown on the node page, masked
    page = c.get(f"/regions/{world.hood1b.id}").data.decode()
    assert "赵六" in page and "137****2222" in page and "13711112222" not in page


def test_add_post_for_an_existing_phone_number(world, login_as, submit, count):
    c = login_as(world.village_staff)
    users = count(User)
    r = submit(c, f"/regions/{world.hood1b.id}/posts/new",
               {"role": "neighbor_chief", "phone": world.area_chief.phone, "name": "",
                "password": ""})
    assert r.status_code == 303
    assert count(User) == users
    roles = {(p.role, p.region_id) for p in db.session.scalars(
        select(Post).where(Post.user_id == world.area_chief.id))}
    assert roles == {("area_chief", world.area1.id), ("neighbor_chief", world.hood1b.id)}
    # the same post twice is refused
    r = submit(c, f"/regions/{world.hood1b.id}/posts/new",
               {"role": "neighbor_chief", "phone": world.area_chief.phone})
    assert r.status_code == 422
    assert "此人已在这里担任该岗位。" in r.data.decode()


BAD_POSTS = [
    # region, data, message
    ("hood1", {"role": "group_chief"}, "组长只能设在“组”一级。"),
    ("hood1", {"role": "village_staff"}, "村(社区)干部只能设在“村/社区”一级。"),
    ("hood1", {"role": "town_staff"}, "镇(街道)干部只能设在“镇/街道”一级。"),
    ("group1", {"role": "neighbor_chief"}, "邻长只能设在“邻”一级。"),
    ("area1", {"role": "group_chief"}, "组长只能设在“组”一级。"),
    ("hood1", {"role": "admin"}, "管理员只能用命令行 flask create-user 设置。"),
    ("hood1", {"role": "boss"}, "请从列表中选择。"),
    ("hood1", {"phone": ""}, "请填写手机号。"),
    ("hood1", {"phone": "12345"}, PHONE_MSG),
    ("hood1", {"phone": "2380000000"}, PHONE_MSG),
    ("hood1", {"phone": "138abcdefgh"}, PHONE_MSG),
    ("hood1", {"name": ""}, "新账号请填写姓名。"),
    ("hood1", {"name": "名" * 41}, "姓名最多 40 字。"),
    ("hood1", {"password": ""}, "密码至少 8 位。"),
    ("hood1", {"password": "12345678"}, "密码不能全是数字"),
]


@pytest.mark.parametrize(("where", "data", "message"), BAD_POSTS,
                         ids=[f"{w}-{d}" for w, d, _ in BAD_POSTS])
def test_bad_post_is_refused_with_a_message(where, data, message, world, login_as, submit,
                                            snapshot):
    c = login_as(world.village_staff)
    region = getattr(world, where)
    before = snapshot()
    r = submit(c, f"/regions/{region.id}/posts/new", {**NEW_PERSON, **data})
    assert r.status_code == 422
    assert message in r.data.decode()
    assert snapshot() == before


def test_end_post_needs_confirmation_then_the_holder_loses_access(world, login_as, submit,
                                                                  snapshot, audit):
    chief = login_as(world.neighbor_chief)
    assert chief.get(f"/duties/households/{world.hh1.id}").status_code == 200
    post = post_of(world.neighbor_chief)
    c = login_as(world.village_staff)
    url = f"/regions/posts/{post.id}/end"
    page = c.get(url).data.decode()
    assert "邻长" in page and "我确认" in page
    # without ticking the box: refused, nothing changed
    before = snapshot()
    r = submit(c, url, {})
    assert r.status_code == 422
    assert "请勾选确认。" in r.data.decode()
    assert snapshot() == before
    assert chief.get(f"/duties/households/{world.hh1.id}").status_code == 200
    # confirmed
    r = submit(c, url, {"confirm": "y"})
    assert r.status_code == 303
    assert r.headers["Location"] == f"/regions/{world.hood1.id}"
    assert post_of(world.neighbor_chief).ended_at is not None
    entry = audit("post.end")[-1]
    assert (entry["user_id"], entry["object_id"]) == (world.village_staff.id, post.id)
    assert FULL not in entry["raw"] and world.neighbor_chief.phone not in entry["raw"]
    # the same browser session of the ex-邻长 has lost the household
    assert chief.get(f"/duties/households/{world.hh1.id}").status_code == 404
    assert chief.get(f"/duties/households/{world.hh1.id}/log").status_code == 404
    # the ended post stays listed, and cannot be ended twice
    assert "已结束" in c.get(f"/regions/{world.hood1.id}").data.decode()
    r = submit(c, url, {"confirm": "y"})
    assert r.status_code == 422
    assert "该岗位已结束。" in r.data.decode()


# -- special tags -----------------------------------------------------------------------------
def test_add_and_toggle_tags(world, login_as, submit, audit):
    c = login_as(world.town_staff)
    url = f"/regions/towns/{world.town.id}/tags"
    r = submit(c, url, {"name": "失独家庭"})
    assert r.status_code == 303
    new_id = tag_id(world.town, "失独家庭")
    assert new_id is not None
    assert audit("tag.create")[-1]["user_id"] == world.town_staff.id
    assert "失独家庭" in c.get(f"/regions/{world.hood1.id}/households/new").data.decode()

    # retire 独居老人: no longer offered, kept on the household that has it
    old = tag_id(world.town, "独居老人")
    r = submit(c, url, {}, action=f"/regions/tags/{old}/toggle")
    assert r.status_code == 303
    assert "标签“独居老人”已停用。" in c.get(r.headers["Location"]).data.decode()  # the flash
    assert fresh(HouseholdTag, old).active is False
    entry = audit("tag.toggle")[-1]
    assert entry["user_id"] == world.town_staff.id and entry["detail"]["active"] is False
    assert "独居老人" not in c.get(f"/regions/{world.hood1.id}/households/new").data.decode()
    edit = c.get(f"/regions/households/{world.hh1.id}/edit").data.decode()
    assert "独居老人" in edit
    assert [t.name for t in household_with_tags(world.hh1.id).tags] == ["独居老人"]
    # saving the household unchanged keeps the retired tag
    r = submit(c, f"/regions/households/{world.hh1.id}/edit",
               {"head_name": "甲1", "address": "测试路", "phone": FULL, "member_count": "3",
                "tags": [old]})
    assert r.status_code == 303
    assert [t.name for t in household_with_tags(world.hh1.id).tags] == ["独居老人"]
    # and back on
    assert submit(c, url, {}, action=f"/regions/tags/{old}/toggle").status_code == 303
    assert fresh(HouseholdTag, old).active is True


@pytest.mark.parametrize(("name", "message"), [
    ("", "请填写标签名称。"),
    ("标" * 21, "标签最多 20 字。"),
    ("独居老人", "已有这个标签。"),
])
def test_bad_tag_names(name, message, world, login_as, submit, snapshot):
    c = login_as(world.town_staff)
    before = snapshot()
    r = submit(c, f"/regions/towns/{world.town.id}/tags", {"name": name})
    assert r.status_code == 422
    assert message in r.data.decode()
    assert snapshot() == before


def test_retired_tag_cannot_be_given_to_a_new_household(world, login_as, submit, snapshot):
    c = login_as(world.town_staff)
    old = tag_id(world.town, "孤寡老人")
    submit(c, f"/regions/towns/{world.town.id}/tags", {}, action=f"/regions/tags/{old}/toggle")
    before = snapshot()
    r = submit(c, f"/regions/{world.hood1.id}/households/new", {**GOOD, "tags": [old]})
    assert r.status_code == 422
    assert snapshot() == before


# -- audit ------------------------------------------------------------------------------------
def test_full_phone_numbers_never_reach_the_audit_table(world, login_as, submit):
    c = login_as(world.village_staff)
    submit(c, f"/regions/{world.hood1.id}/households/new", {**GOOD, "phone": "13655554444"})
    submit(c, f"/regions/households/{world.hh1.id}/edit",
           {**GOOD, "phone": "13633332222"})
    submit(c, f"/regions/{world.hood1b.id}/posts/new", {**NEW_PERSON, "phone": "13611110000"})
    post = post_of(db.session.scalar(select(User).where(User.phone == "13611110000")))
    submit(c, f"/regions/posts/{post.id}/end", {"confirm": "y"})
    db.session.expire_all()
    details = " ".join(db.session.scalars(select(AuditEntry.detail)))
    for phone in ("13655554444", "13633332222", FULL, "13611110000"):
        assert phone not in details
    for masked in ("136****4444", "136****2222", MASKED, "136****0000"):
        assert masked in details
    page = c.get("/regions/audit").data.decode()
    assert "136****4444" in page and "13655554444" not in page


def test_audit_page_is_scoped(world, login_as, submit):
    staff = login_as(world.town_staff)
    assert submit(staff, f"/regions/{world.hood1.id}/edit", {"name": "东邻"}).status_code == 303
    assert submit(staff, f"/regions/{world.hood2.id}/edit", {"name": "西邻"}).status_code == 303
    town_page = staff.get("/regions/audit").data.decode()
    assert "东邻" in town_page and "西邻" in town_page
    village_page = login_as(world.village_staff).get("/regions/audit").data.decode()
    assert "东邻" in village_page and "西邻" not in village_page
    assert "乙2" not in village_page  # village 2's households' creation
    for role in ("area_chief", "group_chief", "neighbor_chief", "volunteer", "nobody"):
        assert login_as(getattr(world, role)).get("/regions/audit").status_code == 403


# -- phone masking ----------------------------------------------------------------------------
# What each role sees of 甲1家's number (13912345678) on its household page and on the 邻 node
# page of 邻11: "full", "masked", or None (the page is refused, so no number at all).
PHONE_VIEW = [
    # role             household  邻 node
    ("admin",           "full",    "full"),
    ("town_staff",      "full",    "full"),
    ("village_staff",   "full",    "full"),
    ("area_chief",      "masked",  None),
    ("group_chief",     "masked",  None),
    ("neighbor_chief",  "full",    None),
    ("neighbor_chief2", None,      None),
    ("volunteer",       None,      None),
    ("nobody",          None,      None),
]


@pytest.mark.parametrize(("role", "household", "node"), PHONE_VIEW)
def test_phone_masking(role, household, node, world, login_as):
    c = login_as(getattr(world, role))
    for url, expected in ((f"/duties/households/{world.hh1.id}", household),
                          (f"/regions/{world.hood1.id}", node)):
        r = c.get(url)
        html = r.data.decode()
        assert r.status_code == (200 if expected else 404 if role in (
            "neighbor_chief2", "volunteer", "nobody") else 403), url
        assert (FULL in html) == (expected == "full"), url
        assert (MASKED in html) == (expected == "masked"), url


def test_a_chief_of_another_neighborhood_in_the_same_group_sees_it_masked(world, make_user,
                                                                           login_as):
    """A 邻长 who is also 组长 sees their own 邻's numbers, and masked ones elsewhere."""
    both = make_user("兼任", role="group_chief", region=world.group1)
    db.session.add(Post(user_id=both.id, region_id=world.hood1b.id, role="neighbor_chief"))
    db.session.commit()
    c = login_as(both)
    hh1 = c.get(f"/duties/households/{world.hh1.id}").data.decode()
    assert MASKED in hh1 and FULL not in hh1
    db.session.execute(db.update(Household).where(Household.id == world.hh1b.id)
                       .values(phone="13500001111"))
    db.session.commit()
    hh1b = c.get(f"/duties/households/{world.hh1b.id}").data.decode()
    assert "13500001111" in hh1b




# -- CSRF ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["missing", "other session"])
def test_forms_refuse_a_post_without_this_sessions_token(token, world, login_as, page_token,
                                                         snapshot):
    c = login_as(world.village_staff)
    data = {"name": "新邻"}
    if token == "other session":
        other = login_as(world.town_staff)
        data["csrf_token"] = page_token(other, f"/regions/{world.group1.id}")
    before = snapshot()
    r = c.post(f"/regions/{world.group1.id}/children", data=data)
    assert r.status_code == 400
    assert "安全校验失败" in r.data.decode()
    assert snapshot() == before
